"""Test-only launcher: the real command line, with every TFDS dataset replaced by mock data.

`python tests/helpers/mock_tfds_run.py NUM_EXAMPLES --flag=value ...` enters
`tfds.testing.mock_data(num_examples=NUM_EXAMPLES)` (random images and labels shaped like
the dataset's features) and runs kerastransfer.run's main inside it, so the imagenet2012
path (decode, resize, crop, mirror, mean subtraction, label remap) runs without ImageNet.
"""

import sys

import tensorflow_datasets as tfds
from absl import app

from kerastransfer import run

if __name__ == "__main__":
    num_examples = int(sys.argv[1])
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    with tfds.testing.mock_data(num_examples=num_examples):
        app.run(run.main, flags_parser=run.parse_flags)
