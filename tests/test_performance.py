"""Performance machinery: compiled models and traced evaluations reused between runs,
batches gathered from memory change no result, and the benchmark's FLOP count follows its
documented formula."""

import keras
import numpy as np

from helpers.cli import SMOKE
from helpers.studies import WIDTHS, tiny_study
from kerastransfer import data, flops, models, surgery, training
from tools.bench.by_hand import grid_by_hand
from tools.bench.experiment import load_experiment


def study(workdir):
    """Smoke-sized bases with dropout on, trained for one epoch."""
    return tiny_study(workdir, layers=(1,), treatments=("transfer",), dropout=0.5)


def trained_weights(study, record):
    return [v.numpy() for v in study.trained_network(record).weights]


def test_a_run_on_a_reused_compiled_model_ends_as_on_its_own(tmp_path):
    alone = study(tmp_path / "alone")
    base_b = alone.runs[1]
    assert base_b.run == "random0/base/B/seed0"
    own = alone.train_run(base_b, None)
    after = study(tmp_path / "after")
    first = after.train_run(after.runs[0], None)  # base A: same structure and solver
    traced = after.compiled.traced
    assert traced == 1
    second = after.train_run(base_b, None)
    assert after.compiled.traced == traced  # B trained on A's compiled model: no new trace
    assert own["val_history"] == second["val_history"]
    for ours, theirs in zip(trained_weights(after, second), trained_weights(alone, own)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert first["weights_sha256"] != second["weights_sha256"]


def test_twin_gets_the_new_state_and_a_fresh_optimizer():
    pool = training.CompiledModels()
    solver = training.Solver(0.1, 0.9, 4, 2)
    x, y = np.random.rand(64, 28, 28, 1).astype("float32"), np.arange(64) % 5
    first = models.build("caffenet_small", num_classes=5, input_shape=(28, 28, 1), widths=WIDTHS)
    training.compile_model(first, solver)
    assert pool.twin(first) is first
    first.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert int(first.optimizer.iterations) == 4
    second = models.build("caffenet_small", num_classes=5, input_shape=(28, 28, 1), widths=WIDTHS)
    training.compile_model(second, solver)
    twin = pool.twin(second)
    assert twin is first and int(twin.optimizer.iterations) == 0
    assert pool.traced == 1
    assert all(not np.any(v.numpy()) for v in twin.optimizer.variables)
    for mine, theirs in zip(twin.variables, second.variables):  # weights and dropout seeds
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    frozen = surgery.transfer(second, 3, "frozen")  # other trainable flags: another model
    training.compile_model(frozen, solver)
    assert pool.twin(frozen) is frozen and pool.traced == 2


def test_the_whole_network_stays_traced_while_frozen_runs_bring_a_suffix_per_n():
    """The grid's order at each n: BnB (frozen), BnB+ (the whole network), AnB (frozen, the
    same structure as BnB), then the next n; the whole network's twin must survive the next
    n's new structure, or every n's first fine-tuned run retraces it."""
    pool = training.CompiledModels()
    solver = training.Solver(0.1, 0.9, 4, 2)

    def compiled(model):
        training.compile_model(model, solver)
        return model

    def whole():
        return compiled(
            models.build("caffenet_small", num_classes=5, input_shape=(28, 28, 1), widths=WIDTHS)
        )

    first = whole()
    assert pool.twin(first) is first
    for n in (3, 5):
        frozen = compiled(surgery.transfer(whole(), n, "frozen"))
        assert pool.twin(frozen) is frozen  # BnB: a new structure, traced
        assert pool.twin(whole()) is first  # BnB+: the whole network, still kept
        assert pool.twin(compiled(surgery.transfer(whole(), n, "frozen"))) is frozen  # AnB
    assert pool.traced == 3


def test_evaluator_equals_keras_evaluate_also_for_a_model_it_reuses():
    x, y = np.random.RandomState(0).rand(300, 28, 28, 1).astype("float32"), np.arange(300) % 5
    evaluator = training.Evaluator()
    for seed in (1, 2):  # the second model of the same structure runs on the first's trace
        keras.utils.set_random_seed(seed)
        model = models.build(
            "caffenet_small", num_classes=5, input_shape=(28, 28, 1), widths=WIDTHS
        )
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        loss, accuracy = model.evaluate(x, y, batch_size=128, verbose=0)
        # 300 = 2 x 128 + 44: the last, smaller batch counts by its own size
        ours = evaluator(model, data.ArrayBatches(x, y, 128))
        assert ours[0] == round(accuracy * 300) / 300  # Keras's is the float32 of the same
        assert abs(ours[0] - accuracy) < 1e-7
        # Keras adds the weight-decay penalty to its loss; the evaluator reports data loss
        penalty = float(sum(model.losses))
        assert abs(ours[1] + penalty - loss) < 1e-5, (ours, loss, penalty)
    assert evaluator.traced == 1


def test_gathered_batches_come_in_make_datasets_order():
    images = np.random.RandomState(0).randint(0, 256, (70, 28, 28, 1)).astype("uint8")
    labels = np.arange(70) % 7
    prep = data.Preprocessing(image_size=(28, 28), channels=1)
    ours = data.gathered_batches(images, labels, 16, shuffle_seed=3, transform=prep.eval_tf)
    theirs = data.make_dataset(images, labels, prep, batch_size=16, training=True, seed=3)
    for (x1, y1), (x2, y2) in zip(ours.repeat(2), theirs.repeat(2), strict=True):
        np.testing.assert_array_equal(x1.numpy(), x2.numpy())
        np.testing.assert_array_equal(y1.numpy(), y2.numpy())


def test_training_flops_follow_the_formula():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, name="fc")(x)
    model = keras.Model(inputs, outputs)
    conv = 2 * 8 * 8 * 3 * 3 * 2 * 4
    fc = 2 * (8 * 8 * 4) * 3
    assert flops.forward_flops(model) == conv + fc
    # Forward, weight gradients of both, the input gradient of fc only (conv is lowest).
    assert flops.training_flops(model) == 2 * (conv + fc) + fc
    model.get_layer("conv").trainable = False
    assert flops.training_flops(model) == conv + 2 * fc
    assert flops.training_flops(model, after=model.get_layer("conv")) == 2 * fc


def test_benchmark_trains_the_studys_networks_by_hand(tmp_path):
    """Row 8's baseline trains the networks the study plans for its first split, A->B."""
    experiment = load_experiment(SMOKE, str(tmp_path))
    found = grid_by_hand(SMOKE, str(tmp_path))
    assert found["networks"] == 2 + len(experiment.grid.layers) * len(experiment.treatments) == 17
    assert set(found["mean_test_accuracy"]) == {"base", *experiment.treatments}
    assert all(0 < accuracy <= 1 for accuracy in found["mean_test_accuracy"].values())
