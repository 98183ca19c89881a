"""What every treatment is: the Treatment a row of the table builds on, its Style and the
Stage of a staged recipe.

A Treatment owns what its network is (`network`, from the study's networks and its surgery),
how it trains (its rate: `fine_tuned`; per-block rates: `layer_rates`; stages: `stages`),
what its record adds (`record_fields`), its names (`name_for`) and its style. The study,
the figures and the reports ask it; none of them branches on a treatment's name.

Surgery (plain Keras) is imported where a network is built, so the table itself imports no
Keras: the analysis and the config read it without TensorFlow. The Keras model, the solver
(training.Solver) and its settings (config.SolverConfig) are named for the type checker only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import keras

    from kerastransfer.config import SolverConfig
    from kerastransfer.training.solver import Solver

# A record of results.jsonl: one finished run (workdir/results.py), a JSON object.
Record = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Style:
    """How every figure draws a treatment: its line (and marker edge) colour, its marker face,
    its line style in the estimators' figure and its legend name in Figure 2."""

    colour: str
    face: str = ""
    linestyle: str = "-"
    legend: str = ""


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a staged recipe (training.fit_stages): `prepare(model)` sets which layers
    train, then the model is compiled with `solver` and trained for its steps.

    Attributes:
        name: the stage's folder under the run's, and its key in the record.
        trains: what trains, in words ("head", "every layer", "blocks 3..7 and above").
        solver: a training.Solver (its steps and rate).
        prepare: sets `trainable` on the model's layers before the stage compiles.
    """

    name: str
    trains: str
    solver: Solver
    prepare: Callable[[keras.Model], None] | None = None


def other_half(half: str) -> str:
    return "A" if half == "B" else "B"


class Networks(Protocol):
    """What a treatment builds its network from: the study (study.Study, or the own-model
    study), which this package may not import."""

    def build_model(self, num_classes: int) -> keras.Model:
        """A fresh network of the study."""
        ...

    def trained_network(self, record: Record) -> keras.Model:
        """The network of a finished run, with its trained weights."""
        ...

    def copied_from(self, base_record: Record | None) -> keras.Model:
        """What a transfer copies its blocks from: the trained base of `base_record`, or the
        user's model (an own-model study, whose runs have no base)."""
        ...

    def cut_names(self, model: keras.Model) -> list[str] | None:
        """The names of the layers that end the blocks of `model` (None: surgery finds them)."""
        ...


@dataclasses.dataclass(frozen=True)
class Treatment:
    """One kind of network of the study: a row of the table (treatments/__init__.py).

    Attributes:
        name: the id used in flags, run ids and results.jsonl (e.g. "transfer_ft").
        paper_name: the paper's name seen from target half B (e.g. "AnB+").
        recipe: how its network trains, in a report's words ("frozen", "fine-tuned", ...).
        order: its place in the table (the paper's order first, recipes after).
        style: how figures draw it.
        source: where the first n blocks come from: "same" (the target half's own base),
            "other" (the other half's base, or the user's source model) or None (nowhere).
        fine_tuned: True when copied blocks keep training (--fine_tune_lr_scale applies).
        paper: False for a practitioner's recipe, which no finding reads.
        tunes_every_copied_block: True when every copied block trains by the end of the
            run (the "fine-tune everything" rule of thumb applies to it).
    """

    name: str
    paper_name: str
    recipe: str
    order: int
    style: Style
    source: str | None = "other"
    fine_tuned: bool = False
    paper: bool = True
    tunes_every_copied_block: bool = False

    # A treatment with a network per n of --layers (False: a base, trained whole).
    per_layer = True
    # The base networks themselves: trained from scratch, the source of every transfer.
    is_base = False

    def name_for(self, target: str) -> str:
        """The paper's name of this treatment's networks that target half `target`: BnB, AnB+
        for B; AnA, BnA+ for A (the paper's B->A networks)."""
        return f"{self.source_half(target)}n{target}" + ("+" if self.fine_tuned else "")

    @property
    def frozen(self) -> bool:
        """True when the network's first n blocks never change: their outputs can be cached
        (never for a base, which trains whole)."""
        return self.per_layer and not self.fine_tuned

    @property
    def copies_other_half(self) -> bool:
        """True when the layers come from the other half's base (or a given source model)."""
        return self.source == "other"

    @property
    def plain_fine_tuning(self) -> bool:
        """True for the paper's fine-tuned transfer (AnB+), which a recommended recipe is
        also set against."""
        return self.paper and self.copies_other_half and self.fine_tuned

    def source_half(self, target: str) -> str:
        """The half ("A" or "B") whose base gives the layers, or "" when none does."""
        if self.source is None:
            return ""
        return target if self.source == "same" else other_half(target)

    def network(
        self, study: Networks, n: int, num_classes: int, base_record: Record | None
    ) -> keras.Model:
        """The untrained network of a run at cut `n` that targets `num_classes` classes.

        `study` gives the networks it is built from: `build_model(num_classes)` (fresh),
        `trained_network(record)` (a finished run's) and `copied_from(base_record)` (what a
        transfer copies: the trained base, or the user's source model), and
        `cut_names(network)`, the layers that end a network's blocks.
        """
        raise NotImplementedError

    def reload(self, model: keras.Model, n: int, cuts: list[str] | None) -> keras.Model:
        """The network of a finished run, from a fresh full network `model` (before its
        weights are loaded): the same network here; a recipe that cuts it says otherwise."""
        return model

    def layer_rates(
        self, model: keras.Model, n: int, solver_config: SolverConfig, cuts: list[str] | None
    ) -> dict[str, float] | None:
        """{layer name: rate multiplier} for the run's layers, or None: one rate."""
        return None

    def stages(
        self, solver: Solver, solver_config: SolverConfig, n: int, cuts: list[str] | None
    ) -> list[Stage] | None:
        """The Stages a staged recipe trains in, from the run's `solver` (a training.Solver),
        the solver section of the config, its cut n and the blocks' cut points (`cuts`: layer
        names, None for the model's own), or None: one fit of the whole run."""
        return None

    def record_fields(self, solver_config: SolverConfig) -> dict[str, Any]:
        """Fields this treatment adds to its runs' records (e.g. its decay)."""
        return {}


@dataclasses.dataclass(frozen=True)
class Copied(Treatment):
    """A network whose first n blocks are copied from `study.copied_from(base_record)` by
    `surgery.transfer`, frozen or fine-tuned (`surgery_mode`)."""

    surgery_mode: str = "frozen"

    def network(
        self, study: Networks, n: int, num_classes: int, base_record: Record | None
    ) -> keras.Model:
        from kerastransfer import surgery  # noqa: PLC0415  (Keras only where a network is built)

        source = study.copied_from(base_record)
        return surgery.transfer(
            source,
            n,
            self.surgery_mode,
            num_classes=num_classes,
            cut_names=study.cut_names(source),
        )


@dataclasses.dataclass(frozen=True)
class Recipe(Copied):
    """A practitioner's recipe, not the paper's: no finding reads it; the own-model study,
    its recommendation, the estimators' agreement and the export do. Its networks are named
    after AnB: AnB-probe, BnA-probe, AnB+decay."""

    paper: bool = False

    def name_for(self, target: str) -> str:
        return f"{self.source_half(target)}n{target}{self.paper_name.removeprefix('AnB')}"
