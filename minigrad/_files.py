"""Files: saves that a crash never leaves half-written, reads that cannot hang or run away,
and messages that quote what a file holds without growing with it.

Writing (:func:`write_atomically`) goes through a temporary file beside the target, named
``.<name>.<8 random characters>.tmp`` (where that would pass the file system's limit on a
name, 255 bytes nearly everywhere, the name is shortened and a digest of it added), which is
flushed, fsynced and renamed over the target; then the folder is fsynced so that the rename
itself survives a crash. While it is written the temporary file is locked (``flock``); a
process killed mid-write loses its lock with its life, so the next successful save of the
same target removes any unlocked temporary file of it, while one that another process is
still writing stays locked and is left alone. Two processes saving one path at once each
rename a complete file: the last rename wins, and nothing is ever mixed. An exception in the
middle of a save (Ctrl-C included) closes and removes its temporary file before it goes on,
and every OSError of a save names the target, never the temporary file.

Reading (:func:`open_regular`) refuses anything that is not a regular file before reading a
byte: a named pipe would block forever and a link to ``/dev/zero`` never ends. Readers then
read a header first and never more than the header and the file's size allow.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

try:
    import fcntl

    _HAS_LOCKS = True
except ImportError:  # pragma: no cover - Windows: no locks, so no removal of leftovers
    _HAS_LOCKS = False

__all__ = [
    "check_path",
    "error_text",
    "listing",
    "open_regular",
    "quoted",
    "read_exactly",
    "reading",
    "shortened",
    "type_name",
    "write_atomically",
]

#: File-system name limit assumed where the system does not say (255 bytes nearly everywhere).
DEFAULT_NAME_MAX = 255
#: Path-length limit, with the final NUL, assumed where the system does not say (Linux's).
DEFAULT_PATH_MAX = 4096
#: The random part of a temporary name, then ".tmp"; the old tempfile.mkstemp names match too.
_RANDOM_PART = r"[a-z0-9_]{8}\.tmp"
_KINDS = [
    (stat.S_ISFIFO, "named pipe (FIFO)"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
]


# -- messages -----------------------------------------------------------------------------------


def quoted(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: a value from a file can be any size."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def listing(items: Iterable[object], limit: int = 5) -> str:
    """The first ``limit`` items as a list, then how many more: a message stays short."""
    items = list(items)
    shown = "[" + ", ".join(quoted(item) for item in items[:limit]) + "]"
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


def shortened(text: str, limit: int = 400) -> str:
    """``text`` (another error's message, say) cut to ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_name(value: object, limit: int = 100) -> str:
    """The name of ``value``'s class (of ``value`` itself if it is a class), cut to ``limit``
    characters, as Python's own messages cut the type names they quote."""
    cls = value if isinstance(value, type) else type(value)
    return shortened(cls.__name__, limit)


def error_text(error: BaseException) -> str:
    """Another error's message, short, with its type unless it is a TypeError or ValueError
    (a bare KeyError says only ``'units'``)."""
    text = shortened(str(error))
    return text if isinstance(error, (TypeError, ValueError)) else f"{type(error).__name__}: {text}"


def _given(value: object) -> str:
    return f"{quoted(value)} ({type(value).__name__})"


# -- paths --------------------------------------------------------------------------------------


class Readable(Protocol):
    """A binary stream to read from: an open file, or a decompressing one (gzip)."""

    def read(self, size: int, /) -> bytes: ...


def check_path(path: object, what: str = "path") -> Path:
    """``path`` as a Path if it is a non-empty str or os.PathLike, else TypeError/ValueError.

    An int is refused too: ``open(3)`` would open file descriptor 3.
    """
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a file path (str or os.PathLike), got {_given(path)}")
    if not text:
        raise ValueError(f"{what} is empty; give a file name such as 'model.safetensors'")
    if "\0" in text:
        raise ValueError(f"{what} contains a NUL character: {quoted(text)}")
    return Path(text)


def _kind(mode: int) -> str | None:
    """What a non-regular file is ("named pipe (FIFO)", ...); None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "folder"
    return next((name for test, name in _KINDS if test(mode)), "special file")


def _through_links(path: Path) -> str:
    """ " (a link to /real/path)" when ``path`` involves a symbolic link, else ""."""
    real = os.path.realpath(path)
    return f" (a link to {real})" if real != os.path.abspath(path) else ""


def open_regular(
    path: object, what: str = "path", error: type[Exception] = ValueError
) -> tuple[BinaryIO, int]:
    """``path`` opened for binary reading, and its size, if it is a regular file.

    Symbolic links are followed; what they lead to must be a regular file. The file is opened
    without blocking (a named pipe with no writer would block ``open`` forever) and checked
    with ``fstat`` on the open descriptor, so what is checked is what is read.

    Raises
    ------
    TypeError, ValueError
        ``path`` is not a path (see :func:`check_path`).
    FileNotFoundError, PermissionError
        As ``open`` raises them.
    IsADirectoryError
        ``path`` is a folder.
    error
        ``path`` is a named pipe, a device or a socket (the message says which).
    """
    given = check_path(path, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(given, flags)
    try:
        mode = os.fstat(descriptor).st_mode
        kind = _kind(mode)
        if kind == "folder":
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(given))
        if kind is not None:
            raise error(
                f"{given}{_through_links(given)} is a {kind}, not a regular file; give the "
                "path of a file"
            )
        size = os.fstat(descriptor).st_size
    except BaseException:
        os.close(descriptor)
        raise
    # the built-in open takes the descriptor over in C: from here the file object closes it
    return open(descriptor, "rb"), size


@contextlib.contextmanager
def reading(path: str | os.PathLike[str]) -> Iterator[None]:
    """Re-raise an OSError of the reads inside (EIO, say, which names no file) as one that
    names ``path``, chained to it."""
    try:
        yield
    except OSError as error:
        if error.filename is not None:
            raise
        raise OSError(
            error.errno,
            f"{error.strerror or shortened(str(error))} (while reading {path})",
            os.fspath(path),
        ) from error


def read_exactly(file: Readable, count: int, where: str, error: type[Exception]) -> bytes:
    """The next ``count`` bytes of ``file`` (``count`` is within its size), or ``error``."""
    data = file.read(count)
    if len(data) != count:
        raise error(f"{where}: the file changed while it was being read")
    return data


# -- writing ------------------------------------------------------------------------------------


def write_atomically(path: str | os.PathLike[str], content: str | bytes) -> None:
    """Write ``content`` (text as UTF-8) to a temporary file beside ``path``, then rename it
    over ``path``.

    A new file gets the usual mode (``0o666`` less the umask), a replaced one keeps its mode,
    and its owner and group where the process may set them (root may; a user may give a
    group it belongs to). Symbolic links are followed, as ``open(path, "w")`` would, so every
    link to the file sees the new content. Missing parent folders are created.

    An exception at any point, KeyboardInterrupt included, closes and removes the temporary
    file before it propagates; any previous file at ``path`` is then intact.

    Raises
    ------
    TypeError, ValueError
        ``path`` is not a usable path, or names something that is not a regular file.
    IsADirectoryError
        ``path`` is a folder (``"."`` for instance) or ends with a separator.
    NotADirectoryError
        A parent of ``path`` is a file.
    OSError
        The write failed (ENOSPC, EIO, a name too long, a folder that refuses new files,
        ...): the error names ``path`` (its ``filename``), says which step failed, and is
        chained to the system's error; no temporary file remains.
    """
    if not isinstance(content, (str, bytes)):
        raise TypeError(f"content must be str or bytes, got {type(content).__name__}")
    target, existing = _target(path)
    data = content.encode("utf-8") if isinstance(content, str) else content
    folder = target.parent
    step = f"while creating the folder {folder} for it"
    try:
        _make_folders(folder)
        prefix = _temporary_prefix(target.name, _name_max(folder))
        step = f"while writing {target} through a temporary file beside it"
        _write_and_rename(folder, prefix, target, data, existing)
        step = f"after renaming the new file to {target}, while syncing its folder"
        _fsync_folder(folder)
    except OSError as error:
        raise OSError(
            error.errno, f"{error.strerror or shortened(str(error))} ({step})", os.fspath(path)
        ) from error
    _remove_leftovers(folder, prefix)


def _target(path: str | os.PathLike[str]) -> tuple[Path, os.stat_result | None]:
    """The file a save to ``path`` writes (links followed) and its status if it exists; every
    problem with the path is raised here, before anything is written."""
    given = check_path(path)
    text = str(os.fspath(path))
    if text.endswith(os.sep) or (os.altsep is not None and text.endswith(os.altsep)):
        raise IsADirectoryError(
            errno.EISDIR, "names a folder (it ends with a separator); give a file name", text
        )
    target = Path(os.path.realpath(given))
    ancestor = target
    while True:
        try:
            status = os.stat(ancestor)
        except OSError as error:
            if error.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
                raise OSError(  # a folder we may not search, say: named, with the target
                    error.errno, f"{error.strerror} (while looking up {ancestor})", text
                ) from error
            ancestor = ancestor.parent
            continue
        break
    mode = status.st_mode
    limit = _name_max(ancestor)
    if ancestor == target:
        kind = _kind(mode)
        if kind == "folder":
            raise IsADirectoryError(
                errno.EISDIR, "is a folder; give a file name (such as model.safetensors)", text
            )
        if kind is not None:
            raise ValueError(
                f"cannot save to {text}{_through_links(given)}: it is a {kind}, not a regular file"
            )
    elif not stat.S_ISDIR(mode):
        raise NotADirectoryError(
            errno.ENOTDIR, f"cannot create a file under {ancestor}, which is a file", text
        )
    for part in target.relative_to(ancestor).parts:  # the file's name and the folders to make
        if len(os.fsencode(part)) > limit:
            what = "File name" if part == target.name else f"Folder name {quoted(part, 40)}"
            raise OSError(
                errno.ENAMETOOLONG,
                f"{what} too long: {len(os.fsencode(part))} bytes, where this file "
                f"system allows {limit}",
                text,
            )
    # the temporary file's path, beside the target, must be within the limit too
    temporary_name = _temporary_prefix(target.name, limit) + "12345678.tmp"
    longest = len(os.fsencode(str(target.parent / temporary_name)))
    path_max = _path_max(ancestor)
    if max(longest, len(os.fsencode(str(target)))) >= path_max:
        raise OSError(
            errno.ENAMETOOLONG,
            f"Path too long: {len(os.fsencode(str(target)))} bytes (and {longest} for the "
            f"temporary file written beside it), where this system allows {path_max - 1}",
            text,
        )
    return target, (status if ancestor == target else None)


def _name_max(folder: Path) -> int:
    """The longest file name, in bytes, that the file system holding ``folder`` allows."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, ValueError, OSError):  # no pathconf (Windows) or no answer
        return DEFAULT_NAME_MAX
    return limit if isinstance(limit, int) and limit > 0 else DEFAULT_NAME_MAX


def _path_max(folder: Path) -> int:
    """The size of the longest path the system takes, with its final NUL (4096 on Linux)."""
    try:
        limit = os.pathconf(folder, "PC_PATH_MAX")
    except (AttributeError, ValueError, OSError):  # no pathconf (Windows) or no answer
        return DEFAULT_PATH_MAX
    return limit if isinstance(limit, int) and limit > 0 else DEFAULT_PATH_MAX


def _temporary_prefix(name: str, name_max: int) -> str:
    """``".<name>."``, or when that would make the temporary name too long, a shortened name
    and a digest of the whole one: the same target always gets the same prefix."""
    room = name_max - len(".") - len(".") - 8 - len(".tmp")
    if len(os.fsencode(name)) <= room:
        return f".{name}."
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    kept = name
    while len(os.fsencode(kept)) > room - len("~") - len(digest):
        kept = kept[:-1]
    return f".{kept}~{digest}."


def _make_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents, from the top down (a loop, not recursion:
    a legal path can hold two thousand missing folders)."""
    missing = []
    while not os.path.isdir(folder):
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for path in reversed(missing):
        try:
            os.mkdir(path)
        except FileExistsError:  # made meanwhile by another writer; a file there fails below
            if not os.path.isdir(path):
                raise


def _write_and_rename(
    folder: Path, prefix: str, target: Path, data: bytes, existing: os.stat_result | None
) -> None:
    """Write ``data`` to a new, locked ``folder/<prefix><random>.tmp`` and rename it to
    ``target``. Whatever is raised, KeyboardInterrupt included, the temporary file is
    closed (releasing its lock) and removed first."""
    for _ in range(100):
        temporary = folder / f"{prefix}{secrets.token_hex(4)}.tmp"
        file = None
        try:
            # open(), not os.open(): the file object owns the descriptor from the start, so
            # an interrupt that arrives as open() returns still closes it (with the object)
            file = open(temporary, "xb", buffering=0)
            _lock(file.fileno(), wait=True)
            # a cleanup may have locked and removed the file between its creation and our lock
            if not _is_same_file(temporary, file.fileno()):
                file.close()
                continue
            _write_locked(file, data, existing)
            # the rename happens while the lock is held, so no cleanup takes it for a leftover
            os.replace(temporary, target)
            file.close()
            return
        except FileExistsError:
            if file is not None:  # pragma: no cover - only open() raises it
                _discard(temporary, file)
                raise
        except BaseException:
            _discard(temporary, file)
            raise
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(folder / prefix))


def _write_locked(file: BinaryIO, data: bytes, existing: os.stat_result | None) -> None:
    """Write ``data`` to the new temporary ``file``, fsync it, and give it its final owner
    and mode: those of the file it replaces, else the usual ``0o666`` less the umask."""
    descriptor = file.fileno()
    new_mode = stat.S_IMODE(os.fstat(descriptor).st_mode)  # 0o666 less the umask
    _chmod(descriptor, 0o600)  # while written: readable by a later cleanup of ours
    if existing is not None:
        _keep_owner(descriptor, existing)
    view = memoryview(data)
    while view:
        view = view[file.write(view) :]
    os.fsync(descriptor)
    _chmod(descriptor, new_mode if existing is None else stat.S_IMODE(existing.st_mode))


def _discard(temporary: Path, file: BinaryIO | None) -> None:
    """Remove a temporary file whose save failed or was interrupted, then close it. With
    ``file`` None (an interrupt as open() returned) or closed, a file of that name may exist,
    closed and unlocked: it is removed the way a leftover is."""
    if file is None or file.closed:  # closed: renamed already, or about to be retried
        _remove_if_unlocked(temporary)
        return
    try:
        if _is_same_file(temporary, file.fileno()):  # not yet renamed, and still ours
            temporary.unlink()
    except OSError:
        pass  # the error that brought us here is the one to report
    finally:
        file.close()


#: errno values of a file system or a process that cannot give a file another owner.
_NO_CHOWN = {errno.EPERM, errno.EACCES, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EROFS}


def _keep_owner(descriptor: int, existing: os.stat_result) -> None:
    """Give the new file the replaced file's owner and group, as far as the process may: a
    file that root rewrites for a service user must stay readable by that user."""
    if not hasattr(os, "fchown"):  # pragma: no cover - Windows
        return
    now = os.fstat(descriptor)
    if (now.st_uid, now.st_gid) == (existing.st_uid, existing.st_gid):
        return
    for uid in (existing.st_uid, -1):  # owner and group; failing that (not root), the group
        if uid == -1 and now.st_gid == existing.st_gid:
            return
        try:
            os.fchown(descriptor, uid, existing.st_gid)
            return
        except OSError as error:
            if error.errno not in _NO_CHOWN:
                raise


def _lock(descriptor: int, wait: bool) -> bool:
    """Take the exclusive lock on an open file; False if it is held elsewhere or unsupported."""
    if not _HAS_LOCKS:  # pragma: no cover - Windows
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:  # held by a live writer, or a file system without locks
        return False
    return True


def _is_same_file(path: Path, descriptor: int) -> bool:
    try:
        named = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    opened = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _chmod(descriptor: int, mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(descriptor, mode)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable: fsync the folder that holds the new name."""
    if not hasattr(os, "O_DIRECTORY"):  # pragma: no cover - Windows cannot open a folder
        return
    try:
        # a folder cannot be opened with the built-in open, so a Ctrl-C in the instant
        # os.open returns can leave this descriptor open: read-only, holding no lock
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # a folder we may write but not read: the rename is all we can do
        return
    try:
        os.fsync(descriptor)
    except OSError as error:  # some file systems cannot fsync a folder; that is not a failure
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(descriptor)


def _remove_leftovers(folder: Path, prefix: str) -> None:
    """Remove the temporary files of this target that no live writer holds (left by a process
    that was killed mid-write). A file whose lock cannot be taken is being written: kept."""
    if not _HAS_LOCKS:  # pragma: no cover - Windows
        return
    pattern = re.compile(re.escape(prefix) + _RANDOM_PART)
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries if pattern.fullmatch(entry.name)]
    except OSError:
        return
    for name in names:
        _remove_if_unlocked(folder / name)


def _remove_if_unlocked(path: Path) -> None:
    """Remove the temporary file ``path`` unless a live writer holds its lock."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:  # gone already, or not ours to open
        return
    try:
        if (
            stat.S_ISREG(os.fstat(descriptor).st_mode)
            and _lock(descriptor, wait=False)
            and _is_same_file(path, descriptor)
        ):
            path.unlink()
    except OSError:
        pass  # the save itself succeeded; a leftover that cannot go now goes next time
    finally:
        os.close(descriptor)
