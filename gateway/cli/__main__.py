"""``python -m gateway.cli``: the same as the ``nassav`` script."""

import sys

from gateway.cli.main import main

sys.exit(main())
