import sys

from pipeline.hls.cli import main

sys.exit(main())
