"""The registry of transferability estimators: each estimator's module registers one Estimator,
and everything that names estimators (config's --estimators, scoring, the reports) asks here.

Importing this module loads nothing but the standard library, so config.py can read the names
and help from it; the package's __init__ imports every estimator module, in the order that is
--estimators' default and scores.json's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy loads only where an estimator computes
    import numpy.typing as npt

# A set estimator's terms for one candidate (NCTI's NCTITerms), or None where they cannot be
# computed.
Terms = tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class Estimator:
    """One transferability estimator and what sets it apart from the others.

    name: its flag value and its key in scores.json; title: how reports name it.
    function: (features, labels) -> score, "higher means more transferable". A set
    estimator's function gives one candidate's terms instead, and `over_set` (its scores over
    a network's cut points, from their terms) turns those into scores: NCTI min-max scales its
    terms over the cut points, so it scores all of them at once.
    reads_head: the function reads the source head's class probabilities in place of the
    cut's features (LEEP), so its score is the same at every cut point of a network.
    note: what --estimators' help says beside the name, where the above sets it apart.
    """

    name: str
    title: str
    # Returns a float, or a set estimator's Terms: which of the two, `is_set` says, and the
    # type checker cannot, so Any.
    function: Callable[[npt.ArrayLike, npt.ArrayLike], Any]
    over_set: Callable[[Sequence[Terms | None]], list[float | None]] | None = None
    reads_head: bool = False
    note: str = ""

    @property
    def is_set(self) -> bool:
        """Whether it scores a network's cut points as a set (NCTI), not each one alone."""
        return self.over_set is not None

    @property
    def reads_cut_features(self) -> bool:
        """Whether its score reads the cut's features, so that it can rank cut points."""
        return not self.reads_head


_REGISTERED: dict[str, Estimator] = {}


def register(estimator: Estimator) -> Estimator:
    """Adds `estimator` under its name (after every one registered before it); returns it."""
    if estimator.name in _REGISTERED:
        raise ValueError(f"an estimator named {estimator.name!r} is registered already")
    _REGISTERED[estimator.name] = estimator
    return estimator


def names() -> tuple[str, ...]:
    """Every registered estimator's name, in the order they registered."""
    return tuple(_REGISTERED)


def get(name: str) -> Estimator:
    """The estimator registered as `name`; ValueError naming the known ones otherwise."""
    if name not in _REGISTERED:
        raise ValueError(f"unknown estimator {name!r}; choose from {list(_REGISTERED)}")
    return _REGISTERED[name]


def title(name: str) -> str:
    """How reports name estimator `name` (a name no estimator has, from a file written
    elsewhere, prints as itself)."""
    return _REGISTERED[name].title if name in _REGISTERED else name


def help_list() -> str:
    """The estimators for --estimators' help: each name, with its note in brackets."""
    return ", ".join(f"{e.name} ({e.note})" if e.note else e.name for e in _REGISTERED.values())
