"""Atomic file writes: a crash never leaves a half-written file behind.

Every file the package writes goes through here: write to a temporary file in the same
directory, flush, fsync, then rename over the target (rename is atomic on POSIX). Two
exceptions by design: results.jsonl is an append-only log (workdir.results.ResultStore appends whole
lines under a lock and fsyncs them), and TensorBoard event files belong to TensorFlow.

A write that finds no room (full disk, quota, file size limit) raises errors.DiskFull and
leaves the target as it was. An HDF5 file (Keras weights and checkpoints) is refused before
it starts unless the disk has room to spare: HDF5 1.14 cannot close a file whose last writes
failed, and the process then crashes at exit. A larger file that still fills the disk
mostly fails in a write h5py reports, and comes out as DiskFull too.
"""

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from typing import Any

from kerastransfer.errors import NO_ROOM, DiskFull, UsageError

# A path the writers take: a str or an os.PathLike (pathlib.Path).
StrPath = str | os.PathLike[str]

# The free room an HDF5 write needs before it starts: at least this, and twice the largest
# file beside it (a run's previous checkpoint).
HDF5_MIN_FREE_BYTES = 64 << 20

# How HDF5 names the errno of a failed write in h5py's messages: "..., errno = 28, ...".
_HDF5_ERRNO = re.compile(r"\berrno = (\d+)\b")


def no_room_errno(error: BaseException) -> int | None:
    """The errno of `error` if it is a write that failed for want of room, else None.

    h5py gives most failed writes as OSErrors with the errno, but a write that fails while a
    file is closed comes as a RuntimeError naming the errno only in its message.
    """
    if isinstance(error, OSError) and error.errno in NO_ROOM:
        return error.errno
    if isinstance(error, (OSError, RuntimeError)):
        found = _HDF5_ERRNO.search(str(error))
        if found and int(found[1]) in NO_ROOM:
            return int(found[1])
    return None


@contextlib.contextmanager
def no_room_is_disk_full(path: StrPath) -> Iterator[None]:
    """Turns an error for want of room while writing `path` into errors.DiskFull."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        number = no_room_errno(error)
        if number is None:
            raise
        raise DiskFull(os.fspath(path), os.strerror(number)) from None


@contextlib.contextmanager
def atomic_path(path: StrPath) -> Iterator[str]:
    """Yields a temporary path beside `path`; renames it onto `path` if the block succeeds.

    Use it for writers that want a file name (Keras `save_weights`, matplotlib `savefig`).
    A write that finds no room raises errors.DiskFull, with `path` untouched.
    """
    directory = os.path.dirname(os.path.abspath(path))
    base, ext = os.path.splitext(os.path.basename(path))
    if base.endswith(".weights"):  # Keras insists on the `.weights.h5` suffix
        base, ext = base[: -len(".weights")], ".weights" + ext
    with no_room_is_disk_full(path):
        os.makedirs(directory, exist_ok=True)
        if ext.endswith(".h5"):
            _check_room_for_hdf5(path, directory)
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{ext}", dir=directory)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.close(fd)
        try:
            yield tmp
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_directory(directory)
        except (OSError, RuntimeError) as error:
            if no_room_errno(error) is not None:
                # h5py keeps a file it failed to write open, and the disk only gets its room
                # back when it closes it, which writes again: empty it so that close fits.
                os.truncate(tmp, 0)
            raise
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def _check_room_for_hdf5(path: StrPath, directory: str) -> None:
    """Raises DiskFull unless `directory`'s file system has the room an HDF5 write needs."""
    beside = (entry.stat().st_size for entry in os.scandir(directory) if entry.is_file())
    needed = max(HDF5_MIN_FREE_BYTES, 2 * max(beside, default=0))
    stat = os.statvfs(directory)
    free = stat.f_bavail * stat.f_frsize
    if stat.f_blocks and free < needed:  # some network file systems report no size at all
        raise DiskFull(
            os.fspath(path),
            f"{free / 2**20:.1f} MiB free, under the {needed / 2**20:.0f} MiB an HDF5 file "
            "needs to be written safely",
        )


def write_bytes(path: StrPath, data: bytes) -> None:
    """Writes `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()


def write_text(path: StrPath, text: str) -> None:
    """Writes `text` (UTF-8) to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: StrPath, obj: object) -> None:
    """Writes `obj` as indented JSON to `path` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def fsync_tree(path: str) -> None:
    """fsyncs every file and directory under `path`.

    For a directory written by a library that takes no temporary path (tf.saved_model.save):
    write it under a staging name, fsync_tree it, then rename it into place.
    """
    for root, _, names in os.walk(path):
        for name in names:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_directory(root)


def _json_default(value: object) -> object:
    """Lets numpy scalars and arrays through json.dumps."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(directory: str) -> None:
    """Makes the rename itself durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: str, key: str, fix: str) -> dict[str, Any]:
    """The JSON object stored at `path`, which must hold `key`; UsageError naming the file,
    what is wrong and `fix` when it cannot be read, parsed, or lacks the key."""
    try:
        with open(path) as f:
            stored = json.load(f)
        stored[key]  # noqa: B018  (without it the file is damaged)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{path} is unreadable ({error}); {fix}") from None
    return stored
