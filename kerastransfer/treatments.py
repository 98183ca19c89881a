"""The one table of the study's treatments: what each network of the grid is.

Every other module asks this table (by name) what a treatment's paper name is, which half its
layers come from, how they are transferred (`surgery.transfer` modes), whether it is
fine-tuned and whether its copied layers are frozen. Adding a treatment means adding a row.

The paper's names are seen from the target half B: BnB (selffer), BnB+ (selffer fine-tuned),
AnB (transfer), AnB+ (transfer fine-tuned) and random features (Yosinski et al. 2014,
Section 2 and Figure 1; docs/paper.md). Networks that target A (--directions) are AnA, BnA...;
the paper pools both directions under the B names.

One row is not the paper's: the compute-matched base (baseB-long), the trained base itself
trained on for as many more steps as a transferred network trains, with the same solver. A
transferred network's copied layers have seen the base's steps and then its own; comparing
it with this control as well as with the plain base separates what transfer gives from what
extra training gives (docs/statistics.md).

Three rows are practitioners' recipes, not the paper's (`paper=False`), each from the other
half's base (the user's own model in an own-model study) at every cut point n:
- `probe`, linear probe at the cut (AnB-probe): blocks 1..n copied and frozen, one new dense
  layer on their flattened output and nothing above it (the readout every transferability
  estimator scores);
- `surgical`, surgical fine-tuning of block n (AnB-surgical; Lee et al., ICLR 2023): every
  block copied, only block n and a new head trained;
- `layer_decay`, layer-wise learning-rate decay (AnB+decay): as AnB+, with copied block i
  trained at --layer_decay^(n + 1 - i) times the fine-tuning rate (the top copied block at
  --layer_decay, the fresh layers above n at the full rate);
- `lp_ft`, LP-FT (AnB-LP-FT; Kumar et al., ICLR 2022): the probe's network, its head trained
  for the first half of the run's steps at --learning_rate, then every layer for the second
  half at the fine-tuning rate, from the probe's weights (training.fit_lp_ft).
"""

import dataclasses

# The base networks' treatment: trained from scratch on a half, the source of every transfer.
BASE = "base"


@dataclasses.dataclass(frozen=True)
class Treatment:
    """One kind of network in the grid.

    Attributes:
        name: the id used in flags, run ids and results.jsonl (e.g. "transfer_ft").
        paper_name: the paper's name seen from target half B (e.g. "AnB+").
        source: where the first n layers come from: "same" (the target half's own base),
            "other" (the other half's base) or None (random, untrained layers).
        surgery_mode: the `surgery.transfer` mode: frozen, fine_tuned or random_frozen.
        fine_tuned: True when the copied layers keep training (--fine_tune_lr_scale applies).
        per_layer: True when the treatment has a network per layer n; False for the
            compute-matched base, which copies the whole base (every block and its head).
        recipe: how its network trains, in a report's words ("frozen", "fine-tuned", ...).
        paper: False for a practitioner's recipe (module doc), which no finding reads.
        layer_decay: True when copied blocks train at --layer_decay's per-block rates.
        probe_first: True for LP-FT: the probe's head trains first, then every layer.
    """

    name: str
    paper_name: str
    source: str | None
    surgery_mode: str | None
    fine_tuned: bool
    per_layer: bool = True
    recipe: str = ""
    paper: bool = True
    layer_decay: bool = False
    probe_first: bool = False

    def name_for(self, target):
        """The paper's name for networks that target half `target`: BnB, AnB+ for B; AnA,
        BnA+ for A (the paper's B->A networks); baseB-long, baseA-long."""
        if not self.per_layer:
            return f"base{target}-long"
        if self.source is None:
            return self.paper_name
        source = self.source_half(target)
        if not self.paper:  # AnB-probe, AnB-surgical, AnB+decay
            return f"{source}n{target}{self.paper_name.removeprefix('AnB')}"
        return f"{source}n{target}" + ("+" if self.fine_tuned else "")

    @property
    def frozen(self):
        """True when the first n layers never change: their outputs can be cached."""
        return not self.fine_tuned

    def source_half(self, target):
        """The half ("A" or "B") whose base gives the layers, or "" for random features."""
        if self.source is None:
            return ""
        return target if self.source == "same" else other_half(target)


TABLE = (
    Treatment("selffer", "BnB", "same", "frozen", fine_tuned=False, recipe="frozen"),
    Treatment("selffer_ft", "BnB+", "same", "fine_tuned", fine_tuned=True, recipe="fine-tuned"),
    Treatment("transfer", "AnB", "other", "frozen", fine_tuned=False, recipe="frozen"),
    Treatment("transfer_ft", "AnB+", "other", "fine_tuned", fine_tuned=True, recipe="fine-tuned"),
    Treatment("random", "random", None, "random_frozen", fine_tuned=False, recipe="random"),
    Treatment(
        "base_long",
        "baseB-long",
        "same",
        None,
        fine_tuned=True,
        per_layer=False,
        recipe="trained on",
    ),
    Treatment(
        "probe", "AnB-probe", "other", "probe", fine_tuned=False, recipe="linear probe", paper=False
    ),
    Treatment(
        "surgical",
        "AnB-surgical",
        "other",
        "surgical",
        fine_tuned=True,
        recipe="surgical",
        paper=False,
    ),
    Treatment(
        "layer_decay",
        "AnB+decay",
        "other",
        "fine_tuned",
        fine_tuned=True,
        recipe="layer-wise decay",
        paper=False,
        layer_decay=True,
    ),
    Treatment(
        "lp_ft",
        "AnB-LP-FT",
        "other",
        "probe",
        fine_tuned=True,
        recipe="LP-FT",
        paper=False,
        probe_first=True,
    ),
)
BY_NAME = {treatment.name: treatment for treatment in TABLE}
# The compute-matched base (not the paper's), and the paper's five treatments in its order
# (Figure 2's legend).
LONG_BASE = "base_long"
PAPER_NAMES = tuple(t.name for t in TABLE if t.per_layer and t.paper)
NAMES = tuple(BY_NAME)
ALL_NAMES = (BASE, *NAMES)
# Treatments whose first n layers come from a trained base (the ones CKA compares with it).
COPIED = tuple(t.name for t in TABLE if t.source is not None and t.per_layer and t.paper)
# The paper's transfer from the other half: the own-model study's default modes.
FROM_OTHER_HALF = tuple(t.name for t in TABLE if t.source == "other" and t.paper)
# The practitioners' recipes, and everything an own-model study can train and export.
RECIPES = tuple(t.name for t in TABLE if not t.paper)
TRANSFER_MODES = (*FROM_OTHER_HALF, *RECIPES)


def get(name):
    """The Treatment called `name`; KeyError for the base or an unknown name."""
    return BY_NAME[name]


def other_half(half):
    return "A" if half == "B" else "B"


def display_name(treatment, target="B"):
    """The paper's name of a treatment's networks that target `target`: baseB, BnB, BnB+,
    AnB, AnB+, random (and baseA, AnA, BnA+ ... for target A)."""
    return f"base{target}" if treatment == BASE else BY_NAME[treatment].name_for(target)
