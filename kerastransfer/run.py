"""Entry point: `python -m kerastransfer.run --flagfile=configs/fashion_mnist.flags`.

Wires flags -> Experiment -> the driver of --mode (app/) and nothing else. Bad input
of any kind ends with one line on stderr and exit status 2, before the workdir is touched.
"""

import os
import sys
from typing import NoReturn

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags, logging  # noqa: E402

from kerastransfer import flags as kt_flags  # noqa: E402  (defines every flag)
from kerastransfer.errors import StudyStopped, UsageError  # noqa: E402

FLAGS = kt_flags.FLAGS


def fail(message: str) -> NoReturn:
    """One line on stderr, exit status 2: how every bad input ends."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's parser, but a bad flag is one line and exit 2 instead of usage text."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        message = " ".join(str(error).replace("ERROR::", "").split())
        if "flagfile" in message:
            message += "; pass an existing file, e.g. --flagfile=configs/fashion_mnist.flags"
        elif "Unknown command line flag" in message:
            message += "; --helpfull lists every flag"
        fail(message)


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with stderr silenced.

    TensorFlow 2.21 prints C++ start-up notes (oneDNN, CUDA stubs) at import whatever
    TF_CPP_MIN_LOG_LEVEL says; they would bury the one-line errors this command promises.
    A failed import still raises, and its traceback prints once stderr is back.
    """
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401, PLC0415
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def main(argv: list[str]) -> None:
    logging.set_verbosity(logging.WARNING)  # TFDS and TF log every file they open at INFO
    if len(argv) > 1:
        fail(f"unexpected argument {argv[1]!r}; every option is a --flag")
    try:
        from kerastransfer import config  # noqa: PLC0415  (validates before TensorFlow loads)

        experiment = config.from_flags(FLAGS)
        import_tensorflow_quietly()
        from kerastransfer.app import drive  # noqa: PLC0415  (imports TensorFlow)

        drive(experiment, argv=sys.argv)
    except UsageError as error:
        fail(str(error))
    except StudyStopped as error:
        print(f"stopped: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
