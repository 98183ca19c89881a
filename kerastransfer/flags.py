"""Every command-line flag of `python -m kerastransfer.run`, defined in this one place.

Each flag is the field of the same name in config.py, which holds its default.

Flagfiles in configs/ set them; `--flagfile` may be given several times (later files win).
"""

from absl import flags

from kerastransfer import treatments
from kerastransfer.config import DESIGNS, DIRECTIONS, default


def _listed(name):
    """A list flag's default as absl wants it: strings."""
    return [str(value) for value in default(name)]


# Where the run happens.
flags.DEFINE_string(
    "workdir",
    default("workdir"),
    "Directory for results, weights, TensorBoard logs, "
    "analysis, report and export. Re-running resumes it.",
)
flags.DEFINE_enum(
    "mode",
    default("mode"),
    ["all", "train", "analyze", "export", "tune", "score"],
    "all = train grid, score, analyze, export; or one stage on an existing workdir "
    "(score: transferability estimators on every cut point, no training).",
)
flags.DEFINE_bool(
    "overwrite",
    default("overwrite"),
    "Start the workdir over when its config changed "
    "(results.jsonl is kept as a timestamped backup).",
)
flags.DEFINE_bool(
    "verbose", default("verbose"), "Keras progress bar inside each run (terminals only)."
)

# Data.
flags.DEFINE_string(
    "dataset",
    default("dataset"),
    "fashion_mnist (local Debian files), "
    "tfds:NAME (any TFDS image classification dataset), imagenet2012, "
    "or image_folder (with --image_dir).",
)
flags.DEFINE_string(
    "manual_dir",
    default("manual_dir"),
    "TFDS manual dir: the Fashion-MNIST IDX files "
    "(default /usr/share/datasets/fashion-mnist) or the ImageNet tars.",
)
flags.DEFINE_string(
    "data_dir", default("data_dir"), "TFDS data dir where prepared datasets are cached."
)
flags.DEFINE_string(
    "image_dir", default("image_dir"), "For --dataset=image_folder: one folder per class."
)
flags.DEFINE_list(
    "splits",
    _listed("splits"),
    "Class splits: random:SEED, dissimilar, "
    "file:PATH (A's class ids; B the complement), file:PATH_A+PATH_B, or all "
    "(every class is the target: the paper's random-features networks).",
)
flags.DEFINE_float(
    "validation_fraction",
    default("validation_fraction"),
    "Share of each class's training examples "
    "held out for validation (the best-k metric and model selection).",
)
flags.DEFINE_integer(
    "examples_per_class",
    default("examples_per_class"),
    "Reduced-volume study: keep the first k training examples of each class (0 = all).",
)
flags.DEFINE_integer(
    "max_examples_per_class",
    default("max_examples_per_class"),
    "Cap train/validation/test examples per class (0 = no cap); for smoke runs.",
)

# Networks.
flags.DEFINE_string(
    "arch",
    default("arch"),
    "caffenet, caffenet_small, or a keras.applications backbone: resnet50/101/152(_v2), "
    "mobilenet_v2, mobilenet_v3_small/large, efficientnet_b0..b7, efficientnet_v2_b0..b3/s/m/l, "
    "convnext_tiny/small/base/large/xlarge, densenet121/169/201.",
)
flags.DEFINE_list(
    "widths",
    _listed("widths"),
    "caffenet_small: conv1..conv5 filters, fc6, fc7 units (7 ints; empty = defaults).",
)
flags.DEFINE_integer(
    "image_size",
    default("image_size"),
    "Model input height and width (0 = the dataset's own size; caffenet uses 227).",
)
flags.DEFINE_float("dropout", default("dropout"), "Dropout after fc6 and fc7.")
flags.DEFINE_list("layers", _listed("layers"), "Values of n: transfer the first n blocks.")
flags.DEFINE_list(
    "treatments",
    _listed("treatments"),
    "Which transferred networks to train: " + ", ".join(treatments.NAMES) + " (base_long: "
    "the compute-matched base, the base trained on for as many more steps as a transferred "
    "network trains).",
)
flags.DEFINE_enum(
    "design",
    default("design"),
    list(DESIGNS),
    "Which cells each base network (split x target half x seed) trains: grid = every "
    "treatment at every n of --layers; findings = only the cells the five findings read "
    "(kerastransfer/designs.py), plus the whole grid for the first base network (Figure 2).",
)
flags.DEFINE_enum(
    "directions",
    default("directions"),
    list(DIRECTIONS),
    "Which way the grid transfers: AB = every network targets half B (AnB "
    "copies base A); BA = every network targets half A (BnA copies base B); "
    "both = the paper's design (both ways, pooled in the analysis).",
)
flags.DEFINE_list(
    "seeds", _listed("seeds"), "Initialization seeds; every run is repeated per seed."
)

# Solver (the paper's, scaled by these).
flags.DEFINE_float(
    "epochs",
    default("epochs"),
    "Training length of every network, in epochs of its half's training set.",
)
flags.DEFINE_integer(
    "train_steps", default("train_steps"), "Training length in steps; overrides --epochs."
)
flags.DEFINE_integer(
    "batch_size", default("batch_size"), "Global batch size (split across replicas)."
)
flags.DEFINE_float(
    "learning_rate", default("learning_rate"), "Initial learning rate for the global batch."
)
flags.DEFINE_float("momentum", default("momentum"), "SGD momentum.")
flags.DEFINE_float("weight_decay", default("weight_decay"), "Caffe-style weight decay on kernels.")
flags.DEFINE_integer(
    "lr_decay_steps",
    default("lr_decay_steps"),
    "Divide the learning rate by 10 every this many "
    "steps (0 = the paper's ratio: every 100/450 of training).",
)
flags.DEFINE_float(
    "bias_lr_multiplier",
    default("bias_lr_multiplier"),
    "Learning-rate multiplier for biases (Caffe used 2).",
)
flags.DEFINE_integer(
    "eval_every",
    default("eval_every"),
    "Evaluate validation accuracy every this many steps (0 = 8 evaluations per run).",
)
flags.DEFINE_integer(
    "best_k",
    default("best_k"),
    "The paper's metric: mean of the k best validation evaluations (paper: 10).",
)
flags.DEFINE_enum(
    "strategy",
    default("strategy"),
    ["auto", "one_device", "mirrored", "multi_worker"],
    "tf.distribute strategy; auto = mirrored when several GPUs are visible; "
    "multi_worker = MultiWorkerMirroredStrategy over the machines in TF_CONFIG.",
)
flags.DEFINE_integer("seed_offset", default("seed_offset"), "Added to every initialization seed.")
flags.DEFINE_bool(
    "cache_frozen", default("cache_frozen"), "Train frozen runs on cached prefix outputs."
)
flags.DEFINE_integer(
    "cache_budget_mb",
    default("cache_budget_mb"),
    "Memory for cached frozen-prefix features; "
    "beyond it they go to a tf.data file cache in the workdir.",
)

# Analysis and export.
flags.DEFINE_string(
    "results",
    default("results"),
    "For --mode=analyze: a CSV in the paper's columns instead of the workdir's results.jsonl.",
)
flags.DEFINE_enum(
    "reference",
    default("reference"),
    ["none", "yosinski2014"],
    "Overlay the paper's numbers on the figures.",
)
flags.DEFINE_string(
    "export_run", default("export_run"), "Export this run id instead of the best one."
)
flags.DEFINE_string(
    "export_dir", default("export_dir"), "Export base directory (default workdir/export)."
)
flags.DEFINE_list(
    "export_treatments",
    _listed("export_treatments"),
    "Treatments the best exported model is chosen from.",
)
flags.DEFINE_string("model_name", default("model_name"), "Model name in the TF-Serving layout.")
flags.DEFINE_integer(
    "export_max_image_pixels",
    default("export_max_image_pixels"),
    "Largest image (width x height) the exported predict_image_bytes signature decodes; "
    "larger files are refused from their header. Recorded in metadata.json.",
)
flags.DEFINE_integer(
    "export_max_batch",
    default("export_max_batch"),
    "Most images one request to the exported model may carry; also max_batch_size in the "
    "export's batching_parameters.txt.",
)

# Transferability estimators (--mode=score; --mode=all scores before it analyzes).
flags.DEFINE_list(
    "estimators",
    _listed("estimators"),
    "Estimators that score every cut point without training: logme, hscore, transrate, "
    "linear_probe, knn, leep (the source head's probabilities). Empty: --mode=all scores "
    "nothing.",
)
flags.DEFINE_integer(
    "score_examples",
    default("score_examples"),
    "Target training images the estimators see (drawn once with seed 0).",
)
flags.DEFINE_enum(
    "score_reduction",
    default("score_reduction"),
    ["gap", "pca"],
    "How a cut point's feature maps become one vector per image: pca = the flattened maps "
    "on their first 64 principal components; gap = the mean of each channel over the "
    "spatial positions (cheaper, but on the default study it lost the ranking: README).",
)
flags.DEFINE_integer(
    "prune",
    default("prune"),
    "Own-model study: score every n of --layers first, then train only the K best-scoring "
    "cut points (frozen and fine-tuned, all seeds) and the scratch baseline. 0 = train all.",
)
flags.DEFINE_string(
    "prune_estimator", default("prune_estimator"), "The estimator whose ranking --prune follows."
)

# Transfer your own model to your own images.
flags.DEFINE_string(
    "source_model",
    default("source_model"),
    "A trained functional Keras model (.keras), or keras_hub:PATH for a keras-hub preset "
    "directory (the hub extra), to transfer from; turns the study into: for each n, frozen "
    "and fine-tuned transfer to --dataset/--image_dir, plus a from-scratch baseline.",
)
flags.DEFINE_string(
    "source_weights",
    default("source_weights"),
    "With --arch=<a keras.applications backbone, e.g. resnet50>: a local weights file of "
    "the backbone without its top, to transfer from (same study as --source_model).",
)
flags.DEFINE_list(
    "cut_layers",
    _listed("cut_layers"),
    "Layer names that end blocks 1, 2, ... of the source model (default: the ends of its "
    "stages, or its transformer blocks; one block per weight layer below the head for a "
    "plain chain of layers).",
)
flags.DEFINE_integer(
    "cut_every",
    default("cut_every"),
    "Own-model study: keep every K-th of the source model's default cut points (e.g. 3: a "
    "12-block ViT's blocks 3, 6, 9, 12); the last is always kept. 1 keeps them all.",
)

# Reliability: what a failed run or a damaged workdir does, and reproducible runs.
flags.DEFINE_enum(
    "on_failure",
    default("on_failure"),
    ["continue", "stop"],
    "When a run fails (its loss "
    "became NaN or infinite): continue with the runs that do not depend on it, "
    "or stop the grid (exit status 1).",
)
flags.DEFINE_enum(
    "on_corrupt_weights",
    default("on_corrupt_weights"),
    ["redo", "error"],
    "When a finished run's "
    "weights file is missing, truncated or fails its checksum: train the run "
    "again, or stop with an error naming the file.",
)
flags.DEFINE_bool(
    "deterministic",
    default("deterministic"),
    "TensorFlow op determinism and fixed seeds: the same "
    "command on the same machine gives the same metrics (slower on GPUs).",
)

# Hyperparameter tuning (--mode=tune, kerastransfer/tuning/).
flags.DEFINE_enum(
    "tuner",
    default("tuner"),
    ["bayesian", "hyperband"],
    "keras-tuner search of "
    "--mode=tune: Bayesian optimization, or Hyperband (training length is its "
    "budget).",
)
flags.DEFINE_integer(
    "max_trials",
    default("max_trials"),
    "--mode=tune: at most this many trials in each of the "
    "two searches (base network, then AnB+ fine-tuning).",
)
flags.DEFINE_integer(
    "tune_seconds",
    default("tune_seconds"),
    "--mode=tune: wall-clock budget of each search in "
    "seconds; no new trial starts once it is spent (0 = no limit).",
)
flags.DEFINE_integer(
    "tune_n",
    default("tune_n"),
    "--mode=tune: the n of the AnB+ fine-tuning search (0 = the middle block of the network).",
)
flags.DEFINE_float(
    "fine_tune_lr_scale",
    default("fine_tune_lr_scale"),
    "Fine-tuned runs (BnB+, AnB+) train with "
    "--learning_rate times this (1 = the paper: one solver for all).",
)

# Scale-out: ImageNet-sized data, several devices and machines, the grid split between
# processes (kerastransfer/study/sharding.py, docs/scale_out.md).
flags.DEFINE_enum(
    "eval_split",
    default("eval_split"),
    ["validation", "test"],
    "Data of the evaluation "
    "every --eval_every steps (the best-k metric, model selection): validation = "
    "the held-out --validation_fraction of the training images; test = the "
    "source's test split (imagenet2012: the official validation set, where the "
    "paper measured).",
)
flags.DEFINE_enum(
    "mixed_precision",
    default("mixed_precision"),
    ["none", "auto", "mixed_bfloat16", "mixed_float16"],
    "Keras mixed-precision policy: compute in 16 bits, keep variables and the "
    "softmax head in float32 (mixed_float16 adds loss scaling). auto: "
    "mixed_bfloat16 on a machine without GPUs whose kind of CPU (AMX or AVX512_BF16) "
    "passed the precision test (BENCHMARKS.md; training/strategies.py "
    "BFLOAT16_VERDICTS), else none; config.json and the records store the policy it "
    "stood for.",
)
flags.DEFINE_integer(
    "runs_in_flight",
    default("runs_in_flight"),
    "Runs trained at once in this process, each in its own thread (with the default "
    "strategy; 1 under mirrored and multi_worker). Each run ends exactly as trained alone; "
    "on a 2-core CPU two at once were no faster (BENCHMARKS.md, levers).",
)
flags.DEFINE_integer(
    "num_shards",
    default("num_shards"),
    "Split the grid's runs between this many independent "
    "processes sharing --workdir (a SLURM array, a Kubernetes Indexed Job).",
)
flags.DEFINE_integer(
    "shard_index", default("shard_index"), "Which shard this process is, 0..--num_shards-1."
)
flags.DEFINE_list(
    "runs",
    _listed("runs"),
    "Train only these run ids (e.g. random0/base/A/seed0,"
    "random0/transfer/n3/seed0); with --num_shards they are split again.",
)
flags.DEFINE_integer(
    "wait_timeout",
    default("wait_timeout"),
    "Seconds a shard waits for a base network that "
    "another process trains before it gives up (exit status 1).",
)
flags.DEFINE_integer(
    "poll_seconds", default("poll_seconds"), "How often a waiting shard rereads results.jsonl."
)

FLAGS = flags.FLAGS
