"""This process's part in keras-tuner's distributed mode, read from its environment variables.

Every process runs the same command with KERASTUNER_TUNER_ID (`chief`, or a unique worker
id), KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT set; the chief serves the base search on
that port and the AnB+ search on the next one, and workers train the trials. Without
KERASTUNER_ORACLE_IP the process searches alone (`local`).
"""

import contextlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any

from kerastransfer.console import log
from kerastransfer.errors import StudyStopped, UsageError

WAIT_SECONDS = 3600  # how long a worker waits for the chief's base result (keras-tuner's own)


def distributed_role() -> str:
    """`local`, or `chief`/`worker` of keras-tuner's distributed mode (from its env vars)."""
    env = os.environ
    if "KERASTUNER_ORACLE_IP" not in env:
        return "local"
    port = env.get("KERASTUNER_ORACLE_PORT", "")
    if not port.isdigit() or not 0 < int(port) < 65535:
        raise UsageError(
            f"KERASTUNER_ORACLE_PORT={port!r} must be a free port number "
            "below 65535 (the AnB+ search uses the next one)"
        )
    if not env.get("KERASTUNER_TUNER_ID"):
        raise UsageError(
            "KERASTUNER_ORACLE_IP is set but KERASTUNER_TUNER_ID is not: set it "
            "to 'chief' on one process and a unique id on each worker"
        )
    return "chief" if "chief" in env["KERASTUNER_TUNER_ID"] else "worker"


def tuner_id() -> str:
    """The id this process trains trials under (keras-tuner's `tuner0` when searching alone)."""
    return os.environ.get("KERASTUNER_TUNER_ID", "tuner0")


def oracle_address() -> str:
    """`ip:port` the chief serves the current search on."""
    return f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"


@contextlib.contextmanager
def oracle_port(offset: int) -> Iterator[None]:
    """Distributed mode: the base search on KERASTUNER_ORACLE_PORT, the AnB+ one on the next."""
    port = os.environ.get("KERASTUNER_ORACLE_PORT")
    if port is None:
        yield
        return
    os.environ["KERASTUNER_ORACLE_PORT"] = str(int(port) + offset)
    try:
        yield
    finally:
        os.environ["KERASTUNER_ORACLE_PORT"] = port


def wait_for_chief(path: str) -> dict[str, Any]:
    """A worker waits for the chief to write the base search's best trial; returns it."""
    log(f"waiting for the chief to finish the base search ({path})")
    deadline = time.monotonic() + WAIT_SECONDS
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise StudyStopped(
                f"no base result from the chief after {WAIT_SECONDS}s "
                f"({path}); is the chief running on the same workdir?"
            )
        time.sleep(1)
    with open(path) as f:
        return json.load(f)
