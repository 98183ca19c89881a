"""The exceptions that turn into a one-line message instead of a traceback."""

import errno


class UsageError(ValueError):
    """Bad input from the user: the message names the bad value and how to fix it.

    `python -m kerastransfer.run` prints it as one line, without a traceback, and exits 2.
    A ValueError, so that Python callers of the package can catch it as one.
    """


class StudyStopped(Exception):
    """A run failed and --on_failure=stop ended the study: one line, exit status 1.

    Not bad input: the command was right but training went wrong (e.g. a diverging loss).
    """


# A write that failed for want of room: the device is full, a quota or a file size limit.
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class DiskFull(StudyStopped):
    """A file could not be written for want of room: one line, exit status 1.

    Raised by the workdir's writers (workdir/files.py, workdir/results.py), which leave every
    file written before it whole, so the same command resumes once there is room.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"no room to write {path} ({reason}); every file written before is whole: free "
            "space on that file system (or raise its quota or file size limit) and run the same "
            "command again to resume"
        )
