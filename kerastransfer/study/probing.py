"""The activations of trained networks on a probe batch, for the CKA heatmaps
(analysis/similarity.py computes the CKA from them).

The probe is a fixed batch of a split's half-B validation images, so every network of the
split is compared on the same examples.
"""

import os
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from kerastransfer import data, surgery
from kerastransfer.study.study import Study
from kerastransfer.workdir.records import RunRecord

PROBE_IMAGES = 256
# A network built and traced once per class count: (model, layer names, traced probe).
_Traced = tuple[keras.Model, list[str], Callable[[tf.Tensor], list[tf.Tensor]]]


class Prober:
    """The weight layers' activations (all but the head) of a split's trained runs.

    One network per class count is built and traced once; each run's weights are loaded into
    it in turn (building and tracing a network per run took most of the analysis time).
    """

    def __init__(self, study: Study, split: str) -> None:
        half = study.halves.half(split, "B")
        probe = data.make_dataset(
            half.val_x[:PROBE_IMAGES],
            half.val_y[:PROBE_IMAGES],
            study.preprocessing,
            batch_size=PROBE_IMAGES,
            training=False,
        )
        self.study, self.inputs = study, next(iter(probe))[0]
        self._networks: dict[int, _Traced] = {}  # by num_classes

    def activations(self, record: RunRecord) -> tuple[list[str], list[np.ndarray]]:
        """(layer names, [numpy activations per layer]) of a finished run (a RunRecord) on
        the probe; ValueError for a record without the classes and weights of one."""
        if record.num_classes is None or record.weights is None:
            raise ValueError(f"{record.run}: no num_classes or weights, not a finished run")
        if record.num_classes not in self._networks:
            model = self.study.build_model(record.num_classes)
            layers = surgery.weight_layers(model)[:-1]
            outputs = keras.Model(model.input, [layer.output for layer in layers])
            self._networks[record.num_classes] = (
                model,
                [layer.name for layer in layers],
                tf.function(lambda x: outputs(x, training=False)),
            )
        model, names, traced = self._networks[record.num_classes]
        model.load_weights(os.path.join(self.study.workdir, record.weights))
        return names, [a.numpy() for a in traced(self.inputs)]
