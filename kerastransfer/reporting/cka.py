"""Figures that need the trained networks: per-layer CKA heatmaps, and figures in TensorBoard.

Beyond the paper: for each transferred network, the linear CKA between each of its weight
layers and the same layer of the base it was built from, on a fixed probe batch of the target
half's validation images. Frozen layers sit at 1.0; fine-tuning shows how far it moved them.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from kerastransfer import data, surgery, treatments
from kerastransfer.reporting import plots, similarity
from kerastransfer.workdir import files

PROBE_IMAGES = 256
CKA_TREATMENTS = treatments.COPIED


class _Prober:
    """Gram matrices of the weight layers' activations of trained runs on one probe batch.

    One network per class count is built and traced once; each run's weights are loaded into
    it in turn (building and tracing a network per run took most of the analysis time).
    """

    def __init__(self, study, inputs):
        self.study, self.inputs = study, inputs
        self._networks = {}  # num_classes -> (model, layer names, traced probe)

    def grams(self, record):
        """(layer names, [Gram matrix per layer]) of a finished run."""
        if record["num_classes"] not in self._networks:
            model = self.study.build_model(record["num_classes"])
            layers = surgery.weight_layers(model)[:-1]
            outputs = keras.Model(model.input, [layer.output for layer in layers])
            self._networks[record["num_classes"]] = (
                model,
                [layer.name for layer in layers],
                tf.function(lambda x: outputs(x, training=False)),
            )
        model, names, activations = self._networks[record["num_classes"]]
        model.load_weights(os.path.join(self.study.workdir, record["weights"]))
        return names, [similarity.gram(a.numpy()) for a in activations(self.inputs)]


def cka_heatmap(study, records, split):
    """CKA of each transferred run against its source base, per layer; writes the figure.

    Returns (figure path, {"rows": [...], "layers": [...], "matrix": [[...]]}) or None when
    the split has no transferred runs with finished bases.
    """
    finished = {r["run"]: r for r in records if r["status"] == "ok"}
    runs = sorted(
        (
            r
            for r in finished.values()
            if r["split"] == split and r["treatment"] in CKA_TREATMENTS and r.get("seed") == 0
        ),
        key=lambda r: (CKA_TREATMENTS.index(r["treatment"]), r["n"]),
    )
    base_ids = {f"{split}/base/{half}/seed0" for half in ("A", "B")}
    if not runs or not base_ids <= finished.keys():
        return None
    half = study.halves.half(split, "B")
    probe = data.make_dataset(
        half.val_x[:PROBE_IMAGES],
        half.val_y[:PROBE_IMAGES],
        study.preprocessing,
        batch_size=PROBE_IMAGES,
        training=False,
    )
    prober = _Prober(study, next(iter(probe))[0])
    base_grams = {}
    for half_name in ("A", "B"):
        names, base_grams[half_name] = prober.grams(finished[f"{split}/base/{half_name}/seed0"])
    rows, matrix = [], []
    for record in runs:
        _, grams = prober.grams(record)
        rows.append(
            f"{treatments.display_name(record['treatment'], record['target'])} n={record['n']}"
        )
        matrix.append([_cka_or_none(a, b) for a, b in zip(grams, base_grams[record["source"]])])
    path = os.path.join(study.workdir, "figures", f"cka_{split}.png")
    plots.plot_cka(
        np.array(matrix, dtype=float),
        rows,
        names,
        path,
        title=f"Linear CKA with the source base, per layer ({split})",
    )
    return path, {"rows": rows, "layers": names, "matrix": matrix}


def _cka_or_none(gram_a, gram_b):
    """Linear CKA of two Gram matrices, or None where it is undefined (a layer whose
    activations are constant on the probe batch, as in a dead network): one cell, not the
    analysis, is lost."""
    try:
        return similarity.gram_cka(gram_a, gram_b)
    except ValueError:
        return None


def write_cka(study, records):
    """CKA heatmaps for every split; saves cka.json; returns the figure paths."""
    results, paths = {}, []
    for split in study.splits:
        outcome = cka_heatmap(study, records, split)
        if outcome:
            paths.append(outcome[0])
            results[split] = outcome[1]
    if results:
        files.write_json(os.path.join(study.workdir, "cka.json"), results)
    return paths


def log_figures(workdir, paths):
    """Puts the PNG figures into TensorBoard (workdir/tensorboard/analysis, Images tab)."""
    writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard", "analysis"))
    with writer.as_default():
        for path in paths:
            if path.endswith(".png") and os.path.exists(path):
                image = tf.io.decode_png(tf.io.read_file(path), channels=4)
                tf.summary.image(os.path.splitext(os.path.basename(path))[0], image[None], step=0)
    writer.close()
