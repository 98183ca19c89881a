"""Representation similarity between networks: linear CKA (Kornblith et al. 2019).

Beyond the paper: Yosinski et al. measure transferability by accuracy only; CKA shows directly
how alike two layers' activations are, e.g. layer n of baseA against layer n of AnB+ after
fine-tuning. Pure numpy.
"""

import numpy as np


def _centered(activations):
    """[n_examples, ...] activations flattened to [n_examples, features], columns centered."""
    x = np.asarray(activations, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"activations need shape [n_examples, features...], got {x.shape}")
    x = x.reshape(x.shape[0], -1)
    return x - x.mean(axis=0, keepdims=True)


def linear_cka(x, y):
    """Centered linear CKA of two activation sets over the same examples, in [0, 1].

    CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) with centered columns. Trailing dimensions
    (conv feature maps) are flattened. Computed through the example-by-example Gram matrices
    when features outnumber examples (conv layers), else through feature covariances; the two
    are equal, and each is the cheaper one for its shape. Invariant to orthogonal transforms
    and isotropic scaling of either side; 1 for identical representations.
    """
    x, y = _centered(x), _centered(y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"linear_cka needs the same examples on both sides, got {x.shape[0]} and {y.shape[0]}"
        )
    if x.shape[0] < x.shape[1] + y.shape[1]:
        return gram_cka(x @ x.T, y @ y.T)
    cross = np.linalg.norm(y.T @ x) ** 2
    return _ratio(cross, np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y))


def gram(activations):
    """The example-by-example Gram matrix of centered activations, for `gram_cka`: computed
    once per activation set when one set is compared with many."""
    x = _centered(activations)
    return x @ x.T


def gram_cka(gram_x, gram_y):
    """Linear CKA from two Gram matrices of centered activations (`gram`)."""
    if gram_x.shape != gram_y.shape:
        raise ValueError(
            f"gram_cka needs the same examples on both sides, got "
            f"{gram_x.shape[0]} and {gram_y.shape[0]}"
        )
    return _ratio(np.sum(gram_x * gram_y), np.linalg.norm(gram_x), np.linalg.norm(gram_y))


def _ratio(cross, norm_x, norm_y):
    if norm_x == 0.0 or norm_y == 0.0:
        raise ValueError("linear_cka is undefined for constant activations (zero variance)")
    return float(cross / (norm_x * norm_y))


def cka_matrix(acts_a, acts_b):
    """CKA of every activation set in `acts_a` (rows) against every one in `acts_b` (columns).

    E.g. the activations of layers 1..7 of two networks on the same examples.
    """
    centered_b = [_centered(b) for b in acts_b]
    return np.array([[linear_cka(a, b) for b in centered_b] for a in acts_a])
