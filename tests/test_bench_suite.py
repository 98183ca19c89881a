"""The benchmark's task suite (tools/bench/suite.py): its tasks, its regret table and its
section of BENCHMARKS.md; end to end on two tiny tasks through the real command line."""

import dataclasses
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers.cli import REPO
from kerastransfer import treatments
from tools.bench import report, suite

# One tiny task, one seed, three modes at three cut points: the suite's machinery, five
# commands, in about two minutes on 2 cores (the flags narrow what every command trains; the
# rules' own --treatments and --layers come after them and win).
TINY = suite.Sizes(
    tasks=("digits",),
    train=10,
    few=10,
    test=10,
    digits_train=10,
    digits_test=10,
    source_images=60,
    source_epochs=1,
    flags=(
        "--layers=1,2,3",
        "--treatments=transfer,transfer_ft,probe",
        "--seeds=0",
        "--epochs=1",
        "--estimators=logme",
    ),
)


def record(treatment, n, seed, val, test, seconds=1.0):
    return {
        "treatment": treatment,
        "n": n,
        "seed": seed,
        "status": "ok",
        "final_val": val,
        "test_accuracy": test,
        "train_seconds": seconds,
    }


def workdir(records, choice, wall, scores=None):
    return {
        "records": records,
        "choice": {"treatment": choice[0], "n": choice[1]},
        "examples": {"validation": [50], "test": [1000]},
        "scores": scores,
        "wall_seconds": wall,
        "peak_rss_bytes": 0,
    }


def measured_task(prune_extra):
    """A task's commands as run_task returns them, made by hand: a full sweep over transfer,
    transfer_ft and probe at n = 1, 3, 5 (two seeds), --prune=2 and the three rules."""
    # (treatment, n): (validation, test) of seed 0; seed 1 is 0.02 lower on both.
    cells = {
        ("transfer", 1): (0.60, 0.58),
        ("transfer", 3): (0.70, 0.66),
        ("transfer", 5): (0.65, 0.64),
        ("transfer_ft", 1): (0.62, 0.61),
        ("transfer_ft", 3): (0.68, 0.72),  # the test-best cell
        ("transfer_ft", 5): (0.66, 0.65),
        ("probe", 1): (0.50, 0.50),
        ("probe", 3): (0.55, 0.52),
        ("probe", 5): (0.71, 0.60),  # the validation-best cell: the recommendation
    }
    full = [record("base", 0, s, 0.4, 0.4) for s in (0, 1)] + [
        record(t, n, s, v - 0.02 * s, x - 0.02 * s)
        for (t, n), (v, x) in cells.items()
        for s in (0, 1)
    ]
    scores = {
        "seconds": 2.0,
        "entries": [
            {"n": 1, "scores": {"logme": -0.5, "hscore": 2.0, "sfda": None, "leep": -1.0}},
            {"n": 3, "scores": {"logme": -0.4, "hscore": 2.0, "sfda": 0.2, "leep": -1.0}},
            {"n": 5, "scores": {"logme": -0.6, "hscore": 1.0, "sfda": 0.9, "leep": -1.0}},
        ],
        "prune": None,
    }
    trained = [1, 3, 5] if prune_extra else [1, 3]
    prune_record = {
        "k": 2,
        "ranking": [3, 1, 5],
        "trained": trained,
        "scoring_seconds": 2.0,
        "bootstrap": {
            "held": 0.5 if prune_extra else 1.0,
            "seconds": 1.5,
            "extra": 5 if prune_extra else None,
        },
    }
    pruned = [r for r in full if r["n"] in [0, *trained]]
    rules = {
        "fine-tune everything": [record("transfer_ft", 5, s, 0.66, 0.63) for s in (0, 1)],
        "linear probe, deepest cut": [record("probe", 5, s, 0.71, 0.61) for s in (0, 1)],
        "frozen, middle cut": [record("transfer", 3, s, 0.70, 0.66) for s in (0, 1)],
    }
    prune_choice = ("probe", 5) if prune_extra else ("transfer", 3)
    return {
        "full": workdir(full, ("probe", 5), 100.0, scores),
        "prune": workdir(
            pruned, prune_choice, 60.0, {"seconds": 2.0, "entries": [], "prune": prune_record}
        ),
        **{
            name: workdir(
                [record("base", 0, s, 0.4, 0.4) for s in (0, 1)] + made,
                (made[0]["treatment"], made[0]["n"]),
                20.0,
            )
            for name, made in rules.items()
        },
    }


def test_regret_of_every_choice_against_the_test_best_cell():
    task = suite.task_choices(measured_task(prune_extra=True))
    assert task["reference"] == {"treatment": "transfer_ft", "n": 3, "test": pytest.approx(0.71)}
    choices = task["choices"]
    # probe n=5 tests at 0.59 (mean of 0.60 and 0.58): 12 points below transfer_ft n=3's 0.71
    assert choices["recommendation"]["regret"] == pytest.approx(12.0)
    assert choices["--prune=2"]["regret"] == pytest.approx(12.0)
    # without the bootstrap's extra n=5, --prune's best by validation among n = 1, 3 is
    # transfer n=3 (0.69): 0.65 on test, 6 points below
    assert choices["--prune=2 without the extra cut"]["regret"] == pytest.approx(6.0)
    assert choices["rule on freeze/fine-tune only"]["treatment"] == "transfer"
    # the rules' regrets come from their own runs' test accuracies
    assert choices["fine-tune everything"]["regret"] == pytest.approx(100 * (0.71 - 0.63))
    assert choices["linear probe, deepest cut"]["regret"] == pytest.approx(100 * (0.71 - 0.61))
    assert choices["frozen, middle cut"]["n"] == 3
    # LogME scores n=3 best: each mode at n=3, and the best of those by validation
    assert choices["logme: transfer_ft"]["regret"] == pytest.approx(0.0)
    assert choices["logme: best by validation"]["treatment"] == "transfer"
    assert choices["logme: best by validation"]["seconds"] == pytest.approx(2.0 + 3 * 2.0)
    # H-score ties at n = 1 and 3: the lower n; SFDA's n/a at n = 1 ranks last
    assert choices["hscore: probe"]["n"] == 1
    assert choices["sfda: probe"]["n"] == 5
    assert not any(name.startswith("leep") for name in choices)  # the same score at every n
    assert choices["recommendation"]["seconds"] == 100.0
    assert task["over_plain"]["points"] == pytest.approx(100 * (0.59 - 0.71))


def test_summary_pairs_each_choice_with_the_recommendation_over_tasks():
    per_task = {
        "a": suite.task_choices(measured_task(prune_extra=True)),
        "b": suite.task_choices(measured_task(prune_extra=False)),
    }
    table = suite.summary(per_task)["choices"]
    prune = table["--prune=2"]
    # --prune=2 chose probe n=5 on task a (regret 12) and transfer n=3 on b (regret 6)
    assert prune["regret"]["mean"] == pytest.approx(9.0)
    low, high = prune["regret"]["ci"]
    # the t-interval over 2 tasks: 9 +- t(0.975, 1) * 3
    assert (low, high) == pytest.approx((9 - 12.7062 * 3, 9 + 12.7062 * 3), rel=1e-4)
    assert prune["minus_recommendation"]["mean"] == pytest.approx(-3.0)
    assert table["recommendation"]["minus_recommendation"]["ci"] is None  # no spread
    assert prune["seconds"] == pytest.approx(60.0)


def test_the_rules_follow_the_treatments_table():
    rules = suite.rule_commands([1, 2, 3, 4, 5])
    fine_tuned, deepest = rules["fine-tune everything"]
    assert treatments.get(fine_tuned).plain_fine_tuning and deepest == 5
    frozen, middle = rules["frozen, middle cut"]
    assert treatments.get(frozen).frozen and frozen in treatments.FROM_OTHER_HALF and middle == 3
    assert rules["linear probe, deepest cut"] == ("probe", 5)


def test_shifts_change_the_images_as_named():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 28, 28, 1)).astype(np.uint8)
    inverted = suite.shifted("inverted", images, rng)
    np.testing.assert_array_equal(inverted, 255 - images)
    low = suite.shifted("contrast", images, rng)
    assert low.min() >= 95 and low.max() <= 160
    blurred = suite.shifted("blur", images, rng)
    assert blurred.std() < images.std() / 2
    noisy = suite.shifted("noise", images, np.random.default_rng(0))
    assert noisy.dtype == np.uint8 and not np.array_equal(noisy, images)


def test_every_task_of_the_suite_is_a_folder_with_its_own_test_images(tmp_path):
    sizes = dataclasses.replace(TINY, tasks=suite.SUITE.tasks, train=6, few=3, test=4)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.bench.suite",
            f"--out={tmp_path}",
            f"--sizes={json.dumps(dataclasses.asdict(sizes))}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "tasks.json") as f:
        made = json.load(f)
    assert list(made) == list(suite.SUITE.tasks)
    assert os.path.getsize(tmp_path / "source.keras") > 0
    for task, counts in made.items():
        classes = 10 if task == "digits" else 5
        train = {"few20": 3, "digits": 10}.get(task, 6) * classes
        test = 10 * classes if task == "digits" else 4 * classes
        assert counts == {"train_images": train, "test_images": test, "classes": classes}
        pixels = {}
        for part in ("train", "test"):
            paths = glob.glob(str(tmp_path / task / part / "*" / "*.png"))
            pixels[part] = {np.asarray(Image.open(p)).tobytes() for p in paths}
            assert len(paths) == counts[f"{part}_images"]
        assert not pixels["train"] & pixels["test"]  # no test image is a training image
    # the shifts: the same half B image, shifted as each task says
    first = {
        task: np.asarray(Image.open(sorted(glob.glob(str(tmp_path / task / "train/*/*.png")))[0]))
        for task in ("classes", "inverted", "contrast")
    }
    np.testing.assert_array_equal(first["inverted"], 255 - first["classes"])
    assert np.ptp(first["contrast"]) < np.ptp(first["classes"]) / 2


@pytest.mark.e2e
def test_quick_suite_end_to_end_renders_its_table(tmp_path):
    keep = str(tmp_path / "suite")
    os.makedirs(keep)
    result = suite.suite_row(sizes=TINY, log=lambda message: None, keep=keep)
    json.dumps(result)  # the JSON the benchmark writes
    # the tasks: train/ and test/ folders of PNGs, test images apart
    digits = result["tasks"]["digits"]
    assert (digits["classes"], digits["train_images"], digits["test_images"]) == (10, 100, 100)
    train = glob.glob(os.path.join(keep, "digits", "train", "*", "*.png"))
    test = glob.glob(os.path.join(keep, "digits", "test", "*", "*.png"))
    assert len(train) == 100 and len(test) == 100
    assert Image.open(train[0]).size == (8, 8)
    # the study kept a tenth of train/ for validation and tested on test/ alone
    assert digits["examples"] == {"validation": [10], "test": [100]}
    for task in result["tasks"].values():
        choices = task["choices"]
        assert set(task["wall_seconds"]) == {"full", "prune", *suite.rule_commands([1, 2, 3])}
        best = task["reference"]["test"]
        assert best == max(cell["test"] for cell in task["cells"].values())
        for choice in choices.values():
            assert choice["regret"] == pytest.approx(100 * (best - choice["test"]))
        assert choices["recommendation"]["regret"] >= 0  # the same runs as the reference
        assert 0 < task["pruning"]["share"]
    text = "\n".join(report.suite_section(result))
    assert "## Task suite" in text
    assert "| --prune=2 |" in text and "| fine-tune everything |" in text
    assert "digits 100/100, 10 validation" in text
