"""The ``nassav`` command line: the product's front door, beside the HTTP gateway it can start.

``main`` parses the arguments; each command imports only what it runs (``nassav worker``
loads no Starlette, ``nassav add`` no Redis client). ``supervisor`` is ``nassav up``'s
process manager, ``client`` the HTTP client of ``add``/``status``.
"""

from gateway.cli.main import main

__all__ = ["main"]
