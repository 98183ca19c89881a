"""Analysis that needs the trained networks: per-layer CKA heatmaps and figures in TensorBoard.

Beyond the paper: for each transferred network, the linear CKA between each of its weight
layers and the same layer of the base it was built from, on a fixed probe batch of the target
half's validation images. Frozen layers sit at 1.0; fine-tuning shows how far it moved them.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from kerastransfer import data, fileio, plots, similarity, surgery
from kerastransfer.results import display_name

PROBE_IMAGES = 256
CKA_TREATMENTS = ("selffer", "selffer_ft", "transfer", "transfer_ft")


def layer_activations(model, inputs):
    """Outputs of every weight layer below the head, in order, on `inputs`."""
    layers = surgery.weight_layers(model)[:-1]
    probe = keras.Model(model.input, [layer.output for layer in layers])
    return [layer.name for layer in layers], probe.predict(inputs, verbose=0)


def cka_heatmap(study, records, split):
    """CKA of each transferred run against its source base, per layer; writes the figure.

    Returns (figure path, {"rows": [...], "layers": [...], "matrix": [[...]]}) or None when
    the split has no transferred runs with finished bases.
    """
    finished = {r["run"]: r for r in records if r["status"] == "ok"}
    runs = sorted((r for r in finished.values() if r["split"] == split
                   and r["treatment"] in CKA_TREATMENTS and r.get("seed") == 0),
                  key=lambda r: (CKA_TREATMENTS.index(r["treatment"]), r["n"]))
    base_ids = {f"{split}/base/{half}/seed0" for half in ("A", "B")}
    if not runs or not base_ids <= finished.keys():
        return None
    half = study.half(split, "B")
    probe = data.make_dataset(half.val_x[:PROBE_IMAGES], half.val_y[:PROBE_IMAGES],
                              study.preprocessing, batch_size=PROBE_IMAGES, training=False)
    inputs = next(iter(probe))[0]
    base_acts = {}
    for half_name in ("A", "B"):
        record = finished[f"{split}/base/{half_name}/seed0"]
        base = study.build_model(record["num_classes"])
        base.load_weights(os.path.join(study.workdir, record["weights"]))
        names, base_acts[half_name] = layer_activations(base, inputs)
    rows, matrix = [], []
    for record in runs:
        model = study.build_model(record["num_classes"])
        model.load_weights(os.path.join(study.workdir, record["weights"]))
        _, acts = layer_activations(model, inputs)
        rows.append(f"{display_name(record['treatment'])} n={record['n']}")
        matrix.append([similarity.linear_cka(a, b)
                       for a, b in zip(acts, base_acts[record["source"]])])
    path = os.path.join(study.workdir, "figures", f"cka_{split}.png")
    plots.plot_cka(np.array(matrix), rows, names, path,
                   title=f"Linear CKA with the source base, per layer ({split})")
    return path, {"rows": rows, "layers": names, "matrix": matrix}


def write_cka(study, records):
    """CKA heatmaps for every split; saves cka.json; returns the figure paths."""
    results, paths = {}, []
    for split in study.splits:
        outcome = cka_heatmap(study, records, split)
        if outcome:
            paths.append(outcome[0])
            results[split] = outcome[1]
    if results:
        fileio.write_json(os.path.join(study.workdir, "cka.json"), results)
    return paths


def log_figures(workdir, paths):
    """Puts the PNG figures into TensorBoard (workdir/tensorboard/analysis, Images tab)."""
    writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard", "analysis"))
    with writer.as_default():
        for path in paths:
            if path.endswith(".png") and os.path.exists(path):
                image = tf.io.decode_png(tf.io.read_file(path), channels=4)
                tf.summary.image(os.path.splitext(os.path.basename(path))[0], image[None],
                                 step=0)
    writer.close()
