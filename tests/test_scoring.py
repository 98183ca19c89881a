"""Transferability estimators on a study's cut points: --mode=score, scores.json, and the
estimators against the measured grid in the analysis."""

import glob
import json
import math
import os

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from helpers.cli import REPO, run_cli
from helpers.data_fixtures import write_png
from helpers.records import records as read_records
from kerastransfer import config, estimators, surgery
from kerastransfer.analysis import agreement
from kerastransfer.app import score as score_mode
from kerastransfer.reporting import estimator_agreement
from kerastransfer.study.own_model import load_study
from kerastransfer.workdir.provenance import stored_experiment

ESTIMATORS = estimators.names()

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


def score_steps(workdir, split, seed):
    """{tag: the steps (n) it has a point at} in the A->B score events of a workdir."""
    steps = {}
    for path in glob.glob(os.path.join(workdir, "tensorboard", "scores", split, "AnB", seed, "*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                steps.setdefault(value.tag, set()).add(event.step)
    return steps


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
        "best_k": accuracy,
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


def test_n_a_scores_drop_out_of_the_agreement_with_their_reason(tmp_path):
    falling = {1: 0.9, 2: 0.8, 3: 0.7, 4: 0.6}
    records = [{**_record("base", 0, 0.9), "run": "random0/base/A/seed0", "weights_sha256": "a"}]
    records += [{**_record("transfer", n, a), "final_val": a} for n, a in falling.items()]
    entries = [_entry(n, -n) for n in falling]
    for entry in entries:
        entry["scores"]["leep"] = None
        entry["unscored"] = {"leep": "source_probabilities hold 8 NaN or infinite values"}
    entries[2]["scores"]["logme"] = None
    entries[2]["unscored"]["logme"] = "features hold 8 NaN or infinite values"
    settings = {"estimators": ["logme", "leep"], "reduction": "gap", "examples": 100}
    scores = {"settings": settings, "entries": entries}
    result = agreement.agreement(scores, records)
    json.dumps(result, allow_nan=False)
    (group,) = result["groups"]
    assert group["scores"] == {"logme": [-1, -2, None, -4], "leep": [None] * 4}
    assert group["unscored"]["logme"] == [
        {"n": [3], "seeds": [0], "why": "features hold 8 NaN or infinite values"}
    ]
    logme = group["correlations"]["logme"]["transfer"]
    assert logme["points"] == 3 and logme["spearman"] == pytest.approx(1.0)
    leep = result["mean"]["leep"]["transfer"]
    assert leep["spearman"] is None and leep["verdict"] == "undetermined"
    assert leep["why"] == "0 cut points with both, fewer than 3; the score is n/a at n = 1, 2, 3, 4"

    text = estimator_agreement.section(result)
    assert (
        "- LogME n/a at n = 3 (random0 A->B, seed 0): features hold 8 NaN or infinite values."
        in text
    )
    assert "- LEEP n/a at n = 1, 2, 3, 4 (random0 A->B, seed 0): source_probabilities" in text
    (png, _) = estimator_agreement.plot(result, str(tmp_path))
    assert os.path.getsize(png) > 10_000

    # NaN counts as n/a too (a file written by hand or by another tool).
    nan = agreement.correlate({1: math.nan, 2: 2.0, 3: 3.0}, {1: 0.1, 2: 0.2, 3: 0.3})
    assert nan["points"] == 2 and nan["why"].endswith("; the score is n/a at n = 1")
    # --prune's record: an n/a score among the trained cut points leaves its order unmeasured.
    scores["prune"] = {
        "estimator": "logme",
        "trained": [3, 4],
        "networks_planned": 9,
        "networks_trained": 5,
    }
    order = agreement.pruning(scores, records)["agreement"]["transfer"]
    assert order["kendall"] is None and order["why"].endswith("n/a at n = 3")


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

    assert score_steps(workdir, "random0", "seed0")["score/logme"] == set(SMOKE_LAYERS)

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
    score_mode.run(config.Experiment(workdir=smoke_copy, mode="score"))
    assert "score random0" not in capsys.readouterr().out  # nothing computed again
    with open(path) as f:
        assert json.load(f)["entries"] == before

    # n=1 of the smoke widths: 8 channels at 14 x 14 = 1,568 values; pca (the default) keeps
    # 64 components, gap the 8 channels' means.
    assert before[0]["dims"] == 64
    scoring = config.ScoringConfig(score_reduction="gap", estimators=("logme", "hscore"))
    score_mode.run(config.Experiment(workdir=smoke_copy, mode="score", scoring=scoring))
    assert "score random0 A->B seed 0 n=1 (pool1, 8 dims)" in capsys.readouterr().out
    with open(path) as f:
        scores = json.load(f)
    assert scores["settings"]["reduction"] == "gap"
    assert [sorted(e["scores"]) for e in scores["entries"]] == [["hscore", "logme"]] * 3
    assert scores["entries"][0]["dims"] == 8


@pytest.mark.e2e
def test_a_cut_no_estimator_can_score_costs_its_scores_not_the_study(tmp_path):
    # A source model whose second block overflows: its features are infinite, and so the head's
    # probabilities are NaN. Every score at n=2 and LEEP everywhere are n/a; --prune ranks n=2
    # last, so only n=1 trains, and analysis and export go on.
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(4, 3, name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="head")(x))
    kernel, bias = model.get_layer("conv2").get_weights()
    model.get_layer("conv2").set_weights([kernel, np.full_like(bias, np.inf)])
    source = str(tmp_path / "overflowing.keras")
    model.save(source)
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        for i in range(12):
            image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            write_png(str(tmp_path / "images" / name / f"{i:02d}.png"), image)
    workdir = str(tmp_path / "work")
    done = run_cli(
        f"--flagfile={os.path.join(REPO, 'configs', 'transfer_folder.flags')}",
        f"--source_model={source}",
        f"--image_dir={tmp_path / 'images'}",
        f"--workdir={workdir}",
        "--layers=1,2",
        "--prune=1",
        "--treatments=transfer",
        "--seeds=0",
        "--epochs=1",
        "--batch_size=8",
    )
    assert done.returncode == 0, done.stderr[-4000:]

    def no_nan(constant):
        raise AssertionError(f"scores.json holds {constant}")

    with open(os.path.join(workdir, "scores.json")) as f:
        scores = json.load(f, parse_constant=no_nan)
    first, second = scores["entries"]
    infinite = f"features hold {second['dims'] * second['examples']} NaN or infinite values"
    assert set(second["scores"].values()) == {None}
    assert second["unscored"] == {
        **{name: infinite for name in ESTIMATORS if name != "leep"},
        "leep": f"source_probabilities hold {2 * second['examples']} NaN or infinite values",
    }
    assert list(first["unscored"]) == ["leep"] and first["scores"]["leep"] is None
    assert all(np.isfinite(v) for k, v in first["scores"].items() if k != "leep")
    assert scores["prune"]["ranking"] == [1, 2] and scores["prune"]["trained"] == [1]
    assert scores["prune"]["unscored"] == [{"n": 2, "why": infinite}]

    steps = score_steps(workdir, "target", "source_model")
    assert steps["score/logme"] == {1} and "score/leep" not in steps
    with open(os.path.join(workdir, "recommendation.json")) as f:
        recommendation = json.load(f, parse_constant=no_nan)
    assert recommendation["choice"]["n"] == 1
    assert recommendation["estimators"]["groups"][0]["unscored"]["logme"][0]["n"] == [2]
    with open(os.path.join(workdir, "report.md")) as f:
        report = f.read()
    assert f"- LogME is n/a at n = 2 ({infinite}): ranked below every score." in report
    assert f"- LogME n/a at n = 2 (target A->B): {infinite}." in report
    assert os.path.isfile(os.path.join(workdir, "export", "kerastransfer", "1", "metadata.json"))
