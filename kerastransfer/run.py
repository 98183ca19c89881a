"""Entry point: `python -m kerastransfer.run --flagfile=configs/fashion_mnist.flags`.

Wires flags -> Experiment -> stages (train grid, analyze, export) and nothing else. Bad input
of any kind ends with one line on stderr and exit status 2, before the workdir is touched.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from kerastransfer import flags as kt_flags  # noqa: E402  (defines every flag)
from kerastransfer.errors import StudyStopped, UsageError  # noqa: E402

FLAGS = kt_flags.FLAGS


def fail(message):
    """One line on stderr, exit status 2: how every bad input ends."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_flags(argv):
    """absl's parser, but a bad flag is one line and exit 2 instead of usage text."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        fail(" ".join(str(error).replace("ERROR::", "").split()))


def main(argv):
    logging.set_verbosity(logging.WARNING)  # TFDS and TF log every file they open at INFO
    if len(argv) > 1:
        fail(f"unexpected argument {argv[1]!r}; every option is a --flag")
    try:
        from kerastransfer import config  # noqa: PLC0415  (validates before TensorFlow loads)

        experiment = config.from_flags(FLAGS)
        from kerastransfer import stages  # noqa: PLC0415  (imports TensorFlow)

        stages.run(experiment, argv=sys.argv)
    except UsageError as error:
        fail(str(error))
    except StudyStopped as error:
        print(f"stopped: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
