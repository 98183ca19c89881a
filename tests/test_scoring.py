"""Transferability estimators on a study's cut points: --mode=score, scores.json, and the
estimators against the measured grid in the analysis."""

import glob
import json
import os

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from helpers.records import records as read_records
from kerastransfer import config, surgery
from kerastransfer.analysis import agreement
from kerastransfer.analysis.estimators import ESTIMATORS
from kerastransfer.study import stages
from kerastransfer.study.own_model import load_study
from kerastransfer.workdir.provenance import stored_experiment

SMOKE_LAYERS = (1, 5, 7)


def test_rank_correlations_match_scipy_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.integers(0, 4, 9).astype(float)  # ties
        y = rng.normal(size=9)
        assert agreement.spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y).statistic)
        assert agreement.kendall(x, y) == pytest.approx(scipy.stats.kendalltau(x, y).statistic)


def test_a_correlation_needs_three_cut_points_that_vary():
    assert agreement.correlate({1: 0.1, 2: 0.2}, {1: 0.5, 2: 0.6})["why"].startswith("2 cut")
    flat = agreement.correlate({1: 1.0, 2: 1.0, 3: 1.0}, {1: 0.5, 2: 0.6, 3: 0.7})
    assert flat["spearman"] is None and flat["why"] == "the score is the same at every n"
    rising = agreement.correlate({1: 1.0, 2: 2.0, 3: 3.0, 4: 2.5}, {1: 0.1, 2: 0.2, 3: 0.4, 4: 0.3})
    assert rising["spearman"] == pytest.approx(1.0) and rising["points"] == 4


def _entry(n, logme, sha="a", target="B"):
    return {
        "split": "random0",
        "source": "A" if target == "B" else "B",
        "target": target,
        "seed": 0,
        "source_run": "random0/base/A/seed0",
        "weights_sha256": sha,
        "n": n,
        "cut": f"layer{n}",
        "dims": 8,
        "examples": 100,
        "scores": {"logme": logme, "leep": -1.0},
        "seconds": 0.1,
    }


def _record(treatment, n, accuracy, seed=0):
    return {
        "run": f"random0/{treatment}/n{n}/seed{seed}",
        "treatment": treatment,
        "split": "random0",
        "source": "A" if treatment != "base" else None,
        "target": "B" if treatment != "base" else "A",
        "n": n,
        "seed": seed,
        "status": "ok",
        "test_accuracy": accuracy,
    }


def test_agreement_ranks_scores_against_accuracy_and_drops_scores_of_retrained_bases():
    falling = {1: 0.9, 2: 0.8, 3: 0.7, 4: 0.6}  # AnB accuracy falls with n
    rising = {1: 0.60, 2: 0.62, 3: 0.64, 4: 0.66}  # AnB+ rises
    records = [{**_record("base", 0, 0.9), "run": "random0/base/A/seed0", "weights_sha256": "a"}]
    records += [_record("transfer", n, a, seed) for n, a in falling.items() for seed in (0, 1)]
    records += [_record("transfer_ft", n, a) for n, a in rising.items()]
    scores = {
        "settings": {"estimators": ["logme", "leep"], "reduction": "gap", "examples": 100},
        "entries": [_entry(n, -n) for n in falling]  # LogME falls with n: AnB's order
        + [_entry(n, 99.0, sha="stale") for n in falling],  # a base trained again since
    }
    result = agreement.agreement(scores, records)
    (group,) = result["groups"]
    assert group["n"] == [1, 2, 3, 4] and group["scores"]["logme"] == [-1, -2, -3, -4]
    logme = group["correlations"]["logme"]
    assert logme["transfer"]["spearman"] == pytest.approx(1.0)
    assert logme["transfer_ft"]["spearman"] == pytest.approx(-1.0)
    assert result["mean"]["logme"]["transfer"]["verdict"] == "tracks"
    assert result["mean"]["logme"]["transfer_ft"]["verdict"] == "ranks in reverse"
    # LEEP scores the source head: the same at every n, so it cannot rank cut points.
    assert result["mean"]["leep"]["transfer"]["spearman"] is None
    assert result["mean"]["leep"]["transfer"]["why"] == "the score is the same at every n"


@pytest.mark.e2e
def test_the_smoke_study_scores_every_cut_point_and_reports_the_agreement(smoke_workdir):
    workdir = smoke_workdir.workdir
    with open(os.path.join(workdir, "scores.json")) as f:
        scores = json.load(f)
    assert scores["settings"]["estimators"] == list(ESTIMATORS)
    entries = scores["entries"]
    assert [e["n"] for e in entries] == list(SMOKE_LAYERS)
    experiment, _ = stored_experiment(config.Experiment(workdir=workdir))
    study = load_study(experiment)
    cuts = surgery.cut_layers(study.build_model(5))
    (base,) = [r for r in read_records(workdir) if r["run"] == "random0/base/A/seed0"]
    half_b = study.halves.half("random0", "B")
    for entry in entries:
        assert entry["cut"] == cuts[entry["n"] - 1]
        assert (entry["source"], entry["target"]) == ("A", "B")
        assert entry["weights_sha256"] == base["weights_sha256"]
        assert entry["examples"] == len(half_b.train_y)  # fewer than --score_examples
        assert set(entry["scores"]) == set(ESTIMATORS)
        assert all(np.isfinite(v) for v in entry["scores"].values())
    assert "score random0 A->B seed 0 n=5" in smoke_workdir.done.stdout

    events = glob.glob(
        os.path.join(workdir, "tensorboard", "scores", "random0", "AnB", "seed0", "*")
    )
    steps = {
        event.step
        for path in events
        for event in tf.compat.v1.train.summary_iterator(path)
        for value in event.summary.value
        if value.tag == "score/logme"
    }
    assert steps == set(SMOKE_LAYERS)

    with open(os.path.join(workdir, "analysis.json")) as f:
        estimators = json.load(f)["estimators"]
    (group,) = estimators["groups"]
    assert group["n"] == list(SMOKE_LAYERS)
    assert group["scores"]["logme"] == [e["scores"]["logme"] for e in entries]
    assert os.path.getsize(os.path.join(workdir, "figures", "estimators.png")) > 10_000
    with open(os.path.join(workdir, "report.md")) as f:
        report = f.read()
    assert "## Transferability estimators against the measured grid" in report
    assert "| LogME |" in report and "- LEEP: cannot rank AnB" in report


@pytest.mark.e2e
def test_score_mode_keeps_what_it_scored_and_scores_again_when_settings_change(smoke_copy, capsys):
    # In this process: a command per step would cost its start-up.
    path = os.path.join(smoke_copy, "scores.json")
    with open(path) as f:
        before = json.load(f)["entries"]
    stages.score(config.Experiment(workdir=smoke_copy, mode="score"))
    assert "score random0" not in capsys.readouterr().out  # nothing computed again
    with open(path) as f:
        assert json.load(f)["entries"] == before

    # n=1 of the smoke widths: 8 channels at 14 x 14 = 1,568 values; pca (the default) keeps
    # 64 components, gap the 8 channels' means.
    assert before[0]["dims"] == 64
    scoring = config.ScoringConfig(score_reduction="gap", estimators=("logme", "hscore"))
    stages.score(config.Experiment(workdir=smoke_copy, mode="score", scoring=scoring))
    assert "score random0 A->B seed 0 n=1 (pool1, 8 dims)" in capsys.readouterr().out
    with open(path) as f:
        scores = json.load(f)
    assert scores["settings"]["reduction"] == "gap"
    assert [sorted(e["scores"]) for e in scores["entries"]] == [["hscore", "logme"]] * 3
    assert scores["entries"][0]["dims"] == 8
