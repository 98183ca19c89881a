"""What every row trains: the Experiment a flagfile describes, and the study's first half
(A of its first split) with its solver and model."""

import dataclasses
import os

from tools.bench import REPO

DEFAULT_FLAGFILE = os.path.join(REPO, "configs", "fashion_mnist.flags")  # the default study
LONG_FLAGFILE = os.path.join(REPO, "configs", "fashion_mnist_long.flags")  # 4x as long


def load_experiment(flagfile, workdir, **overrides):
    """The Experiment a flagfile describes, as the runner would build it."""
    from kerastransfer import config  # noqa: PLC0415
    from kerastransfer import flags as kt_flags  # noqa: PLC0415

    kt_flags.FLAGS.unparse_flags()
    kt_flags.FLAGS(["benchmark", f"--flagfile={flagfile}", f"--workdir={workdir}"])
    return config.from_flags(kt_flags.FLAGS).replace(**overrides)


@dataclasses.dataclass
class Setup:
    """What every row trains: the study's first half (A of its first split) and solver."""

    experiment: object
    study: object
    half: object
    workdir: str

    @property
    def x(self):
        """The half's training images as the model sees them (float32, preprocessed)."""
        return self.study.preprocessing.eval_tf(self.half.train_x).numpy()

    @property
    def val_x(self):
        return self.study.preprocessing.eval_tf(self.half.val_x).numpy()

    def build(self):
        return self.study.build_model(self.half.num_classes)


def make_setup(flagfile, workdir):
    from kerastransfer.study.study import Study  # noqa: PLC0415

    experiment = load_experiment(
        flagfile, workdir, splits=load_experiment(flagfile, workdir).data.splits[:1]
    )
    study = Study.load(experiment, log=lambda message: None)
    split = next(iter(study.splits))
    return Setup(experiment, study, study.halves.half(split, "A"), workdir)
