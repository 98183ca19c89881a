"""Top-1 regret (kerastransfer.analysis.agreement.regret): the points each estimator's choice of
cut point loses against the best measured one, beside rules that read no data, worked by hand
on made-up records and scores; and its table in report.md."""

import json

import pytest

from kerastransfer.analysis import agreement
from kerastransfer.reporting import estimator_agreement

SETTINGS = {"estimators": ["logme", "knn", "leep"], "reduction": "pca", "examples": 100}


def _entry(split, n, scores, sha="a"):
    return {
        "split": split,
        "source": "A",
        "target": "B",
        "seed": 0,
        "source_run": f"{split}/base/A/seed0",
        "weights_sha256": sha,
        "n": n,
        "cut": f"layer{n}",
        "dims": 8,
        "examples": 100,
        "scores": scores,
        "seconds": 0.1,
    }


def _record(split, treatment, n, accuracy, seed=0):
    return {
        "run": f"{split}/{treatment}/n{n}/seed{seed}",
        "treatment": treatment,
        "split": split,
        "source": "A",
        "target": "B",
        "n": n,
        "seed": seed,
        "status": "ok",
        "best_k": accuracy,
        "test_accuracy": accuracy,
    }


def _base(split):
    return {
        "run": f"{split}/base/A/seed0",
        "treatment": "base",
        "split": split,
        "source": None,
        "target": "A",
        "n": 0,
        "seed": 0,
        "status": "ok",
        "best_k": 0.9,
        "test_accuracy": 0.9,
        "weights_sha256": "a",
    }


def study():
    """Two splits' scores and measured accuracies (mean over the seeds):

    random0  n:       1     2     3     4
             AnB     .80   .85   .75   .70    (n = 2: seeds .80 and .90)
             AnB+    .70   .72   .74   .73
             LogME   -1    -3    -2    -4     best at n = 1
             kNN     .5    .9    .9    .1     tied at n = 2 and 3
             LEEP    -1    -1    -1    -1     the same everywhere
    random1  n:       1     2     3
             AnB     .60   .70   .65
             AnB+    .70                      one cut point measured
             LogME    0     1     2           best at n = 3
             kNN     .5   n/a   n/a
    A stale score (another base's weights) would pick n = 4 at random0 if it counted.
    """
    records = [_base("random0"), _base("random1")]
    anb = {1: [0.80], 2: [0.80, 0.90], 3: [0.75], 4: [0.70]}
    records += [
        _record("random0", "transfer", n, a, s) for n, v in anb.items() for s, a in enumerate(v)
    ]
    records += [
        _record("random0", "transfer_ft", n, a)
        for n, a in {1: 0.70, 2: 0.72, 3: 0.74, 4: 0.73}.items()
    ]
    records += [_record("random1", "transfer", n, a) for n, a in {1: 0.6, 2: 0.7, 3: 0.65}.items()]
    records += [_record("random1", "transfer_ft", 1, 0.70)]
    logme0, knn0 = {1: -1, 2: -3, 3: -2, 4: -4}, {1: 0.5, 2: 0.9, 3: 0.9, 4: 0.1}
    entries = [
        _entry("random0", n, {"logme": logme0[n], "knn": knn0[n], "leep": -1.0})
        for n in (1, 2, 3, 4)
    ]
    entries += [_entry("random0", 4, {"logme": 99.0, "knn": 99.0, "leep": 0.0}, sha="stale")]
    knn1 = {1: 0.5, 2: None, 3: None}
    entries += [
        _entry("random1", n, {"logme": float(n - 1), "knn": knn1[n], "leep": -1.0})
        for n in (1, 2, 3)
    ]
    return {"settings": SETTINGS, "entries": entries}, records


def test_regret_by_hand():
    scores, records = study()
    result = agreement.regret(scores, records)
    json.dumps(result, allow_nan=False)
    assert result["estimators"] == ["logme", "knn", "leep"]
    assert result["rules"] == ["deepest", "middle", "fine_tune_all"]
    first, second = result["groups"]
    assert first["best"] == {
        "transfer": {"n": 2, "accuracy": pytest.approx(0.85)},
        "transfer_ft": {"n": 3, "accuracy": pytest.approx(0.74)},
    }

    def regrets(group, choice):
        return {t: (c["n"], c["regret"]) for t, c in group["choices"][choice].items()}

    # LogME picks n = 1: AnB .85 - .80 = 5 points, AnB+ .74 - .70 = 4.
    assert regrets(first, "logme") == {
        "transfer": ([1], pytest.approx(5.0)),
        "transfer_ft": ([1], pytest.approx(4.0)),
    }
    # kNN ties n = 2 and 3: the mean of their accuracies, AnB (.85 + .75)/2 = .80 -> 5 points,
    # AnB+ (.72 + .74)/2 = .73 -> 1.
    assert regrets(first, "knn") == {
        "transfer": ([2, 3], pytest.approx(5.0)),
        "transfer_ft": ([2, 3], pytest.approx(1.0)),
    }
    assert first["choices"]["leep"]["transfer"] == {
        "n": None,
        "accuracy": None,
        "regret": None,
        "why": "the score is the same at every n",
    }
    # Deepest n = 4: AnB .85 - .70 = 15, AnB+ .74 - .73 = 1. Middle of 1..4 (the lower one):
    # n = 2, AnB 0, AnB+ .74 - .72 = 2. Fine-tune everything: AnB+ at n = 4, 1 point.
    assert regrets(first, "deepest") == {
        "transfer": ([4], pytest.approx(15.0)),
        "transfer_ft": ([4], pytest.approx(1.0)),
    }
    assert regrets(first, "middle") == {
        "transfer": ([2], pytest.approx(0.0)),
        "transfer_ft": ([2], pytest.approx(2.0)),
    }
    assert regrets(first, "fine_tune_all")["transfer_ft"] == ([4], pytest.approx(1.0))
    assert (
        first["choices"]["fine_tune_all"]["transfer"]["why"]
        == "a rule for treatments that fine-tune every copied block"
    )
    assert first["choices"]["logme"]["transfer"]["accuracy"] == pytest.approx(0.80)

    # random1: LogME picks n = 3 (.70 - .65 = 5); kNN is n/a at 2 and 3: no choice. AnB+ has
    # one measured cut point: nothing to choose for anyone.
    assert regrets(second, "logme")["transfer"] == ([3], pytest.approx(5.0))
    assert second["choices"]["knn"]["transfer"]["why"] == (
        "1 cut points with both, fewer than 2; the score is n/a at n = 2, 3"
    )
    assert regrets(second, "deepest")["transfer"] == ([3], pytest.approx(5.0))
    assert regrets(second, "middle")["transfer"] == ([2], pytest.approx(0.0))
    for choice in ("logme", "knn", "deepest", "middle", "fine_tune_all"):
        assert second["choices"][choice]["transfer_ft"]["why"] == (
            "1 measured cut points, fewer than 2"
        )

    # Means over the groups that have one: LogME AnB (5 + 5)/2, deepest AnB (15 + 5)/2.
    mean = result["mean"]
    assert mean["logme"]["transfer"]["regret"] == pytest.approx(5.0)
    assert mean["logme"]["transfer"]["groups"] == 2
    assert mean["logme"]["transfer_ft"]["regret"] == pytest.approx(4.0)
    assert mean["knn"]["transfer"]["regret"] == pytest.approx(5.0)
    assert mean["knn"]["transfer"]["groups"] == 1
    assert mean["deepest"]["transfer"]["regret"] == pytest.approx(10.0)
    assert mean["middle"]["transfer"]["regret"] == pytest.approx(0.0)
    assert mean["middle"]["transfer_ft"]["regret"] == pytest.approx(2.0)
    assert mean["fine_tune_all"]["transfer"] == {
        "regret": None,
        "groups": 0,
        "why": "a rule for treatments that fine-tune every copied block",
    }
    assert mean["leep"]["transfer"]["regret"] is None
    # Beating a rule: a smaller mean regret. LogME AnB 5 < deepest 10; AnB+ 4 beats none
    # (deepest 1, middle 2, fine-tune everything 1). kNN AnB+ 1 < middle 2, not < 1.
    assert mean["logme"]["transfer"]["beats"] == ["deepest"]
    assert mean["logme"]["transfer_ft"]["beats"] == []
    assert mean["knn"]["transfer_ft"]["beats"] == ["middle"]
    assert mean["leep"]["transfer"]["beats"] == []


def test_an_estimator_that_picks_the_best_cut_has_no_regret():
    scores, records = study()
    for entry in scores["entries"]:
        entry["scores"]["logme"] = {1: 0.0, 2: 1.0, 3: 0.5, 4: 0.2}.get(entry["n"], 0.0)
    first = agreement.regret(scores, records)["groups"][0]
    assert first["choices"]["logme"]["transfer"]["regret"] == 0.0
    assert first["choices"]["logme"]["transfer"]["n"] == [2]


def test_agreement_carries_the_regret_and_the_report_renders_it():
    scores, records = study()
    result = agreement.agreement(scores, records)
    assert result["regret"] == agreement.regret(scores, records)
    assert result["regret"]["pruned"] is False
    text = estimator_agreement.section(result)
    header = "| choice | random0 AnB | random0 AnB+ | random1 AnB | random1 AnB+ | mean AnB |"
    assert header + " mean AnB+ |" in text
    assert (
        "| best measured | 0.850 (n = 2) | 0.740 (n = 3) | 0.700 (n = 2) | 0.700 (n = 1) |  |  |"
        in text
    )
    assert "| LogME | 5.0 (n = 1) | 4.0 (n = 1) | 5.0 (n = 3) | – | 5.0 | 4.0 |" in text
    assert "| kNN | 5.0 (n = 2, 3 tied) | 1.0 (n = 2, 3 tied) | – | – | 5.0 | 1.0 |" in text
    assert "| LEEP | – | – | – | – | – | – |" in text
    assert "| deepest cut | 15.0 (n = 4) | 1.0 (n = 4) | 5.0 (n = 3) | – | 10.0 | 1.0 |" in text
    assert "| fine-tune everything | – | 1.0 (n = 4) | – | – | – | 1.0 |" in text
    assert "- LogME lost fewer points on AnB than deepest cut." in text
    assert "- kNN lost fewer points on AnB than deepest cut; on AnB+ than middle cut." in text
    assert "Over the trained cut points only" not in text
    # A pruned study compares the trained cut points only, and says so.
    scores["prune"] = {"estimator": "logme", "trained": [1, 2], "networks_planned": 9}
    pruned = agreement.agreement(scores, records)
    assert pruned["regret"]["pruned"] is True
    assert "Over the trained cut points only (--prune)." in estimator_agreement.section(pruned)


def test_without_measured_accuracies_every_regret_says_why():
    scores, records = study()
    result = agreement.regret(scores, records[:2])  # the bases only
    for group in result["groups"]:
        assert group["best"] == {"transfer": None, "transfer_ft": None}
        for choice in ("logme", "knn", "deepest", "middle"):
            for t in ("transfer", "transfer_ft"):
                assert group["choices"][choice][t]["why"] == "0 measured cut points, fewer than 2"
    assert result["mean"]["logme"]["transfer"]["regret"] is None


def test_fine_tune_everything_is_a_rule_for_recipes_that_train_every_copied_block():
    curve = {1: 0.70, 4: 0.80, 7: 0.75}
    for recipe in ("transfer_ft", "layer_decay", "lp_ft"):
        assert agreement._rule_choice("fine_tune_all", recipe, curve)["n"] == [7]
    for recipe in ("transfer", "probe", "surgical"):  # surgical trains one block only
        choice = agreement._rule_choice("fine_tune_all", recipe, curve)
        assert choice["why"] == "a rule for treatments that fine-tune every copied block"
