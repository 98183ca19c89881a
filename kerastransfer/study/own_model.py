"""Transfer your own model to your own images: which n, frozen or fine-tuned?

The practitioner's version of the study. The source is a trained model (a user's `.keras`
file, a keras.applications backbone with local weights, or a keras-hub preset directory)
instead of a base net trained on half A; the target is a whole dataset (`--dataset`, e.g.
`image_folder` with `--image_dir`). For each n it trains frozen (AnB) and fine-tuned (AnB+)
transfers, plus the same architecture from scratch on the target as the baseline;
analysis/recommendation.py then recommends the n and mode with the best validation accuracy.
The source's preprocessing (its preprocess_input, or the preset's image converter) is the
study's, so training, scoring and the exported model all apply it.
"""

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from kerastransfer import data, models, surgery
from kerastransfer.config import Experiment, ModelConfig
from kerastransfer.data.preprocessing import Preprocessing
from kerastransfer.data.splits import ClassSplit
from kerastransfer.errors import UsageError
from kerastransfer.models.preprocessing import Normalization
from kerastransfer.study.plan import OWN_MODEL_SPLIT, RunSpec, base_id, check_layers, plan_own_model
from kerastransfer.study.study import Study
from kerastransfer.workdir.provenance import file_digest
from kerastransfer.workdir.records import RunLine


def load_study(
    experiment: Experiment,
    log: Callable[[str], None] = print,
    strategy: tf.distribute.Strategy | None = None,
    outdir: str | None = None,
) -> Study:
    """The Study of an experiment: the paper's grid, or transfer of the user's own model."""
    kind = OwnModelStudy if experiment.own_model else Study
    return kind.load(experiment, log=log, strategy=strategy, outdir=outdir)


class OwnModelStudy(Study):
    """A Study whose source network is given rather than trained on half A."""

    def __init__(
        self, experiment: Experiment, *, source_net: keras.Model, cuts: list[str], **kwargs: Any
    ) -> None:
        super().__init__(experiment, **kwargs)
        self.source_net, self.cuts = source_net, cuts
        source = experiment.model.source_model or experiment.model.source_weights
        if source is None:
            raise ValueError("an own-model study needs --source_model or --source_weights")
        self.source_digest = file_digest(
            models.hub_weights_file(source) if models.is_hub_source(source) else source
        )

    @classmethod
    def load(
        cls,
        experiment: Experiment,
        log: Callable[[str], None] = print,
        strategy: tf.distribute.Strategy | None = None,
        outdir: str | None = None,
    ) -> "OwnModelStudy":
        d = experiment.data
        source = data.load_source(
            d.dataset, data_dir=d.data_dir, manual_dir=d.manual_dir, image_dir=d.image_dir
        )
        every_class = tuple(range(source.num_classes))
        splits = {
            OWN_MODEL_SPLIT: ClassSplit(
                spec=OWN_MODEL_SPLIT,
                name=OWN_MODEL_SPLIT,
                dataset=d.dataset,
                a_classes=(),
                b_classes=every_class,
                class_names=tuple(source.class_names),
            )
        }
        source_net, normalization = _load_source_net(experiment)
        cuts = _cut_points(source_net, experiment.model)
        blocks = len(cuts)
        check_layers(
            experiment.grid.layers, blocks, "the source model", "pass --cut_layers to define blocks"
        )
        return cls(
            experiment,
            source=source,
            splits=splits,
            preprocessing=_adapt_input(source_net, normalization),
            runs=plan_own_model(experiment),
            log=log,
            strategy=strategy,
            outdir=outdir,
            source_net=source_net,
            cuts=cuts,
        )

    def given_records(self) -> dict[str, RunLine]:
        """The given source model stands in for every base A, as a finished run."""
        records = {}
        for seed in self.experiment.grid.seeds:
            run_id = base_id(OWN_MODEL_SPLIT, "A", seed)
            records[run_id] = {
                "run": run_id,
                "status": "ok",
                "source_model": True,
                "weights_sha256": self.source_digest,
            }
        return records

    def build_model(self, num_classes: int, weight_decay: float | None = None) -> keras.Model:
        return surgery.fresh_clone(self.source_net, num_classes)

    def copied_from(self, base_record: RunLine | None) -> keras.Model:
        """The given source model: what every transfer of this study copies."""
        return self.source_net

    def cut_names(self, model: keras.Model) -> list[str]:
        """The source model's cut points: --cut_layers, else its own, every --cut_every-th."""
        return self.cuts

    def record_fields(self, spec: RunSpec) -> dict[str, Any]:
        """The layer a run's n cuts after (`cut`), so the report can name the cut point in
        the model's own terms (e.g. conv3_block4_out)."""
        return {"cut": self.cuts[spec.n - 1]} if spec.n else {}


def _load_source_net(experiment: Experiment) -> tuple[keras.Model, Normalization]:
    """(the source network with a classifier head, its data.Preprocessing normalization)."""
    m = experiment.model
    if models.is_hub_source(m.source_model):
        features, normalization = models.load_hub_backbone(m.source_model, m.image_size)
        return models.classifier(features, num_classes=2), normalization
    if m.source_model:
        return models.load_user_model(m.source_model), {}
    if m.arch not in models.BACKBONES:
        raise UsageError(
            f"--source_weights needs --arch set to a keras.applications backbone "
            f"({', '.join(models.BACKBONES)}), not --arch={m.arch}"
        )
    size = m.image_size or 224
    net = models.build(
        m.arch, num_classes=2, input_shape=(size, size, 3), weights=m.source_weights, dropout=0.0
    )
    return net, models.normalization(m.arch)


def _cut_points(model: keras.Model, m: ModelConfig) -> list[str]:
    """The layer names that end blocks 1, 2, ...: --cut_layers, else the model's own
    (surgery.cut_layers), every --cut_every-th of them and the last (config.py checks the
    flags)."""
    cuts = surgery.cut_layers(model, list(m.cut_layers) or None)
    kept = cuts[m.cut_every - 1 :: m.cut_every]
    return kept if kept and kept[-1] == cuts[-1] else [*kept, cuts[-1]]


def _adapt_input(model: keras.Model, normalization: Normalization) -> Preprocessing:
    """Target images are resized, their channels mapped to what the model takes, and
    normalized as the source model expects."""
    shape = model.input_shape
    if len(shape) != 4 or None in shape[1:]:
        raise UsageError(
            f"the source model's input shape {shape} is not a fixed image "
            "size; rebuild it with keras.Input((H, W, C)) and save it again"
        )
    height, width, channels = shape[1:]
    if channels not in (1, 3):
        raise UsageError(
            f"the source model takes {channels}-channel images; only 1 "
            "(grey) or 3 (RGB) can be made from image files"
        )
    return Preprocessing((height, width), channels, **normalization)
