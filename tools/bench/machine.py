"""Rows 1-2's machine: the CPU, the load of other processes, the float32 matmul peak, the
installed PyTorch, and the wall time and peak memory of a child (rows 7 and 8)."""

import contextlib
import os
import platform
import subprocess
import tempfile
import time

from tools.bench import REPO


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (platform's guess elsewhere)."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def other_load(seconds=1.0):
    """Load averages and the processes other than this benchmark (and its children) that
    used over 5% of a core during `seconds` (from /proc, sampled twice)."""
    mine = {os.getpid()}

    def ticks():
        found = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                found[int(pid)] = (int(fields[1]), int(fields[11]) + int(fields[12]), command)
        return found

    before = ticks()
    time.sleep(seconds)
    after = ticks()
    hz = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (ppid, used, command) in after.items():
        if pid in mine or ppid in mine or pid not in before or not command:
            continue
        share = (used - before[pid][1]) / hz / seconds * 100
        if share >= 5:
            busy.append({"cpu_percent": round(share), "command": command[:110]})
    busy.sort(key=lambda p: -p["cpu_percent"])
    return {
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "busy": busy[:6],
        "method": f"CPU over {seconds:g} s",
    }


def peak_gflops(size=2048, repeats=20, seconds=0.25):
    """Float32 matmul throughput in GFLOP/s (2 * size**3 per product), best of `repeats`
    short bursts: on a shared machine the best burst is the one least disturbed."""
    import tensorflow as tf  # noqa: PLC0415

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    product = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    product(a, b).numpy()
    start = time.perf_counter()
    product(a, b).numpy()
    count = max(1, int(seconds / max(time.perf_counter() - start, 1e-6)))
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(count):
            product(a, b).numpy()
        best = max(best, count * 2 * size**3 / (time.perf_counter() - start))
    return best / 1e9


def timed_subprocess(command, log):
    """Runs `command` from the repository; (wall seconds, its stdout, its peak resident
    memory in bytes, sampled every 0.5 s). Raises on failure."""
    log(f"  {' '.join(command)}")
    peak = 0
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=err, text=True)
        while child.poll() is None:
            peak = max(peak, memory_high_water(child.pid))
            time.sleep(0.5)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        what = " ".join(command[1:3])
        raise RuntimeError(f"{what} failed ({child.returncode}):\n{stderr[-3000:]}")
    return wall, stdout, peak


def memory_high_water(pid):
    """Peak resident memory (bytes) of process `pid` since its exec (VmHWM), 0 once gone.

    Not the rusage of wait4 or RUSAGE_CHILDREN: a child started by fork or vfork carries
    this process's own high-water mark through its exec, so a study started from the
    benchmark would report the benchmark's peak whenever that is higher."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return 0


def torch_version():
    """The installed PyTorch's version, None without it."""
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return None
    return torch.__version__
