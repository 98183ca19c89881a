"""The linear probe: the mean stratified k-fold accuracy of an L2 multinomial logistic
regression (C=1, lbfgs) on features standardized on each training fold. It reaches 1.0 on
separable features and then no longer ranks them."""

import numpy.typing as npt

from kerastransfer.estimators.folds import cross_validate
from kerastransfer.estimators.inputs import prepare
from kerastransfer.estimators.registry import Estimator, register


def linear_probe(
    features: npt.ArrayLike, labels: npt.ArrayLike, folds: int = 5, seed: int = 0
) -> float:
    """Mean stratified k-fold accuracy of a standardized multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    x, y = prepare(features, labels)
    return cross_validate(
        "linear_probe",
        x,
        y,
        folds,
        seed,
        lambda _train_labels: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    )


register(Estimator("linear_probe", "linear probe", linear_probe))
