"""One study trained by two workers under MultiWorkerMirroredStrategy (TF_CONFIG) on
127.0.0.1: both finish with identical weights, and only the chief writes the workdir."""

import json
import os
import re
import subprocess

import pytest

from helpers.cli import REPO, SMOKE, cli_command
from helpers.records import records as read_records
from kerastransfer.study.following import weights_digest

pytestmark = pytest.mark.e2e

RUNS = ["random0/base/A/seed0", "random0/base/B/seed0", "random0/transfer_ft/n5/seed0"]


def test_two_workers_train_in_lockstep_and_only_the_chief_writes(tmp_path, free_ports):
    workdir = tmp_path / "work"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config)}
        workers.append(
            subprocess.Popen(
                cli_command(
                    f"--flagfile={SMOKE}",
                    f"--workdir={workdir}",
                    "--mode=train",
                    "--strategy=multi_worker",
                    "--epochs=1",
                    "--layers=5",
                    "--treatments=transfer_ft",
                ),
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    chief_log, follower_log = outputs[0][0], outputs[1][0]

    records = read_records(workdir)
    assert [r["run"] for r in records] == RUNS  # one record per run: the chief's
    for record in records:
        assert record["status"] == "ok"
        # MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy
        assert (record["strategy"], record["replicas"]) == ("CollectiveAllReduceStrategy", 2)
        chief_digest = weights_digest(workdir / record["weights"])
        assert (
            f"worker 1: weights of {record['run']} equal the chief's (digest {chief_digest})"
        ) in follower_log
        # checkpoints are removed once a run is done; nothing but the chief's files remain
        assert os.listdir(workdir / "runs" / record["run"]) == ["final.weights.h5"]
    assert "not the chief" not in chief_log
    scratch = re.search(r"this worker's copies go to (\S+)", follower_log).group(1)
    assert not os.path.exists(scratch)  # the follower's throwaway folder is gone
    assert str(workdir) not in scratch
    # the follower measured the same validation and test accuracies as the chief
    assert results_in(follower_log) == results_in(chief_log)
    assert sorted(results_in(chief_log)) == sorted(RUNS)


def results_in(log):
    """{run id: "best-k val V, test T"} from the lines a worker logs when a run is done."""
    return dict(re.findall(r"done  (\S+) \(.*?\): (best-\d+ val [\d.]+, test [\d.]+)", log))
