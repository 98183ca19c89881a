"""How a number prints on every page reporting writes: one mark for a missing number, and
accuracies as fractions.

A missing number (no interval, no spread, nothing measured) prints as MISSING; "n/a" is kept
for an estimator that could not score a cut point, a word that comes with its reason.
"""

MISSING = "–"


def accuracy(value: float | None) -> str:
    """An accuracy as a fraction, '0.6251', or MISSING."""
    return MISSING if value is None else f"{value:.4f}"
