"""Pick the best transferred network of a workdir and export it for TF-Serving.

The choice uses the validation metric (the paper's best-k), never test accuracy, among the
treatments in --export_treatments; --export_run names one run instead.
"""

import dataclasses
import hashlib
import json
import os

from kerastransfer import export, own_model
from kerastransfer.config import Experiment
from kerastransfer.errors import UsageError
from kerastransfer.results import ResultStore

WARMUP_IMAGES = 4


def choose_run(records, treatments, run_id=None):
    """The record to export: `run_id` if given, else the best ok run of `treatments`."""
    ok = [r for r in records if r["status"] == "ok"]
    if run_id:
        for record in ok:
            if record["run"] == run_id:
                return record
        known = ", ".join(r["run"] for r in ok[:5]) or "none"
        raise UsageError(f"--export_run={run_id} is not a finished run of this workdir; "
                         f"finished runs include: {known}")
    candidates = [r for r in ok if r["treatment"] in treatments]
    if not candidates:
        raise UsageError(f"no finished run of --export_treatments={','.join(treatments)} in "
                         "this workdir; train them first or pass --export_run=RUN_ID")
    return max(candidates, key=lambda r: (r["best_k"], r["final_val"]))


def stored_experiment(experiment):
    """The workdir's own config (what its runs were trained with), with our export flags."""
    path = os.path.join(experiment.workdir, "config.json")
    if not os.path.exists(path):
        raise UsageError(f"--workdir={experiment.workdir} has no config.json; run the grid "
                         "there first (--mode=all or --mode=train)")
    with open(path) as f:
        stored = json.load(f)["experiment"]
    overrides = {name: getattr(experiment, name) for name in
                 ("workdir", "export_run", "export_dir", "export_treatments", "model_name",
                  "data_dir", "manual_dir", "image_dir")}
    fields = {field.name for field in dataclasses.fields(Experiment)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items() if k in fields}
    return Experiment(**{**values, **overrides}), stored


def export_best(experiment):
    """Exports the chosen run as the next version under the export base; returns its dir."""
    experiment, stored = stored_experiment(experiment)
    records = list(ResultStore(experiment.workdir).latest().values())
    record = choose_run(records, experiment.export_treatments, experiment.export_run)
    study = own_model.make_study(experiment).prepare()
    model = study.build_model(record["num_classes"])
    model.load_weights(os.path.join(experiment.workdir, record["weights"]))
    half = study.half(record["split"], record["target"])
    split = study.splits[record["split"]]
    metadata = {
        "run": record["run"], "split": record["split"], "split_spec": split.spec,
        "treatment": record["treatment"], "n": record["n"], "seed": record["seed"],
        "source": record["source"], "target": record["target"],
        "metrics": {name: record[name] for name in
                    ("best_k", "k", "final_val", "test_accuracy")},
        "label_map": {str(k): v for k, v in split.label_map(record["target"]).items()},
        "config_sha256": hashlib.sha256(
            json.dumps(stored, sort_keys=True).encode()).hexdigest(),
        "source_commit": _commit(experiment.workdir),
    }
    return export.export_model(
        model, base_dir=experiment.export_dir or os.path.join(experiment.workdir, "export"),
        model_name=experiment.model_name, class_names=list(half.class_names),
        preprocessing=study.preprocessing, metadata=metadata,
        warmup_images=_warmup(half.test_x, study.preprocessing))


def _warmup(images, preprocessing):
    """A few real test images, when they already have the model's input size."""
    sample = images[:WARMUP_IMAGES]
    if sample.shape[1:] == (*preprocessing.image_size, preprocessing.channels):
        return sample
    return None


def _commit(workdir):
    with open(os.path.join(workdir, "config.json")) as f:
        return json.load(f).get("source_commit")
