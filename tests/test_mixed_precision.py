"""--mixed_precision: 16-bit compute with float32 variables and a float32 softmax head,
run for real on the CPU with bfloat16."""

import json
import os

import h5py
import keras
import numpy as np
import pytest

from helpers.cli import SMOKE, run_cli
from helpers.records import records as read_records
from kerastransfer import config, models
from kerastransfer.training.strategies import set_precision


def test_mixed_bfloat16_computes_in_16_bits_with_a_float32_head():
    try:
        set_precision("mixed_bfloat16")
        model = models.build(
            "caffenet_small", num_classes=5, input_shape=(28, 28, 1), widths=(8, 8, 8, 8, 8, 16, 16)
        )
        conv1, fc8 = model.get_layer("conv1"), model.get_layer("fc8")
        assert (conv1.compute_dtype, conv1.kernel.dtype) == ("bfloat16", "float32")
        assert fc8.compute_dtype == "float32"
        output = model(np.zeros((2, 28, 28, 1), np.float32))
        assert output.dtype == "float32"
    finally:
        set_precision("none")
    assert keras.config.dtype_policy().name == "float32"


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
def test_mixed_float16_refuses_the_bias_multiplier_its_loss_scaling_would_drop(tmp_path):
    done = run_cli(
        f"--flagfile={SMOKE}",
        f"--workdir={tmp_path}",
        "--mixed_precision=mixed_float16",
        "--bias_lr_multiplier=2",
    )
    assert done.returncode == 2 and "--bias_lr_multiplier=2.0" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not os.listdir(tmp_path)
