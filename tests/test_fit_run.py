"""training.fit_run, the one way a run is trained (study, tuner, benchmark): what it keeps and
what it returns, for a run that trains and one whose loss diverges; and the tuner's mending of
a trial.json torn by a kill."""

import json
import os

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

from kerastransfer import training
from kerastransfer.training.loop import CHECKPOINT_METADATA
from kerastransfer.tuning import state
from kerastransfer.workdir.provenance import file_digest
from kerastransfer.workdir.results import STATUS_KEYS


def tiny_run(tmp_path, learning_rate, images):
    """fit_run on a two-class dense network for 4 steps, validating every 2."""
    keras.utils.set_random_seed(0)
    labels = np.arange(len(images)) % 2
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    solver = training.Solver(learning_rate=learning_rate, momentum=0.9, total_steps=4, eval_every=2)
    training.compile_model(model, solver)

    def train_data(skip):
        batches = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(8)
        return batches.skip(skip)

    val_data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    weights = os.path.join(tmp_path, "final.weights.h5")
    outcome = training.fit_run(
        model,
        train_data,
        val_data,
        solver=solver,
        batch_size=8,
        best_k=2,
        run_dir=str(tmp_path / "run"),
        weights_path=weights,
        tensorboard_dir=str(tmp_path / "board"),
    )
    return model, outcome, weights


def test_a_trained_run_keeps_its_weights_and_returns_every_key_a_record_needs(tmp_path):
    images = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    model, outcome, weights = tiny_run(tmp_path, 0.01, images)
    assert outcome.ok and outcome.reason is None
    assert [step for step, _ in outcome.val_history] == [2, 4]
    assert outcome.best_k == np.mean([acc for _, acc in outcome.val_history])
    assert outcome.final_val == outcome.val_history[-1][1]
    assert outcome.steps == 4 and outcome.k == 2 and outcome.resumed_from_step == 0
    assert outcome.weights_bytes == os.path.getsize(weights)
    assert outcome.weights_sha256 == file_digest(weights)
    assert not os.path.exists(tmp_path / "run" / "backup" / CHECKPOINT_METADATA)
    record = outcome.record()
    stored_by_the_study = {"test_accuracy", "weights"}  # the study's own keys
    assert set(STATUS_KEYS["ok"]) - stored_by_the_study <= set(record)
    assert record["status"] == "ok"
    json.dumps(record)  # a record is plain JSON
    reloaded = keras.models.clone_model(model)
    reloaded.load_weights(weights)
    for kept, trained in zip(reloaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, trained)


def test_a_diverged_run_keeps_nothing_and_says_why(tmp_path):
    images = np.full((32, 4), 1e30, dtype="float32")  # the loss overflows at once
    _, outcome, weights = tiny_run(tmp_path, 10.0, images)
    assert outcome.status == "failed" and "loss became" in outcome.reason
    assert outcome.record() == {"status": "failed", "reason": outcome.reason}
    assert not os.path.exists(weights)
    assert not os.path.exists(tmp_path / "run" / "backup")


def test_a_torn_trial_file_is_restored_from_its_copy_or_removed(tmp_path):
    trial = keras_tuner.engine.trial.Trial(keras_tuner.HyperParameters(), trial_id="0")
    trial.status = "RUNNING"
    copied, uncopied = tmp_path / "trial_0", tmp_path / "trial_1"
    for trial_dir in (copied, uncopied):
        trial_dir.mkdir()
        (trial_dir / "trial.json").write_text('{"trial_id": "0", "hyperpar')  # torn by a kill
    (copied / state.TRIAL_COPY).write_text(json.dumps(trial.get_state()))
    state.mend_torn_trials(str(tmp_path))
    restored = keras_tuner.engine.trial.Trial.load(str(copied / "trial.json"))
    assert restored.trial_id == "0" and restored.status == "RUNNING"
    assert not (uncopied / "trial.json").exists()
