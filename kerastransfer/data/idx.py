"""Reads and writes IDX files, the format MNIST and Fashion-MNIST ship in (usually gzipped).

Layout: two zero bytes, a type byte (0x08 = uint8), a byte with the number of dimensions,
one big-endian uint32 per dimension, then the payload in C order. Only uint8 payloads occur
in these datasets, so only those are supported.
"""

import gzip
import os
import struct
import zlib

import numpy as np

from kerastransfer.errors import UsageError
from kerastransfer.workdir import files

_UINT8 = 0x08


def read_idx(path: str | os.PathLike[str], *, hint: str = "") -> np.ndarray:
    """Returns the uint8 array stored in the IDX file `path` (gzipped when it ends in .gz).

    Args:
        path: the file.
        hint: appended to error messages, e.g. how to get a good copy of the file.
    Raises:
        UsageError: the file is unreadable, not IDX, truncated or has trailing bytes; the
            message names the file.
    """
    suffix = f"; {hint}" if hint else ""
    data = _read_bytes(path, suffix)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise UsageError(f"not an IDX file: {path} (bad magic number){suffix}")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != _UINT8:
        raise UsageError(
            f"unsupported IDX file {path}: element type 0x{dtype_code:02x}, only uint8 (0x08) "
            f"is supported{suffix}"
        )
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise UsageError(f"truncated IDX file {path}: header is incomplete{suffix}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected, found = int(np.prod(shape)), len(data) - header
    if found < expected:
        raise UsageError(
            f"truncated IDX file {path}: expected {expected} bytes of data for shape "
            f"{shape}, found {found}{suffix}"
        )
    if found > expected:
        raise UsageError(
            f"corrupt IDX file {path}: {found - expected} unexpected bytes after the data of "
            f"shape {shape}{suffix}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read_bytes(path: str | os.PathLike[str], suffix: str) -> bytes:
    """The file's content, gunzipped when the name ends in .gz; UsageError on any failure."""
    try:
        if str(path).endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise UsageError(f"missing IDX file {path}{suffix}") from None
    except EOFError:
        raise UsageError(f"truncated IDX file {path}: the gzip stream ends early{suffix}") from None
    except (OSError, zlib.error) as e:
        raise UsageError(f"unreadable IDX file {path}: {e}{suffix}") from None


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Writes a uint8 `array` as an IDX file (gzipped when `path` ends in .gz), atomically."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 255:
        raise ValueError(
            f"write_idx takes a uint8 array with 1..255 dims, got {array.dtype} with {array.ndim}"
        )
    data = bytes([0, 0, _UINT8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.tobytes()
    if os.fspath(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    files.write_bytes(path, data)
