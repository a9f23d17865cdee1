"""The socket of a curl_cffi session's connection: the HLS fetcher's one door into curl_cffi.

The stall watchdog (:meth:`pipeline.hls.fetch.Transfer.abort_if_stalled`) cuts a stalled
transfer by shutting its socket down, so it must know the socket from the moment curl opens
it, from another thread. libcurl tells that through ``CURLOPT_SOCKOPTFUNCTION``; curl_cffi
has no public way to set it (``Curl.setopt`` accepts only its own callbacks, and it resets a
handle's options after every request), and ``CURLINFO_ACTIVESOCKET`` is neither known before
the first byte nor safe to read from another thread during a transfer.

What it relies on (curl_cffi 0.17; checked by :func:`check_shape` and by
``tests/test_curl_socket.py`` against a real HTTP server): ``curl_cffi._wrapper`` exposing
``ffi`` and ``lib._curl_easy_setopt``; a ``requests.Session`` having ``curl`` (a ``Curl``)
whose ``_curl`` is the easy handle and whose ``perform`` runs each request.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import curl_cffi
from curl_cffi import CurlOpt

from pipeline.seams import report_once

log = logging.getLogger("nassav.hls")

UNKNOWN = -1


class CurlChanged(RuntimeError):
    """curl_cffi no longer has the shape this module relies on."""


def check_shape(session: Any) -> None:
    """Raise :class:`CurlChanged`, naming the curl_cffi version, when ``session`` (a
    ``curl_cffi.requests.Session``) or curl_cffi's wrapper lack what :func:`track_socket` uses."""
    missing = []
    try:
        from curl_cffi._wrapper import ffi, lib
    except ImportError:
        missing.append("curl_cffi._wrapper.ffi/lib")
    else:
        if not callable(getattr(lib, "_curl_easy_setopt", None)):
            missing.append("lib._curl_easy_setopt")
        if not callable(getattr(ffi, "callback", None)):
            missing.append("ffi.callback")
    curl = getattr(session, "curl", None)
    if curl is None:
        missing.append("Session.curl")
    else:
        missing += [f"Curl.{a}" for a in ("_curl", "perform") if getattr(curl, a, None) is None]
    if missing:
        raise CurlChanged(f"curl_cffi {curl_cffi.__version__} has no {', '.join(missing)}; "
                          f"pipeline/hls/curl_socket.py was written for curl_cffi 0.17 and must be updated")


def track_socket(session: Any) -> Callable[[], int]:
    """A function answering the socket of ``session``'s connection (``UNKNOWN`` before one).

    Needs one connection per session (``CURLOPT_MAXCONNECTS`` 1). The callback is installed
    just before each perform. When curl_cffi's shape differs the socket stays unknown (one
    error in the log) and curl's low-speed check alone watches for stalls.
    """
    try:
        check_shape(session)
    except CurlChanged as e:
        report_once(log, e, "stalls are left to curl's low-speed check")
        return lambda: UNKNOWN
    from curl_cffi._wrapper import ffi, lib

    curl = session.curl
    handle = curl._curl
    perform = curl.perform
    state = {"fd": UNKNOWN}

    def on_socket(_clientp: object, fd: int, _purpose: int) -> int:
        state["fd"] = fd
        return 0  # CURL_SOCKOPT_OK

    callback = ffi.callback("int(void *, int, int)", on_socket)
    pointer = ffi.cast("void *", callback)

    def perform_tracked(*args: object, **kwargs: object) -> object:
        lib._curl_easy_setopt(handle, CurlOpt.SOCKOPTFUNCTION, pointer)
        return perform(*args, **kwargs)

    curl.perform = perform_tracked
    curl._nassav_sockopt = (callback, pointer)  # keep the callback alive as long as the handle
    return lambda: state["fd"]
