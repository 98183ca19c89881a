"""One typed run record: what results.jsonl holds for a network, read by attribute.

A run's line is built here, for each way a run ends (`trained_line`: ok or failed with its
outcome; `skipped_line`), and read back as a RunRecord by `RunRecord.from_json`, which checks
every field (a bad one is a UsageError naming where it came from and the fix). What a
treatment or the study adds beyond the fields of RunRecord (cache timings, stages, the
strategy ...) is kept in `extra`, as stored.
"""

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kerastransfer.errors import UsageError
from kerastransfer.treatments import ALL_NAMES

if TYPE_CHECKING:
    from _typeshed import DataclassInstance  # a RunSpec (study/ may not be imported here)

STATUSES = ("ok", "failed", "skipped")
# One run's results.jsonl line as the runner builds, appends and reads it back: a JSON object
# whose fields RunRecord lists (Any: their JSON values, and those of what `extra` keeps).
RunLine = dict[str, Any]
# The numbers every reader may ask of a record: finite, or None when the run has none.
NUMBERS = ("best_k", "test_accuracy", "final_val", "train_seconds", "images_per_second")


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One network's record (results.jsonl's line, or one of the paper's networks).

    Attributes:
        run: the stable run id (random0/transfer_ft/n3/seed0).
        treatment, split, source, target, n, seed: its RunSpec (source None for a base or
            random features; seed None for the paper's networks).
        status: "ok", "failed" or "skipped"; `reason` says why a run did not end ok.
        best_k, k: the paper's metric, the mean of the run's k best validation evaluations.
        final_val, test_accuracy: the delivered (final) weights' validation and test accuracy.
        val_history: [[step, validation accuracy], ...].
        train_seconds, images_per_second, steps: how long it trained.
        weights, weights_bytes, weights_sha256: its final weights file, relative to the
            workdir, with the size and digest that prove it intact.
        num_classes, class_names, val_examples, test_examples: what it was trained and
            evaluated on.
        cut, layer_decay: the own-model study's cut layer of n; layer-wise decay's decay.
        extra: every other field the run's line holds, as stored.
    """

    run: str
    treatment: str
    split: str
    source: str | None
    target: str
    n: int
    seed: int | None
    status: str = "ok"
    reason: str | None = None
    best_k: float | None = None
    k: int | None = None
    final_val: float | None = None
    test_accuracy: float | None = None
    val_history: list[list[float]] | None = None
    train_seconds: float | None = None
    images_per_second: float | None = None
    steps: int | None = None
    weights: str | None = None
    weights_bytes: int | None = None
    weights_sha256: str | None = None
    num_classes: int | None = None
    class_names: list[str] | None = None
    val_examples: int | None = None
    test_examples: int | None = None
    cut: str | None = None
    layer_decay: float | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_json(
        cls, raw: object, where: str, fix: str = "fix or remove that record"
    ) -> "RunRecord":
        """The checked record of one results.jsonl line (or a paper network); raises
        UsageError naming `where` and `fix`.

        Canonical: source "" becomes None, n an int, status defaults to "ok", and an "ok"
        record has a finite `best_k`; a record without a run id gets one from its fields.
        """
        if isinstance(raw, RunRecord):
            return raw
        if not isinstance(raw, dict):
            raise UsageError(
                f"{where}: expected a JSON object per run, got {type(raw).__name__}; {fix}"
            )

        def bad(field: str, why: str) -> UsageError:
            return UsageError(f"{where}: {field}={raw.get(field)!r} {why}; {fix}")

        values = dict(raw)
        if values.get("treatment") not in ALL_NAMES:
            raise bad("treatment", f"is not one of {', '.join(ALL_NAMES)}")
        values["status"] = values.get("status") or "ok"
        if values["status"] not in STATUSES:
            raise bad("status", f"is not one of {', '.join(STATUSES)}")
        for field in ("split", "target"):
            if not isinstance(values.get(field), str) or not values[field]:
                raise bad(field, "must be a non-empty string")
        values["source"] = values.get("source") or None
        n = values.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise bad("n", "must be a whole number >= 0 (0 for base networks)")
        seed = values.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise bad("seed", "must be a whole number or null")
        values["seed"] = seed
        for field in NUMBERS:
            value = values.get(field)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise bad(field, "must be a finite number or null")
            values[field] = None if value is None else float(value)
        if values["status"] == "ok" and values["best_k"] is None:
            raise bad("best_k", "is missing for a run with status ok")
        if not values.get("run"):
            seed_part = "" if seed is None else f"/seed{seed}"
            values["run"] = (
                f"{values['split']}/{values['treatment']}/{values['target']}/n{n}{seed_part}"
            )
        known = {field.name for field in dataclasses.fields(cls)} - {"extra"}
        return cls(
            **{key: value for key, value in values.items() if key in known},
            extra={key: value for key, value in values.items() if key not in known},
        )


def trained_line(spec: "DataclassInstance", outcome: Mapping[str, Any], **fields: Any) -> RunLine:
    """The results.jsonl line of a run that trained: its RunSpec (a dataclass), its
    training.RunOutcome's record and what the study adds (test accuracy, weights ...)."""
    return {**dataclasses.asdict(spec), **outcome, **fields}


def skipped_line(spec: "DataclassInstance", reason: str) -> RunLine:
    """The line of a run that did not train (its base did not finish ok)."""
    return {**dataclasses.asdict(spec), "status": "skipped", "reason": reason}


# What a reader of run records takes: lines as stored, or RunRecords (normalize_records).
AnyRecord = RunLine | RunRecord
