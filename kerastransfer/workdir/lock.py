"""The workdir lock: one runner at a time (or any number of cooperating shards)."""

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator

from kerastransfer.errors import UsageError


@contextlib.contextmanager
def workdir_lock(workdir: str, shared: bool = False) -> Iterator[None]:
    """Holds an exclusive lock on workdir/.lock; a second runner is refused at once.

    The kernel drops the lock when its process dies, so a crashed runner never blocks the
    next one; the file keeps the holder's host and pid for the error message. With
    `shared` (sharded runners, which coordinate through claims: study/sharding.py) the lock
    is shared: any number of shards hold it together, and an unsharded runner is refused
    while they do, and the other way round.
    """
    try:
        os.makedirs(workdir, exist_ok=True)
        fd = os.open(os.path.join(workdir, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise UsageError(
            f"--workdir={workdir} is not writable ({error.strerror}); pass a "
            "directory you can write to"
        ) from None
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise UsageError(
                f"workdir {workdir} is in use by {holder}; wait for it to finish "
                "or use another --workdir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"host {socket.gethostname()} pid {os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
