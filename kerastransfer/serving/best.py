"""Pick the best transferred network of a workdir and export it for TF-Serving.

The choice uses the validation accuracy of the weights that are exported (each run's final
weights: `final_val`, the best-k metric breaking ties), never test accuracy, among the
treatments in --export_treatments; --export_run names one run instead. An own-model study
exports the best seed of the cell (recipe and n) its recommendation chose. Ranking on best-k
would select on evaluations of weights that are not the ones delivered.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from kerastransfer.errors import UsageError
from kerastransfer.serving import export

if TYPE_CHECKING:
    import keras
    import numpy as np

    from kerastransfer.config import Experiment
    from kerastransfer.data import ClassSplit, Preprocessing
    from kerastransfer.data.halves import InMemoryHalves, StreamedHalves

# A record of results.jsonl: one run (workdir/results.py), a JSON object.
Record = dict[str, Any]

WARMUP_IMAGES = 4


class ExportedStudy(Protocol):
    """What export_run reads of the study (study.Study, which serving may not import)."""

    experiment: Experiment
    workdir: str
    preprocessing: Preprocessing
    splits: dict[str, ClassSplit]
    halves: InMemoryHalves | StreamedHalves

    def trained_network(self, record: Record) -> keras.Model: ...


def choose_run(
    records: Iterable[Record],
    treatments: Collection[str],
    run_id: str | None = None,
    cell: tuple[str, int] | None = None,
) -> Record:
    """The record to export: `run_id` if given, else the best ok run of `treatments` (of the
    (treatment, n) `cell` only, when given and trained: an own-model study's recommendation)."""
    ok = [r for r in records if r["status"] == "ok"]
    if run_id:
        for record in ok:
            if record["run"] == run_id:
                return record
        known = ", ".join(r["run"] for r in ok[:5]) or "none"
        raise UsageError(
            f"--export_run={run_id} is not a finished run of this workdir; "
            f"finished runs include: {known}"
        )
    candidates = [r for r in ok if r["treatment"] in treatments]
    if not candidates:
        raise UsageError(
            f"no finished run of --export_treatments={','.join(treatments)} in "
            "this workdir; train them first or pass --export_run=RUN_ID"
        )
    recommended = [r for r in candidates if cell and (r["treatment"], r["n"]) == tuple(cell)]
    return max(recommended or candidates, key=lambda r: (r["final_val"], r["best_k"]))


def export_run(study: ExportedStudy, record: Record, stored: dict[str, Any]) -> str:
    """Exports the run of `record` as the next version under the export base; returns its
    dir. `stored`: the workdir's config.json (for the metadata)."""
    x = study.experiment.export
    model = study.trained_network(record)
    half = study.halves.half(record["split"], record["target"])
    split = study.splits[record["split"]]
    metadata = {
        "run": record["run"],
        "split": record["split"],
        "split_spec": split.spec,
        "treatment": record["treatment"],
        "n": record["n"],
        "seed": record["seed"],
        "source": record["source"],
        "target": record["target"],
        "metrics": {name: record[name] for name in ("best_k", "k", "final_val", "test_accuracy")},
        "label_map": {str(k): v for k, v in split.label_map(record["target"]).items()},
        "config_sha256": hashlib.sha256(
            json.dumps(stored["experiment"], sort_keys=True).encode()
        ).hexdigest(),
        "source_commit": stored.get("source_commit"),
    }
    return export.export_model(
        model,
        base_dir=x.export_dir or os.path.join(study.workdir, "export"),
        model_name=x.model_name,
        class_names=list(half.class_names),
        preprocessing=study.preprocessing,
        metadata=metadata,
        warmup_images=_warmup(half.test_x, study.preprocessing),
        max_image_pixels=x.export_max_image_pixels,
        max_batch=x.export_max_batch,
    )


def _warmup(images: np.ndarray, preprocessing: Preprocessing) -> np.ndarray | None:
    """A few real test images, when they already have the model's input size."""
    sample = images[:WARMUP_IMAGES]
    if sample.shape[1:] == (*preprocessing.image_size, preprocessing.channels):
        return sample
    return None
