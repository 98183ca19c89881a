"""--prune's decision (kerastransfer.study.pruning) on scores made by hand: which cut points
train, the n/a scores ranked last, one more cut when the bootstrap says the K best are not
separable, and the console line. No TensorFlow: the decision reads scores and the plan."""

from collections import namedtuple

import pytest

from kerastransfer.study import pruning

LAYERS = (1, 3, 5, 7)
# The fields of study.plan.RunSpec the decision reads (that module loads TensorFlow).
Run = namedtuple("Run", "run treatment n seed")


def own_model_plan(layers=LAYERS, seeds=(0, 1)):
    """A scratch base per seed, then frozen and fine-tuned transfer at every n and seed."""
    runs = [Run(f"target/base/B/seed{s}", "base", 0, s) for s in seeds]
    runs += [
        Run(f"target/{mode}/n{n}/seed{s}", mode, n, s)
        for n in layers
        for mode in ("transfer", "transfer_ft")
        for s in seeds
    ]
    return runs


def entries(logme, unscored=None):
    """The source model's scores.json entries: {n: LogME score, None for n/a}."""
    return [
        {
            "n": n,
            "scores": {"logme": value, "leep": -1.0},
            **({"unscored": {"logme": unscored[n]}} if unscored and n in unscored else {}),
        }
        for n, value in logme.items()
    ]


def stability(held, in_top_k=(0.0, 1.0, 0.0, 1.0)):
    """top_k_stability's result as study/scoring.py hands it over, with its seconds."""
    return {"held": held, "in_top_k": list(in_top_k), "replicates": 100, "seconds": 0.5}


def test_the_k_best_train_and_every_other_n_leaves_the_plan():
    runs = own_model_plan()
    scored = entries({1: -0.9, 3: -0.2, 5: -0.5, 7: -0.1})
    pruned = pruning.decide(scored, runs, LAYERS, "logme", 2, 4.2, stability(1.0))
    # Ranked 7, 3, 5, 1; the two best are n = 3 and 7, and they held in every resample.
    assert [(r.treatment, r.n) for r in pruned.runs] == [("base", 0)] * 2 + [
        (mode, n) for n in (3, 7) for mode in ("transfer", "transfer_ft") for _ in (0, 1)
    ]
    assert pruned.record == {
        "estimator": "logme",
        "k": 2,
        "candidates": [1, 3, 5, 7],
        "ranking": [7, 3, 5, 1],
        "unscored": [],
        "trained": [3, 7],
        "skipped": [1, 5],
        "networks_planned": 18,  # 2 bases + 4 n x 2 modes x 2 seeds
        "networks_trained": 10,  # 2 bases + 2 n x 2 modes x 2 seeds
        "scoring_seconds": 4.2,
        "bootstrap": {
            "held": 1.0,
            "in_top_k": {1: 0.0, 3: 1.0, 5: 0.0, 7: 1.0},
            "replicates": 100,
            "seconds": 0.5,
            "extra": None,
        },
    }
    assert pruning.describe(pruned.record) == (
        "prune: logme ranks n=7,3,5,1; its 2 best held in 100% of 100 bootstrap resamples of "
        "the scored images; training n=3,7 (10 of 18 networks, skipping n=1,5)"
    )


def test_k_best_that_do_not_hold_in_95_percent_of_resamples_train_one_more():
    scored = entries({1: -0.9, 3: -0.2, 5: -0.5, 7: -0.1})
    for held, extra in ((0.94, 5), (0.95, None)):
        pruned = pruning.decide(scored, own_model_plan(), LAYERS, "logme", 2, 1.0, stability(held))
        assert pruned.record["bootstrap"]["extra"] == extra
        assert pruned.record["trained"] == ([3, 5, 7] if extra else [3, 7])
        assert pruned.record["networks_trained"] == (14 if extra else 10)
    line = pruning.describe(
        pruning.decide(scored, own_model_plan(), LAYERS, "logme", 2, 1.0, stability(0.5)).record
    )
    assert "its 2 best held in 50% of 100 bootstrap resamples of the scored images, not " in line
    assert line.endswith(
        "separable: n=5 trained too; training n=3,5,7 (14 of 18 networks, skipping n=1)"
    )


def test_n_a_scores_rank_last_with_their_reason_and_ties_go_to_the_lower_n():
    scored = entries(
        {1: None, 3: -0.5, 5: -0.5, 7: None},
        unscored={1: "features hold 8 NaN or infinite values"},
    )
    ranked, unscored = pruning.ranking(scored, LAYERS, "logme")
    assert ranked == [3, 5, 1, 7]
    assert unscored == [
        {"n": 1, "why": "features hold 8 NaN or infinite values"},
        {"n": 7, "why": "no reason recorded"},
    ]
    pruned = pruning.decide(scored, own_model_plan(seeds=(0,)), LAYERS, "logme", 1, 1.0)
    assert pruned.record["trained"] == [3] and pruned.record["bootstrap"] is None
    assert pruning.describe(pruned.record) == (
        "prune: logme ranks n=3,5,1,7; n/a at n=1 (features hold 8 NaN or infinite values), "
        "ranked last; n/a at n=7 (no reason recorded), ranked last; training n=3 (3 of 9 "
        "networks, skipping n=1,5,7)"
    )


def test_only_an_estimator_of_the_cut_features_with_a_cut_left_out_is_resampled():
    assert pruning.resamples("logme", 3, LAYERS)
    assert pruning.resamples("ncti", 1, LAYERS)  # a set estimator resamples as a set
    assert not pruning.resamples("logme", 4, LAYERS)  # every cut trains anyway
    assert not pruning.resamples("leep", 1, LAYERS)  # the source head: the same at every n
    with pytest.raises(ValueError, match="unknown estimator 'nce'"):
        pruning.resamples("nce", 1, LAYERS)
    # Without a bootstrap every n is kept by the ranking alone: K = all, nothing skipped.
    scored = entries({1: -0.9, 3: -0.2, 5: -0.5, 7: -0.1})
    pruned = pruning.decide(scored, own_model_plan(), LAYERS, "logme", 4, 1.0)
    assert pruned.record["skipped"] == [] and pruned.runs == own_model_plan()
    assert pruning.describe(pruned.record).endswith("(18 of 18 networks, skipping n=none)")
