"""Atomic file writes: a crash never leaves a half-written file behind.

Every file the package writes goes through here: write to a temporary file in the same
directory, flush, fsync, then rename over the target (rename is atomic on POSIX). Two
exceptions by design: results.jsonl is an append-only log (workdir.results.ResultStore appends whole
lines under a lock and fsyncs them), and TensorBoard event files belong to TensorFlow.
"""

import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; renames it onto `path` if the block succeeds.

    Use it for writers that want a file name (Keras `save_weights`, matplotlib `savefig`).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(path))
    if base.endswith(".weights"):  # Keras insists on the `.weights.h5` suffix
        base, ext = base[: -len(".weights")], ".weights" + ext
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{ext}", dir=directory)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_directory(directory)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path, data):
    """Writes `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()


def write_text(path, text):
    """Writes `text` (UTF-8) to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    """Writes `obj` as indented JSON to `path` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def fsync_tree(path):
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


def _json_default(value):
    """Lets numpy scalars and arrays through json.dumps."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(directory):
    """Makes the rename itself durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
