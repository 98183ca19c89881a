"""The registered estimators applied to a cut point's features: by name, in the registry's
order, each on one thread, and (score_or_why, score_set_or_why) with one estimator's failure
costing only its own number."""

import contextlib
import math
import threading
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import partial
from typing import TypeVar

import numpy.typing as npt

from kerastransfer.estimators import registry
from kerastransfer.estimators.registry import Estimator, Terms

# {estimator name: its score, None where it could not score} and {name: why not}.
Scores = dict[str, float | None]
Reasons = dict[str, str]
# What _guarded computes: a score, or a set estimator's terms.
Value = TypeVar("Value", bound=float | Terms)

# How deep this thread is in one_thread() blocks: only the outermost limits the threads.
_limited = threading.local()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """BLAS and OpenMP on one thread inside the block (see score()). Entering threadpoolctl's
    limit reads every loaded library (about 5 ms), so a block inside another costs nothing:
    the bootstrap's 500 scores took 2.3 of their 4.7 s entering it each time."""
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    depth = getattr(_limited, "depth", 0)
    _limited.depth = depth + 1
    try:
        if depth:
            yield
        else:
            with threadpool_limits(limits=1):
                yield
    finally:
        _limited.depth = depth


def score(
    features: npt.ArrayLike,
    labels: npt.ArrayLike,
    source_probabilities: npt.ArrayLike | None = None,
    estimators: Collection[str] | None = None,
) -> dict[str, float]:
    """{name: score} for each of `estimators` (default every registered one, those that read
    the source head only when source_probabilities is given) that scores one set of features,
    in the registry's order; the set estimators among them (NCTI) are score_set_or_why's.

    Linear algebra runs on one thread here: on matrices this small, BLAS threads cost more
    than they give (one logistic-regression fit of 1,600 x 128 features took 10.3 s with the
    default threads and 0.28 s with one, on a 2-core machine with TensorFlow loaded).
    """
    chosen = _per_cut(_chosen(source_probabilities, estimators))
    with one_thread():
        return {e.name: _estimate(e, features, labels, source_probabilities) for e in chosen}


def score_or_why(
    features: npt.ArrayLike,
    labels: npt.ArrayLike,
    source_probabilities: npt.ArrayLike | None = None,
    estimators: Collection[str] | None = None,
) -> tuple[Scores, Reasons]:
    """score() where an estimator that cannot score these features costs only its own number:
    (values, why), values {name: finite float or None} in the order of score(), why {name:
    the reason} for each None.

    A study scores many cut points of a model it did not build; one cut's non-finite features,
    a class of one example, or an estimator's NaN must not end it. The reason is the error's
    message, or the warnings the estimator gave on its way to a non-finite value. Unknown
    estimators, and one that reads the source head without source_probabilities, still raise:
    those are the caller's.
    """
    chosen = _per_cut(_chosen(source_probabilities, estimators))
    values: Scores = {}
    why: Reasons = {}
    with one_thread():
        for e in chosen:
            values[e.name], reason = _guarded(
                partial(_estimate, e, features, labels, source_probabilities)
            )
            if reason is not None:
                why[e.name] = reason
    return values, why


def score_set_or_why(
    features_by_cut: Sequence[npt.ArrayLike],
    labels: npt.ArrayLike,
    estimators: Collection[str] | None = None,
) -> list[tuple[Scores, Reasons]]:
    """The set estimators among `estimators` (default all: NCTI) over a set of candidates, the
    features of one network's cut points on the same examples: [(values, why)] per cut, as
    score_or_why gives them. A cut whose terms cannot be computed is None with its reason; the
    others are scaled among themselves."""
    chosen = [e for e in _known(estimators) if e.is_set]
    results: list[tuple[Scores, Reasons]] = [({}, {}) for _ in features_by_cut]
    with one_thread():
        for e in chosen:
            assert e.over_set is not None  # chosen: the set estimators
            guarded: list[tuple[Terms | None, str | None]] = [
                _guarded(partial(e.function, x, labels)) for x in features_by_cut
            ]
            scores = e.over_set([terms for terms, _ in guarded])
            for (values, why), value, (_, reason) in zip(results, scores, guarded):
                values[e.name] = value
                if reason is not None:
                    why[e.name] = reason
    return results


def _known(estimators: Collection[str] | None) -> list[Estimator]:
    """The Estimators named in `estimators` (default all) in the registry's order; ValueError
    for unknown ones."""
    every = registry.names()
    if estimators is None:
        return [registry.get(name) for name in every]
    unknown = sorted(set(estimators) - set(every))
    if unknown:
        raise ValueError(f"unknown estimators {unknown}; choose from {list(every)}")
    return [registry.get(name) for name in every if name in estimators]


def _chosen(
    source_probabilities: npt.ArrayLike | None, estimators: Collection[str] | None
) -> list[Estimator]:
    """The Estimators to run, in the registry's order, by default those that read the source
    head only with source_probabilities; ValueError for unknown ones, and for one that reads
    the head without them."""
    known = _known(estimators)
    if source_probabilities is not None:
        return known
    if estimators is None:
        return [e for e in known if not e.reads_head]
    for e in known:
        if e.reads_head:
            raise ValueError(f"{e.name} needs source_probabilities")
    return known


def _per_cut(chosen: list[Estimator]) -> list[Estimator]:
    return [e for e in chosen if not e.is_set]


def _estimate(
    estimator: Estimator,
    features: npt.ArrayLike,
    labels: npt.ArrayLike,
    source_probabilities: npt.ArrayLike | None,
) -> float:
    """A per-cut estimator's score (a set estimator's function gives terms instead)."""
    read = source_probabilities if estimator.reads_head else features
    assert read is not None  # _chosen: an estimator that reads the head is given it
    return estimator.function(read, labels)


def _guarded(compute: Callable[[], Value]) -> tuple[Value | None, str | None]:
    """(compute(), None), or (None, why) when it raises or gives a value (a number, or a tuple
    of them) that is not finite; why is one line (it goes into scores.json, the console and
    report.md).

    The warnings of an estimator that does score are passed on as they came.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = compute()
        except (ValueError, ArithmeticError) as error:  # LinAlgError is a ValueError
            return None, " ".join(str(error).split()) or type(error).__name__
    if all(math.isfinite(v) for v in (value if isinstance(value, tuple) else (value,))):
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return value, None
    messages = dict.fromkeys(" ".join(str(w.message).split()) for w in caught)
    return None, "; ".join(messages) or f"the score came out {value}"
