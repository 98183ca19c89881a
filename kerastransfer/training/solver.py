"""The paper's solver: SGD with momentum and a step schedule, built from a SolverConfig."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

if TYPE_CHECKING:
    from kerastransfer.config import SolverConfig


@dataclasses.dataclass(frozen=True)
class Solver:
    """SGD with momentum and a step schedule, every network trained from step 0.

    Attributes:
        learning_rate: initial rate for the global batch.
        momentum: SGD momentum (paper: 0.9).
        total_steps: training steps (a multiple of eval_every).
        eval_every: steps between validation evaluations.
        lr_decay_steps: divide the rate by 10 every this many steps (paper: 100,000 of
            450,000; 0 here means the same 100/450 ratio of total_steps).
        bias_lr_multiplier: Caffe's 2x learning rate on biases when 2.
    """

    learning_rate: float
    momentum: float
    total_steps: int
    eval_every: int
    lr_decay_steps: int = 0
    bias_lr_multiplier: float = 1.0

    @classmethod
    def from_config(
        cls,
        config: SolverConfig,
        num_examples: int,
        *,
        fine_tuned: bool = False,
        **overrides: Any,
    ) -> Solver:
        """The solver of one run: a config.SolverConfig with some values overridden.

        Args:
            config: the experiment's solver section.
            num_examples: training images of the run's half (0 when --train_steps sizes it).
            fine_tuned: the run fine-tunes copied layers: the rate is scaled by
                fine_tune_lr_scale.
            overrides: SolverConfig fields to change (a tuning trial's values).
        """
        config = dataclasses.replace(config, **overrides)
        steps, every = plan_steps(
            num_examples, config.batch_size, config.epochs, config.train_steps, config.eval_every
        )
        rate = config.learning_rate * (config.fine_tune_lr_scale if fine_tuned else 1)
        return cls(
            rate, config.momentum, steps, every, config.lr_decay_steps, config.bias_lr_multiplier
        )

    @property
    def decay_every(self) -> int:
        return self.lr_decay_steps or max(1, round(self.total_steps * 100 / 450))

    def schedule(self) -> float | keras.optimizers.schedules.LearningRateSchedule:
        """Piecewise-constant rate: `learning_rate * 0.1 ** (step // decay_every)`."""
        boundaries = list(range(self.decay_every, self.total_steps, self.decay_every))
        values = [self.learning_rate * 0.1**i for i in range(len(boundaries) + 1)]
        if not boundaries:
            return self.learning_rate
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def plan_steps(
    num_examples: int, batch_size: int, epochs: float, train_steps: int, eval_every: int
) -> tuple[int, int]:
    """Total steps and evaluation interval: 8 evaluations per run unless told otherwise."""
    steps = train_steps or max(1, math.ceil(epochs * num_examples / batch_size))
    every = eval_every or max(1, math.ceil(steps / 8))
    every = min(every, steps)
    return math.ceil(steps / every) * every, every


class ScaledSGD(keras.optimizers.SGD):
    """SGD with per-variable rate multipliers: biases' gradients times `bias_lr_multiplier`
    (Caffe's lr_mult 2), and a variable of a layer in `layer_rates` ({layer name: multiplier},
    layer-wise decay) times that. With momentum SGD, scaling a gradient scales its rate."""

    def __init__(
        self,
        bias_lr_multiplier: float = 1.0,
        layer_rates: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bias_lr_multiplier = bias_lr_multiplier
        self.layer_rates = dict(layer_rates or {})

    def _multiplier(self, variable: keras.Variable) -> float:
        layer = variable.path.split("/")[0]
        bias = self.bias_lr_multiplier if "bias" in variable.path else 1.0
        return bias * self.layer_rates.get(layer, 1.0)

    def apply_gradients(
        self, grads_and_vars: Iterable[tuple[tf.Tensor | None, keras.Variable]]
    ) -> keras.Variable:  # the optimizer's iteration count, as Keras returns it
        scaled = []
        for gradient, variable in grads_and_vars:
            multiplier = self._multiplier(variable)
            if gradient is not None and multiplier != 1.0:
                gradient = gradient * multiplier
            scaled.append((gradient, variable))
        return super().apply_gradients(scaled)


def compile_model(
    model: keras.Model, solver: Solver, layer_rates: dict[str, float] | None = None
) -> None:
    """Compiles with the solver. Call it after setting `trainable` and inside the scope.

    `layer_rates`: {layer name: rate multiplier} (surgery.layer_decay_rates).

    A segment (`eval_every` steps) runs as one call into the graph (steps_per_execution):
    Keras's per-step Python work then happens once a segment, which halves the step time of
    the small suffixes that frozen runs train on cached features. Under a tf.distribute
    strategy Keras 3.15's multi-step loop fails to build, so there it stays one step a call.
    """
    steps_per_call = 1 if tf.distribute.has_strategy() else solver.eval_every
    if solver.bias_lr_multiplier != 1.0 or layer_rates:
        optimizer = ScaledSGD(
            solver.bias_lr_multiplier,
            layer_rates,
            learning_rate=solver.schedule(),
            momentum=solver.momentum,
        )
    else:
        optimizer = keras.optimizers.SGD(learning_rate=solver.schedule(), momentum=solver.momentum)
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_call,
    )
