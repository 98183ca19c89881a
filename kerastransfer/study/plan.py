"""The study's plan: one RunSpec per network, in execution order (bases first)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kerastransfer import designs, treatments
from kerastransfer.config import DIRECTIONS, Experiment
from kerastransfer.data.splits import ALL_SPLIT
from kerastransfer.errors import UsageError

# The own-model study's single split: every class of the target dataset.
OWN_MODEL_SPLIT = "target"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One network of the study; `run` is its stable id, e.g. random0/transfer_ft/n3/seed0."""

    run: str
    treatment: str
    split: str
    source: str
    target: str
    n: int
    seed: int

    @property
    def base_run(self) -> str | None:
        """The base network this run copies from (None for bases and random features, which
        copy nothing: their source is empty)."""
        if not self.source:
            return None
        return base_id(self.split, self.source, self.seed)

    @property
    def label(self) -> str:
        name = treatments.display_name(self.treatment, self.target)
        return f"{name} n={self.n}" if self.n else name

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> RunSpec:
        """The RunSpec a results.jsonl record was made from."""
        fields = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in fields})


def base_id(split: str, half: str, seed: int, treatment: str = treatments.BASE) -> str:
    """A base network's id, e.g. random0/base/B/seed0 (random0/base_long/B/seed0 for the
    compute-matched base of that half)."""
    return f"{split}/{treatment}/{half}/seed{seed}"


def run_id(split: str, treatment: str, target: str, n: int, seed: int) -> str:
    """A transferred network's id: split/treatment/nN/seedS when it targets B (the A->B
    direction, as every grid had before --directions), split/treatment/A/nN/seedS for A."""
    direction = "" if target == "B" else f"{target}/"
    return f"{split}/{treatment}/{direction}n{n}/seed{seed}"


def plan(experiment: Experiment, split_names: Sequence[str]) -> list[RunSpec]:
    """Every run of the study in execution order: all bases first, then the compute-matched
    bases (base_long in --treatments), then the grid, one direction after the other
    (--directions); --design says which cells each base network trains (designs.py).

    The `all` split's halves are the same (every class), so it has one base, on B, and its
    networks target B whatever the directions.
    """
    g = experiment.grid
    runs = [
        RunSpec(base_id(split, half, seed), treatments.BASE, split, "", half, 0, seed)
        for split in split_names
        for seed in g.seeds
        for half in (("B",) if split == ALL_SPLIT else ("A", "B"))
    ]

    def targets(split: str) -> tuple[str, ...]:
        return ("B",) if split == ALL_SPLIT else DIRECTIONS[g.directions]

    wanted = designs.cell_filter(g, split_names, DIRECTIONS[g.directions])
    per_layer = [name for name in experiment.treatments if treatments.get(name).per_layer]
    runs += [
        RunSpec(base_id(split, target, seed, name), name, split, target, target, 0, seed)
        for split in split_names
        for seed in g.seeds
        for target in targets(split)
        for name in experiment.treatments
        if not treatments.get(name).per_layer and wanted(split, target, seed, name, 0)
    ]
    for split in split_names:
        for target in targets(split):
            for n in g.layers:
                for name in per_layer:
                    source = treatments.get(name).source_half(target)
                    runs += [
                        RunSpec(
                            run_id(split, name, target, n, seed),
                            name,
                            split,
                            source,
                            target,
                            n,
                            seed,
                        )
                        for seed in g.seeds
                        if wanted(split, target, seed, name, n)
                    ]
    return runs


def plan_own_model(experiment: Experiment) -> list[RunSpec]:
    """The own-model study: a from-scratch baseline per seed, then every transfer mode and
    recipe of --treatments (by default all of them, treatments.TRANSFER_MODES) of the given
    source model (standing in for base A) at every n."""
    seeds, split = experiment.grid.seeds, OWN_MODEL_SPLIT
    modes = experiment.treatments
    runs = [RunSpec(base_id(split, "B", s), treatments.BASE, split, "", "B", 0, s) for s in seeds]
    runs += [
        RunSpec(f"{split}/{mode}/n{n}/seed{s}", mode, split, "A", "B", n, s)
        for n in experiment.grid.layers
        for mode in modes
        for s in seeds
    ]
    return runs


def check_layers(layers: Iterable[int], blocks: int, what: str, hint: str) -> None:
    """Raises UsageError for an n of --layers past the last of `blocks` blocks of `what`."""
    for n in layers:
        if n > blocks:
            raise UsageError(
                f"--layers value n={n} is past the last block of {what} (use 1..{blocks}; {hint})"
            )
