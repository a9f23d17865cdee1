"""Durable file writes with the permissions a library needs.

Two kinds of files leave this service:

- library files (video, NFO, JSON, artwork, cover cache): a media server running as its
  own user must read them, so they get the mode of a normal file: ``0666 & ~umask``
  (0644 under the usual 022), or an explicit ``library.file_mode`` for shared setups;
- secrets (the cookie jar, settings): written with ``mode=0o600``.

Either way the mode is set on the temp file *before* the rename, so no reader ever sees the
final name with another mode, and the directory is fsynced after the rename so that a power
cut after "completed" cannot take the rename back.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["FILE_MODE_FORM", "atomic_write", "dir_mode_for", "fsync_path", "make_dirs", "parse_file_mode"]

# What `library.file_mode` accepts, quoted in every error about it.
FILE_MODE_FORM = ('an octal file mode with owner read+write and no execute bits, e.g. "0644", '
                  '"0664" or "0640" (quoted; YAML\'s unquoted 0640 works too)')


def parse_file_mode(value: str | int | None) -> int | None:
    """``"0640"``, ``"0o640"``, ``"640"`` or YAML's ``0640`` (the int 416) → 0o640; None → None.

    Raises:
        ValueError: not an octal mode a library file can have (see :data:`FILE_MODE_FORM`).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a file mode")
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("0o")
        if not text or len(text) > 4 or any(c not in "01234567" for c in text):
            raise ValueError(f"{value!r} is not an octal number")
        mode = int(text, 8)
    elif isinstance(value, int):
        # An int is what YAML makes of an unquoted 0640. An unquoted 640 is the decimal 640
        # (0o1200): refused below rather than guessed at.
        mode = value
    else:
        raise ValueError(f"{value!r} is not a file mode")
    if not 0 <= mode <= 0o777:
        raise ValueError(f"{value!r} is beyond 0777 (an unquoted 640 is decimal: quote it)")
    if mode & 0o600 != 0o600:
        raise ValueError(f"{oct(mode)} leaves the service unable to read or replace its own files")
    if mode & 0o111:
        raise ValueError(f"{oct(mode)} has execute bits: library files are not programs")
    return mode


def dir_mode_for(file_mode: int | None) -> int | None:
    """The mode for folders holding files of ``file_mode``: search (x) wherever read (r) is.

    A group-readable file in a folder the group cannot enter helps nobody: 0640 → 0750,
    0664 → 0775. None (umask decides the files) → None (umask decides the folders too).
    """
    if file_mode is None:
        return None
    return file_mode | ((file_mode & 0o444) >> 2)


def make_dirs(path: Path, dir_mode: int | None = None) -> None:
    """``mkdir -p path``; each folder created here gets ``dir_mode`` (umask's when None).

    Folders that exist already keep their mode: an operator's chmod (or setgid bit) wins.
    """
    path = Path(path)
    if path.is_dir():
        return
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o777 if dir_mode is None else dir_mode)
        except FileExistsError:
            if not d.is_dir():
                raise
            continue
        if dir_mode is not None:
            # mkdir's mode passed through the umask; keep the bits the kernel added (setgid
            # inherited from a shared parent) and set the permission bits exactly.
            os.chmod(d, (os.stat(d).st_mode & 0o7000) | dir_mode)
        # The new folder's own name must survive a power cut too, or the file later
        # fsynced inside it is lost with it.
        fsync_path(d.parent)


def fsync_path(path: Path) -> None:
    """fsync a file or a directory by path, ignoring what cannot be opened.

    Used on a directory after a rename into it (the rename is durable only once the directory
    is) and on files such as the import journal.
    Some file systems refuse fsync on a directory: nothing more can be done there.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int | None = None, dir_mode: int | None = None) -> None:
    """Write ``data`` to ``path``: temp file, fsync, mode, rename, directory fsync.

    Parameters:
      mode: the file's exact mode (e.g. 0o600 for a secret, ``library.file_mode``); None gives
        a normal file, ``0666 & ~umask``.
      dir_mode: the mode of folders this creates on the way (see :func:`make_dirs`).
    """
    path = Path(path)
    make_dirs(path.parent, dir_mode)
    fd, tmp = _create_temp(path, 0o666 if mode is None else mode)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                # Exact bits, whatever the umask took away; a secret was created 0600 or
                # narrower, so it is never wider than asked, not even for a moment.
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_path(path.parent)


def _create_temp(path: Path, create_mode: int) -> tuple[int, Path]:
    """A new hidden temp file beside ``path``, opened for writing with ``create_mode & ~umask``.

    Not ``tempfile.mkstemp``: that always creates 0600, which is what made every library
    file unreadable to a media server."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                           create_mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp name beside {path}")
