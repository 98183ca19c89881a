"""The benchmark: how fast kerastransfer trains, against plain Keras, PyTorch and the machine's
own limit. Measuring writes a JSON; `report` renders BENCHMARKS.md from that JSON alone.

Rows (all but rows 7 and 8 measured in one process, on the same model and data, so the ratios
hold on a noisy machine), by module:
  machine   1. the machine's float32 peak: a large TensorFlow matmul, GFLOP/s (best of
               several); 2. training FLOPs per image of the default model, from its layer
               shapes (`kerastransfer.flops`); the load of other processes; a child's wall
               time and peak memory;
  trainers  3. plain `model.fit` on the half's numpy arrays, batch 128, default Keras
               settings; 4. the same model trained with PyTorch on the CPU (skipped with a
               note without torch); 5. kerastransfer's training path (`training.train` on the
               study's data and solver), and its ratios to rows 3 and 4; 5b: the same with the
               study's validation every `eval_every` steps; the levers (row 5b changed one way
               each);
  frozen    6. AnB runs at n = 3, 5, 7 (`Study.train_run`), with and without frozen-prefix
               caching; the cached images/s pays for computing the features (block by block,
               as the study);
  study     7. the whole default study in a subprocess: wall time, its floor (the sum over
               runs of training FLOPs / row 1), their ratio, and the child's peak resident
               memory; 7b: (on a CPU with bfloat16 instructions) the same study in
               mixed_bfloat16, and the precision test of its networks against row 7's
               (docs/statistics.md, "Precision");
  by_hand   8. the study's first split (one seed, A->B) through kerastransfer in a
               subprocess, analysis and export included, then the same networks trained by
               hand in a subprocess (`python -m tools.bench.by_hand`: the loop a user writes
               with `set_weights`, `trainable` and `model.fit`), and the ratio of their wall
               times;
  suite     the own-model study's advice on a suite of target tasks made from Fashion-MNIST's
            half B (input-level shifts, new classes, few images) and scikit-learn's digits, all
            from one source model trained on half A: the regret of the recommendation, of
            --prune=2, of each estimator's pick and of rules that read no data, with their
            wall times (each command a subprocess).
Rows 3-5 time `steps` training steps and one pass over the validation images, after a warm-up
call (tracing excluded), repeated `repeats` times in turn; each keeps its best repetition (the
least disturbed by other load). `experiment` builds what every row trains; `names` holds the
trainers' names, the JSON keys that measuring and rendering share; `__main__` is the command
line.

May import: kerastransfer and each other, except that `report` and `names` import no
measuring module: report takes only `names` of this package, and of kerastransfer what the
on-paper arithmetic needs and `workdir.files` to write.
"""

import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any module here loads TensorFlow
