"""--runs_in_flight: runs trained at once, each in its own thread, end exactly as trained one
at a time (same validation history, test accuracy and weights, bit for bit)."""

import numpy as np

from helpers.studies import tiny_study
from kerastransfer.study.runner import Runner
from kerastransfer.training import strategies
from kerastransfer.workdir.results import ResultStore

GRID = {"layers": (1, 5), "treatments": ("selffer", "transfer_ft", "random"), "dropout": 0.5}


def train_grid(workdir, runs_in_flight):
    study = tiny_study(workdir, runs_in_flight=runs_in_flight, **GRID)
    lines = []
    done = Runner(study, ResultStore(str(workdir)), lines.append).run_all()
    return study, done, lines


def most_at_once(lines):
    """The most runs started and not yet done at any point of a runner's log."""
    running, most = set(), 0
    for line in lines:
        words = line.split()
        if len(words) > 2 and words[1] in ("start", "done"):
            (running.add if words[1] == "start" else running.discard)(words[2])
            most = max(most, len(running))
    return most


def test_runs_in_flight_end_as_trained_one_at_a_time(tmp_path):
    together, together_done, lines = train_grid(tmp_path / "together", 2)
    alone, alone_done, alone_lines = train_grid(tmp_path / "alone", 1)
    assert most_at_once(lines) == 2 and most_at_once(alone_lines) == 1
    assert "2 at a time" in lines[0]
    assert set(together_done) == set(alone_done) and len(alone_done) == 2 + 2 * 3
    for run, record in alone_done.items():
        ours = together_done[run]
        assert ours["status"] == record["status"] == "ok", run
        for field in ("val_history", "best_k", "test_accuracy", "weights_sha256"):
            assert ours[field] == record[field], (run, field)
        weights = zip(together.trained_network(ours).weights, alone.trained_network(record).weights)
        for mine, theirs in weights:
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_runs_in_flight_keep_the_mixed_precision_policy(tmp_path):
    """Keras keeps its dtype policy per thread: each run's thread is given it first."""
    strategies.set_precision("mixed_bfloat16")
    try:
        study = tiny_study(
            tmp_path, runs_in_flight=2, mixed_precision="mixed_bfloat16", layers=(1,)
        )
        study.runs = study.runs[:2]  # the two bases, in flight together
        done = Runner(study, ResultStore(str(tmp_path)), lambda line: None).run_all()
    finally:
        strategies.set_precision("none")
    assert [r["dtype_policy"] for r in done.values()] == ["mixed_bfloat16"] * 2
