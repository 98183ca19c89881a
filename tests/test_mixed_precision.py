"""--mixed_precision: 16-bit compute with float32 variables and a float32 softmax head,
run for real on the CPU with bfloat16."""

import json
import os

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.cli import SMOKE, run_cli
from helpers.records import records as read_records
from kerastransfer import config, models
from kerastransfer.training import strategies
from kerastransfer.training.strategies import set_precision


def test_mixed_bfloat16_computes_in_16_bits_with_a_float32_head():
    try:
        set_precision("mixed_bfloat16")
        model = models.build(
            "caffenet_small", num_classes=5, input_shape=(28, 28, 1), widths=(8, 8, 8, 8, 8, 16, 16)
        )
        conv1 = model.get_layer("conv1")
        assert (conv1.compute_dtype, conv1.kernel.dtype) == ("bfloat16", "float32")
        assert model.get_layer("conv5").compute_dtype == "bfloat16"
        for name in ("fc6", "drop6", "fc7", "drop7", "fc8"):  # fully connected: float32
            assert model.get_layer(name).compute_dtype == "float32", name
        output = model(np.zeros((2, 28, 28, 1), np.float32))
        assert output.dtype == "float32"
    finally:
        set_precision("none")
    assert keras.config.dtype_policy().name == "float32"
    float32_model = models.build("caffenet_small", num_classes=5, input_shape=(28, 28, 1))
    assert {layer.compute_dtype for layer in float32_model.layers[1:]} == {"float32"}


def test_auto_means_bfloat16_only_on_a_cpu_kind_that_passed_the_precision_test(monkeypatch):
    assert not tf.config.list_physical_devices("GPU")  # this machine computes on its CPU
    with open("/proc/cpuinfo") as f:
        flags = {word for line in f if line.startswith("flags") for word in line.split()}
    kind = next((flag for flag in ("amx_bf16", "avx512_bf16") if flag in flags), None)
    assert strategies.cpu_bfloat16_kind() == kind
    assert strategies.cpu_has_bfloat16() == (kind is not None)
    # as measured: bfloat16 failed on AVX512_BF16 (AMD EPYC), AMX has had no paired test
    assert strategies.BFLOAT16_VERDICTS["avx512_bf16"]["passed"] is False
    assert strategies.BFLOAT16_VERDICTS["amx_bf16"]["passed"] is None
    passed = kind is not None and strategies.BFLOAT16_VERDICTS[kind]["passed"]
    policy, why = strategies.auto_precision()
    assert strategies.resolve_precision("auto") == policy
    assert policy == ("mixed_bfloat16" if passed else "none")
    assert why.startswith(f"{'mixed_bfloat16' if passed else 'float32'} (")
    if kind == "avx512_bf16":
        assert (
            why == "float32 (mixed_bfloat16 failed the precision test on AVX512_BF16 CPUs: "
            "BENCHMARKS.md)"
        )
    if kind is not None:  # the declared verdict is the only switch: a pass makes auto bfloat16
        monkeypatch.setitem(strategies.BFLOAT16_VERDICTS, kind, {"passed": True, "measured": ""})
        assert strategies.resolve_precision("auto") == "mixed_bfloat16"
    for policy in ("none", "mixed_bfloat16", "mixed_float16"):
        assert strategies.resolve_precision(policy) == policy


@pytest.mark.e2e
def test_a_smoke_grid_under_mixed_bfloat16_trains_ok(tmp_path):
    done = run_cli(
        f"--flagfile={SMOKE}",
        f"--workdir={tmp_path}",
        "--mode=train",
        "--mixed_precision=mixed_bfloat16",
        "--layers=5",
        "--treatments=transfer",
        "--epochs=1",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    records = read_records(tmp_path)
    assert [r["treatment"] for r in records] == ["base", "base", "transfer"]
    for record in records:
        assert record["status"] == "ok" and record["dtype_policy"] == "mixed_bfloat16"
        assert 0 <= record["test_accuracy"] <= 1 and np.isfinite(record["best_k"])
        dtypes = set()

        def add_dtype(name, obj, dtypes=dtypes):
            if isinstance(obj, h5py.Dataset):
                dtypes.add(str(obj.dtype))

        with h5py.File(os.path.join(tmp_path, record["weights"])) as weights:
            weights.visititems(add_dtype)
        assert dtypes <= {"float32", "int64"}  # variables stay float32 (int64: counters)
    assert records[-1]["cached_prefix"]  # the frozen prefix's bfloat16 outputs were cached
    stored = config.Experiment.from_json(json.load(open(tmp_path / "config.json"))["experiment"])
    assert stored.scale_out.mixed_precision == "mixed_bfloat16"


@pytest.mark.e2e
def test_auto_is_stored_as_the_policy_it_stood_for_and_the_workdir_refuses_another(tmp_path):
    policy, why = strategies.auto_precision()
    grid = (f"--flagfile={SMOKE}", f"--workdir={tmp_path}", "--mode=train", "--epochs=1")
    grid += ("--layers=5", "--treatments=transfer")
    done = run_cli(*grid, "--mixed_precision=auto")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"--mixed_precision=auto: {why}" in done.stdout.splitlines()
    stored = json.load(open(tmp_path / "config.json"))["experiment"]
    assert config.Experiment.from_json(stored).scale_out.mixed_precision == policy
    assert stored["scale_out"]["mixed_precision"] == policy  # never "auto"
    keras_policy = "float32" if policy == "none" else policy
    assert {r["dtype_policy"] for r in read_records(tmp_path)} == {keras_policy}
    results = (tmp_path / "results.jsonl").read_bytes()
    other = "mixed_bfloat16" if policy == "none" else "none"
    refused = run_cli(*grid, f"--mixed_precision={other}")
    assert refused.returncode == 2
    assert f"--mixed_precision {policy!r} -> {other!r}" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert (tmp_path / "results.jsonl").read_bytes() == results


@pytest.mark.e2e
def test_mixed_float16_refuses_the_bias_multiplier_its_loss_scaling_would_drop(tmp_path):
    done = run_cli(
        f"--flagfile={SMOKE}",
        f"--workdir={tmp_path}",
        "--mixed_precision=mixed_float16",
        "--bias_lr_multiplier=2",
    )
    assert done.returncode == 2 and "--bias_lr_multiplier=2.0" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not os.listdir(tmp_path)
