"""The study's treatments, one object per kind of network, each in the module of its family.

Every module of this package that defines `TREATMENTS` adds its rows to the table, in the
order of their `order`: the paper's (paper.py: the base, BnB, BnB+, AnB, AnB+, random
features, and the compute-matched base), then the practitioners' recipes (one module each:
probe, surgical, layer_decay, lp_ft ...). A Treatment (treatment.py) owns what its network is,
how it trains, its names and its style; everything else asks it, by name through `get`, and
never branches on a name. Adding a recipe is one module here (with its test).

May import kerastransfer.errors, and kerastransfer.surgery inside the methods that build a
network only: this package imports no Keras or TensorFlow at import time, so the config and
the analysis read the table anywhere. Never config, data, training, study or anything above.
"""

import importlib
import pkgutil

from kerastransfer.treatments.treatment import Stage, Style, Treatment, other_half


def _discover():
    """The rows of every module of this package, in table order."""
    rows: list[Treatment] = []
    for module in pkgutil.iter_modules(__path__):
        rows += getattr(importlib.import_module(f"{__name__}.{module.name}"), "TREATMENTS", ())
    return tuple(sorted(rows, key=lambda treatment: treatment.order))


TABLE = _discover()
BY_NAME = {treatment.name: treatment for treatment in TABLE}
# The base networks' treatment: trained from scratch on a half, the source of every transfer.
(BASE,) = (treatment.name for treatment in TABLE if treatment.is_base)
# Every name a record may carry, and those --treatments may list (all but the base).
ALL_NAMES = tuple(BY_NAME)
NAMES = tuple(treatment.name for treatment in TABLE if not treatment.is_base)
# The paper's five treatments in its order (Figure 2's legend): the grid's default.
PAPER_NAMES = tuple(t.name for t in TABLE if t.per_layer and t.paper)
# The compute-matched base (not the paper's): a base trained on, not a network per n.
(LONG_BASE,) = (t.name for t in TABLE if not t.per_layer and not t.is_base)
# Treatments whose first n layers come from a trained base (the ones CKA compares with it).
COPIED = tuple(t.name for t in TABLE if t.source is not None and t.per_layer and t.paper)
# The paper's transfer from the other half: the own-model study's default modes.
FROM_OTHER_HALF = tuple(t.name for t in TABLE if t.copies_other_half and t.paper)
# The practitioners' recipes, and everything an own-model study can train and export.
RECIPES = tuple(t.name for t in TABLE if not t.paper)
TRANSFER_MODES = (*FROM_OTHER_HALF, *RECIPES)

__all__ = [
    "ALL_NAMES",
    "BASE",
    "BY_NAME",
    "COPIED",
    "FROM_OTHER_HALF",
    "LONG_BASE",
    "NAMES",
    "PAPER_NAMES",
    "RECIPES",
    "TABLE",
    "TRANSFER_MODES",
    "Stage",
    "Style",
    "Treatment",
    "display_name",
    "get",
    "other_half",
]


def get(name: str) -> Treatment:
    """The Treatment called `name` (the base included); KeyError for an unknown name."""
    return BY_NAME[name]


def display_name(treatment: str, target: str = "B") -> str:
    """The paper's name of a treatment's networks that target `target`: baseB, BnB, BnB+,
    AnB, AnB+, random (and baseA, AnA, BnA+ ... for target A)."""
    return BY_NAME[treatment].name_for(target)
