"""A damaged results.jsonl and a full disk: one clear line, nothing already written lost, and
the next start resumes.

results.jsonl damage runs the real command line on a copy of the session's finished smoke
workdir. A full disk is a real one where the test may mount a small tmpfs (root), and a file
size limit (RLIMIT_FSIZE, in a subprocess) everywhere.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from helpers.cli import REPO, SMOKE, run_cli
from helpers.records import records
from helpers.reliability import own_lines, snapshot
from kerastransfer.errors import DiskFull
from kerastransfer.workdir import files
from kerastransfer.workdir.results import ResultStore

SMOKE_TRAIN = (f"--flagfile={SMOKE}", "--mode=train")
SMOKE_RUNS = 17
LAST_RUN = "random0/random/n7/seed0"  # the smoke grid's last run; no other run copies it


def rewrite_line(path, number, change):
    """Replaces line `number` (from 1) of a text file by `change(line)`; None drops it."""
    with open(path) as f:
        lines = f.read().split("\n")
    lines[number - 1] = change(lines[number - 1])
    with open(path, "w") as f:
        f.write("\n".join(line for line in lines if line is not None))


def without_keys(line, *keys):
    record = json.loads(line)
    for key in keys:
        del record[key]
    return json.dumps(record)


DAMAGE = {
    "corrupt line in the middle": (
        lambda line: line[:300],
        r"not valid JSON \(Unterminated string starting at: line 1 column \d+ \(char \d+\)\)",
    ),
    "record missing keys": (
        lambda line: without_keys(line, "weights_sha256", "test_accuracy"),
        "the record lacks test_accuracy, weights_sha256",
    ),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_results_line_is_one_line_naming_line_and_fix_and_the_fix_works(smoke_copy, damage):
    change, what = DAMAGE[damage]
    path = os.path.join(smoke_copy, "results.jsonl")
    rewrite_line(path, 6, change)
    before = snapshot(smoke_copy)

    done = run_cli(*SMOKE_TRAIN, f"--workdir={smoke_copy}")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    fix = f"sed -i '6d' {path}"
    lines = own_lines(done.stderr)
    assert len(lines) == 1, done.stderr[-3000:]
    assert re.fullmatch(
        rf"error: {re.escape(path)}:6: {what}; mend that line, or drop it with "
        rf"`{re.escape(fix)}` \(its run is then trained again\)",
        lines[0],
    )
    assert snapshot(smoke_copy) == before
    if damage != "record missing keys":
        return  # the fix is the same command; one run of it is enough
    dropped = json.loads(before["results.jsonl"].split(b"\n")[5])["run"]
    command = re.search(r"`([^`]+)`", lines[0])[1]  # run what the message says, as a user would
    subprocess.run(command, shell=True, check=True)
    again = run_cli(*SMOKE_TRAIN, f"--workdir={smoke_copy}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"start {dropped}" in again.stdout
    runs = [r["run"] for r in records(smoke_copy)]
    assert len(runs) == len(set(runs)) == SMOKE_RUNS
    assert all(r["status"] == "ok" for r in records(smoke_copy))


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB tmpfs mounted for this test (root only: skips elsewhere), unmounted after."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def fill(directory):
    """Fills the file system of `directory` to its last byte; returns the filler file."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, bytes(chunk))
            except OSError:
                pass
    finally:
        os.close(fd)
    return path


def test_full_disk_while_a_checkpoint_is_written_stops_with_one_line_and_the_next_start_resumes(
    smoke_workdir, small_disk
):
    """The smoke study with its last run to train again, on a disk without the room its
    checkpoint needs: exit 1 and one line, every earlier file intact; with room, the same
    command trains that run and the study is whole."""
    workdir = str(small_disk / "study")
    shutil.copytree(smoke_workdir.workdir, workdir)
    rewrite_line(os.path.join(workdir, "results.jsonl"), SMOKE_RUNS, lambda line: None)
    shutil.rmtree(os.path.join(workdir, "runs", LAST_RUN))
    before = snapshot(workdir)

    done = run_cli(*SMOKE_TRAIN, f"--workdir={workdir}")
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    checkpoint = os.path.join(workdir, "runs", LAST_RUN, "backup", "segment1.weights.h5")
    assert re.fullmatch(
        rf"stopped: no room to write {re.escape(checkpoint)} \(\d+\.\d MiB free, under the 64 "
        r"MiB an HDF5 file needs to be written safely\); every file written before is whole: "
        r"free space on that file system \(or raise its quota or file size limit\) and run "
        r"the same command again to resume",
        own_lines(done.stderr)[-1],
    )
    after = snapshot(workdir)
    # config.json is rewritten (atomically) with this command; nothing else that was there
    # changed, and what is new is only the run's TensorBoard log.
    for name, data in before.items():
        if name not in ("config.json", ".lock"):
            assert after[name] == data, name
    assert all(name.startswith("tensorboard/") for name in set(after) - set(before))
    assert not [name for name in after if ".tmp" in name]

    subprocess.run(
        ["mount", "-o", "remount,size=160m", str(small_disk)], check=True, capture_output=True
    )
    again = run_cli(*SMOKE_TRAIN, f"--workdir={workdir}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"start {LAST_RUN}" in again.stdout
    done_runs = [(r["run"], r["status"]) for r in records(workdir)]
    assert len(set(done_runs)) == len(done_runs) == SMOKE_RUNS
    assert {status for _, status in done_runs} == {"ok"}


def test_full_disk_leaves_results_and_files_as_they_were(small_disk):
    """A real ENOSPC: the record append and an atomic rewrite fail whole, and an HDF5 file
    is refused before its writer starts (h5py would crash the process instead)."""
    workdir = str(small_disk)
    store = ResultStore(workdir)
    store.append({"run": "first"})
    files.write_json(os.path.join(workdir, "config.json"), {"experiment": {}})
    before = snapshot(workdir)
    fill(workdir)

    with pytest.raises(DiskFull, match=r"results\.jsonl \(No space left on device\)"):
        store.append({"run": "second", "padding": "x" * 10_000})
    with pytest.raises(DiskFull, match=r"config\.json \(No space left on device\)"):
        files.write_json(os.path.join(workdir, "config.json"), {"experiment": "x" * 10_000})
    with pytest.raises(DiskFull, match=r"final\.weights\.h5 \(0\.0 MiB free, under the 64 MiB"):
        with files.atomic_path(os.path.join(workdir, "final.weights.h5")):
            pytest.fail("the HDF5 writer must not start")
    after = snapshot(workdir)
    del after["filler"]
    assert after == before


# Keras weights larger than the room the HDF5 pre-check asks for (64 MiB, nothing beside),
# on a 72 MiB tmpfs: h5py meets the full disk while it writes. In a subprocess, because the
# h5py file it leaves open crashed the interpreter at exit (when its close, which writes,
# found the disk still full).
HDF5_FILLS_THE_DISK = textwrap.dedent("""
    import json, os, sys
    import keras
    from kerastransfer.errors import DiskFull
    from kerastransfer.workdir import files
    path = sys.argv[1]
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(2_000_000)])  # 88 MB
    stat = os.statvfs(path)
    free_before = stat.f_bavail * stat.f_frsize
    try:
        with files.atomic_path(path) as tmp:
            model.save_weights(tmp)
        outcome = "written"
    except DiskFull as error:
        outcome = str(error)
    stat = os.statvfs(path)
    print(json.dumps({"outcome": outcome, "freed": stat.f_bavail * stat.f_frsize - free_before}))
    """)


def test_weights_that_fill_the_disk_inside_h5py_fail_whole_with_the_room_given_back(small_disk):
    """DiskFull naming the target, a clean exit without a traceback, the previous weights
    whole and no temporary file left."""
    subprocess.run(
        ["mount", "-o", "remount,size=72m", str(small_disk)], check=True, capture_output=True
    )
    path = str(small_disk / "run" / "final.weights.h5")
    files.write_bytes(path, b"the previous weights")
    before = snapshot(str(small_disk))
    done = subprocess.run(
        [sys.executable, "-c", HDF5_FILLS_THE_DISK, path],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert own_lines(done.stderr) == [], done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["outcome"] == (
        f"no room to write {path} (No space left on device); every file written before is "
        "whole: free space on that file system (or raise its quota or file size limit) and "
        "run the same command again to resume"
    )
    assert abs(result["freed"]) < 1 << 20  # the torn file's room is back, though h5py holds it
    assert snapshot(str(small_disk)) == before


def test_an_hdf5_error_naming_no_room_in_its_message_is_disk_full():
    """h5py raises a write that fails while a file closes as a RuntimeError whose message
    alone carries the errno; other errors pass through as they are."""
    closing = RuntimeError(
        "Disable slist on flush dest failure failed (file write failed: time = ..., filename"
        " = '/w/.final.abc.tmp.weights.h5', file descriptor = 3, errno = 28, error message ="
        " 'No space left on device', buf = 0x1, total write size = 2048)"
    )
    with pytest.raises(DiskFull, match=r"final\.weights\.h5 \(No space left on device\)"):
        with files.no_room_is_disk_full("/w/final.weights.h5"):
            raise closing
    other = RuntimeError("Unable to synchronously open object (errno = 2, not found)")
    with pytest.raises(RuntimeError, match="errno = 2"):
        with files.no_room_is_disk_full("/w/final.weights.h5"):
            raise other


# A file size limit (RLIMIT_FSIZE) instead of a full disk, in a subprocess: it needs no
# mount, so it runs everywhere. The limit is 4 KiB; the files start under it.
SIZE_LIMITED = textwrap.dedent("""
    import json, os, resource, signal, sys
    from kerastransfer.errors import DiskFull
    from kerastransfer.workdir import files
    from kerastransfer.workdir.results import ResultStore
    workdir = sys.argv[1]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
    writes = {
        "append": lambda: ResultStore(workdir).append({"run": "x" * 5000}),
        "rewrite": lambda: files.write_json(f"{workdir}/config.json", {"big": "y" * 5000}),
    }
    outcomes = {}
    for name, write in writes.items():
        try:
            write()
            outcomes[name] = "written"
        except DiskFull as error:
            outcomes[name] = str(error)
    print(json.dumps(outcomes))
    """)


def test_file_size_limit_leaves_results_and_files_as_they_were(tmp_path):
    workdir = str(tmp_path)
    store = ResultStore(workdir)
    for run in range(3):
        store.append({"run": f"run{run}", "history": list(range(200))})
    files.write_json(os.path.join(workdir, "config.json"), {"experiment": {}})
    before = snapshot(workdir)
    done = subprocess.run(
        [sys.executable, "-c", SIZE_LIMITED, workdir],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout)
    reason = (
        "(File too large); every file written before is whole: free space on that file "
        "system (or raise its quota or file size limit) and run the same command again to resume"
    )
    assert outcomes == {
        "append": f"no room to write {store.path} {reason}",
        "rewrite": f"no room to write {workdir}/config.json {reason}",
    }
    assert snapshot(workdir) == before
