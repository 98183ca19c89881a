"""Transferability estimators: how well features X (N x d) of a network layer suit target labels
y, one module per estimator, each registering itself (registry.py).

Every score is "higher means more transferable"; it ranks layers or models on one target data
set, so compare scores only between features of the same examples (and, where noted, the same d).

    logme         LogME (logme.py)
    hscore        H-score (hscore.py)
    transrate     TransRate (transrate.py)
    linear_probe  a k-fold linear probe (linear_probe.py)
    knn           k-fold k-nearest neighbours (knn.py)
    sfda          SFDA (sfda.py), on the shrinkage LDA of lda.py
    ncti          NCTI (ncti.py), on the same LDA; a set estimator (it ranks a network's cut
                  points against each other, so apply.score_set_or_why scores them together)
    leep          LEEP (leep.py), which reads the source head, not the cut's features

Around them: registry (Estimator, register, names, get, title: what config, scoring and the
reports ask), inputs (the checks and relabelling every estimator starts with), folds (the
probes' cross-validation), reduction (activations -> (N, d) features), apply (score,
score_or_why, score_set_or_why: the estimators by name, one failure costing one number) and
bootstrap (top_k_stability, behind --prune). A new estimator is a module here that registers
an Estimator, imported below: the import order is --estimators' default order and scores.json's.

Guards:
    - fewer than 2 examples or fewer than 2 classes: ValueError naming the problem, as for features
      that are not 2-D (use reduce_features first) or not finite and labels of another length.
    - a class with a single example: linear_probe and knn reduce the folds to the smallest class
      count; when that is 1 they cannot stratify and return NaN with a RuntimeWarning naming the
      class. The other estimators are defined and return a number.
    - d > N: every estimator works and is finite, but the scores degrade (each module says how).
      Prefer d well below the smallest class: reduce_features(..., "pca", size).
    - constant or zero features: constant columns are set to exactly zero after centring and
      contribute nothing. Features that are all constant give H-score 0, TransRate 0 and LogME
      the evidence of the label column as noise.
    - in a study: score_or_why() turns an estimator's error or non-finite value into None with
      its reason, so one estimator that cannot score a cut costs that one number.
    - saturation: TransRate grows with the rank of Z, so compare it only at equal d and N;
      linear_probe, knn and SFDA reach 1.0 on separable features and then no longer rank them;
      LEEP reaches 0 when the source head already predicts the target.
Inputs are cast to float64; labels may be any integers and are relabelled 0..C-1 in order of
first appearance, so permuting label ids changes no score.

May import numpy, and scikit-learn and threadpoolctl inside the functions that use them (about
1.4 s to import): config.py reads the registry's names and help, so importing this package
loads neither, nor TensorFlow. It imports nothing else of kerastransfer (it sits below config).
"""

# Each module registers its estimator when imported, in this order: --estimators' default.
# isort: off
from kerastransfer.estimators import (  # noqa: F401
    logme,
    hscore,
    transrate,
    linear_probe,
    knn,
    sfda,
    ncti,
    leep,
)

# isort: on
from kerastransfer.estimators.apply import score, score_or_why, score_set_or_why
from kerastransfer.estimators.bootstrap import BOOTSTRAP_REPLICATES, top_k_stability
from kerastransfer.estimators.reduction import reduce_features
from kerastransfer.estimators.registry import Estimator, get, help_list, names, register, title

__all__ = [
    "BOOTSTRAP_REPLICATES",
    "Estimator",
    "get",
    "help_list",
    "names",
    "reduce_features",
    "register",
    "score",
    "score_or_why",
    "score_set_or_why",
    "title",
    "top_k_stability",
]
