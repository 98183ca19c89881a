"""BENCHMARKS.md from the JSON that `python -m tools.bench` writes: every number in it comes
from here. It reads the JSON only (and computes the on-paper arithmetic from the Keras
caffenet); no measuring module.

`render(results)` returns the whole file: the measured tables (from the results dict), the
targets, the levers, mixed precision (measured on this CPU, arithmetic for GPUs) and the
paper's study at ImageNet scale "on paper" (computed from the Keras caffenet model and the
constants below). `print_table` is the same tables for the terminal.

    python -m tools.bench --write_md=BENCHMARKS.md         # measure, then render its JSON
    python -m tools.bench.report benchmark.json BENCHMARKS.md   # re-render a JSON
"""

import argparse
import csv
import json
import os

from tools.bench import REPO, names

# The paper's solver and cost (docs/paper.md, "Solver", "Splits" and "Cost").
PAPER_STEPS, PAPER_BATCH, PAPER_DAYS_PER_NETWORK = 450_000, 256, 9.5
PAPER_EVALUATIONS, HALF_VAL_IMAGES, HALF_TRAIN_IMAGES = 450, 25_000, 645_000
# configs/imagenet_paper.flags: 4 random splits x (baseA, baseB + BnB, BnB+, AnB, AnB+ x 7).
PAPER_SPLITS, PAPER_LAYERS = 4, 7
# Achieved throughput assumed on one H100-class GPU, as in docs/scale_out.md (which says why).
GPU_ACHIEVED_TFLOPS = 40.0
# NVIDIA H100 SXM data sheet: dense tensor-core peaks and memory bandwidth.
H100_TF32_TFLOPS, H100_BF16_TFLOPS, H100_FP32_TFLOPS, H100_TBPS = 495, 989, 67, 3.35


def interval_text(interval, confidence):
    """ "90% CI [-2.94, +0.60]", or why there is none."""
    if interval["ci"] is None:
        return f"no CI ({interval['why']})"
    low, high = interval["ci"]
    return f"{confidence:.0%} CI [{low:+.2f}, {high:+.2f}]"


def precision_summary(test):
    """The precision test in a line: mean paired difference over base networks, its CI, the
    verdict."""
    overall = test["overall"]
    mean = "-" if overall["mean"] is None else f"{overall['mean']:+.2f}"
    return (
        f"mean paired difference {mean} points, {interval_text(overall, test['confidence'])} "
        f"over {overall['units']} base networks ({overall['networks']} networks): "
        f"{'passed' if test['passed'] else 'failed'}"
    )


def treatment_verdict(treatment):
    """ "accepted", or "rejected (every reason)"."""
    return "accepted" if treatment["passed"] else f"rejected ({'; '.join(treatment['reasons'])})"


def precision_sizing(test):
    """What a harmless precision needs to pass every bound with the test's power, in seeds of
    the same study."""
    level = f"{test['power']:.0%} power"
    if test["seeds_needed"] is None:
        return f"the seeds a harmless precision needs for {level} at every bound: not sized"
    return (
        f"a harmless precision passes every bound with {level} at {test['seeds_needed']} seeds "
        f"of this study (it has {test['seeds']})"
    )


def precision_lines(test):
    """The precision test in full: overall, per treatment with its verdict, findings changed
    (and whether each counts), the largest paired difference, the accepted treatments, the
    verdict with every reason it failed and the size that a harmless precision needs."""
    changed = ", ".join(
        f"{number} {c['float32']} -> {c['candidate']}" + ("" if c["counts"] else " (excused)")
        for number, c in test["findings_changed"].items()
    )
    lines = [f"precision test (row 7b - row 7, test accuracy): {precision_summary(test)}"]
    lines += [
        f"  {name}: mean {'-' if t['mean'] is None else format(t['mean'], '+.2f')}, "
        f"{interval_text(t, test['confidence'])}, {t['units']} base networks (bound "
        f"+-{t['bound']:g}): {treatment_verdict(t)}"
        for name, t in test["treatments"].items()
    ]
    lines.append(f"  findings that changed status: {changed or 'none'}")
    if test["largest"]:
        lines.append(
            f"  largest paired difference: {test['largest']['run']} "
            f"{test['largest']['points']:+.2f} points"
        )
    lines.append(f"  accepted: {', '.join(test['accepted']) or 'none'}")
    lines.append(
        "  verdict: at parity"
        if test["passed"]
        else "  verdict: not at parity: " + "; ".join(test["why"])
    )
    lines.append(f"  {precision_sizing(test)}")
    return lines


def _study_schedule_name(results):
    return next(
        name
        for name in results["trainers"]
        if name.startswith(names.KERAS_TRANSFER) and name != names.KERAS_TRANSFER
    )


def _rate(results, name):
    trainer = results["trainers"].get(name)
    return trainer["best"] if trainer else None


def targets(results):
    """The issue's targets, each with the measured value and whether it is met."""
    rows = []
    if "trainers" in results:
        ours = _rate(results, names.KERAS_TRANSFER)
        peer = _rate(results, names.TORCH_PEER)
        plain = _rate(results, names.PLAIN_KERAS)
        rows += [
            (
                "training path >= PyTorch peer (ratio >= 1.0)",
                None if peer is None else ours / peer,
                1.0,
            ),
            ("training path faster than plain model.fit (ratio > 1.0)", ours / plain, 1.0),
        ]
    if 5 in results.get("frozen", {}):
        rows += [
            (
                "frozen n=5 with caching >= 3x without (training only)",
                results["frozen"][5]["ratio_train_only"],
                3.0,
            ),
            (
                "frozen n=5 with caching >= 3x without (incl. its feature pass)",
                results["frozen"][5]["ratio"],
                3.0,
            ),
        ]
    study = results.get("study")
    if study:
        rows += [
            ("default study wall time <= 720 s", study["wall_seconds"], -720),
            (
                "base nets on random:0 >= 0.89 (mean of every base)",
                study["base_accuracy_mean"],
                0.89,
            ),
            ("default study within 1.6x of its FLOP floor", study["ratio"], -1.6),
            ("peak resident memory <= 3 GB", study["peak_rss_bytes"] / 1e9, -3.0),
        ]
    change = results.get("precision_change")
    if change:
        ci = change["test"]["overall"]["ci"]
        rows.append(
            (
                "row 7b (bfloat16) at parity with row 7 by the precision test (value: the "
                "farthest end of the 90% CI over all base networks, points)",
                None if ci is None else max(map(abs, ci)),
                -0.5,
                change["test"]["passed"],
            )
        )
    grid = results.get("by_hand")
    if grid:
        rows.append(("one split >= 2x faster than by hand (row 8)", grid["ratio"], 2.0))
    suite = results.get("suite")
    if suite:
        prune = suite["summary"]["choices"][f"--prune={suite['prune_k']}"]
        rows += [
            (
                f"--prune={suite['prune_k']}'s regret within 0.5 points of the full sweep's "
                "(suite, mean paired difference over tasks)",
                prune["minus_recommendation"]["mean"],
                -0.5,
            ),
            (
                f"--prune={suite['prune_k']} wall time <= 40% of the full sweep's on every "
                "task (suite, the largest share)",
                max(task["pruning"]["share"] for task in suite["tasks"].values()),
                -0.4,
            ),
        ]
    # A negative bound is an upper bound; a fourth item, where there is one, is the verdict.
    return [
        {
            "target": name,
            "value": value,
            "bound": abs(bound),
            "met": verdict[0]
            if verdict
            else (None if value is None else (value <= -bound if bound < 0 else value >= bound)),
        }
        for name, value, bound, *verdict in rows
    ]


def table_rows(results):
    """The table as (row, what, value, ratios) strings."""
    peak, flops = results["peak_gflops"], results["flops_per_image"]["training"]

    def of_peak(rate):
        return f"{rate * flops / 1e9 / peak:.0%} of peak"

    rows = [
        ("1", "float32 peak (2048x2048 TensorFlow matmul)", f"{peak:.0f} GFLOP/s", ""),
        (
            "2",
            "training FLOPs per image, default model",
            f"{flops / 1e6:.1f} MFLOP",
            f"forward {results['flops_per_image']['forward'] / 1e6:.1f} MFLOP",
        ),
    ]
    if "trainers" in results:
        rows += _trainer_rows(results, of_peak)
    rows += _frozen_rows(results)
    rows += _study_rows(results)
    suite = results.get("suite")
    if suite:
        mean = suite["summary"]["choices"]["recommendation"]["regret"]["mean"]
        rows.append(
            (
                "suite",
                f"the own-model study on {len(suite['tasks'])} tasks"
                + (" (quick)" if suite["quick"] else ""),
                f"{sum(sum(t['wall_seconds'].values()) for t in suite['tasks'].values()):.0f} "
                "s wall",
                f"recommendation's mean regret {mean:.2f} points",
            )
        )
    return rows


def _trainer_rows(results, of_peak):
    """Rows 3-5."""
    plain = _rate(results, names.PLAIN_KERAS)
    peer = _rate(results, names.TORCH_PEER)
    rows = [
        (
            "3",
            names.PLAIN_KERAS + " (numpy arrays, defaults)",
            f"{plain:.0f} img/s",
            of_peak(plain),
        ),
    ]
    if peer is None:
        rows.append(("4", names.TORCH_PEER, "-", results["notes"].get(names.TORCH_PEER, "")))
    else:
        rows.append(
            ("4", names.TORCH_PEER + f" {results['torch']}", f"{peer:.0f} img/s", of_peak(peer))
        )
    for row, name in (("5", names.KERAS_TRANSFER), ("5b", _study_schedule_name(results))):
        rate = _rate(results, name)
        versus = f"{rate / plain:.2f}x row 3" + (f", {rate / peer:.2f}x row 4" if peer else "")
        rows.append((row, name, f"{rate:.0f} img/s", f"{versus}; {of_peak(rate)}"))
    return rows


def _frozen_rows(results):
    """Row 6, one line per n."""
    rows = []
    for n, row in results.get("frozen", {}).items():
        rows.append(
            (
                f"6 (n={n})",
                f"AnB n={n}: uncached / cached at {row['cached']['cached_prefix']}",
                f"{row['uncached']['images_per_second']:.0f} / "
                f"{row['cached']['images_per_second']:.0f} img/s",
                f"{row['ratio']:.2f}x incl. feature pass "
                f"({row['cached']['cache_seconds']:.1f} s); "
                f"{row['ratio_train_only']:.2f}x training only",
            )
        )
    return rows


def _study_rows(results):
    """Rows 7 and 8."""
    rows = []
    study = results.get("study")
    if study:
        rows.append(
            (
                "7",
                f"default study ({study['networks']} networks, {results['flagfile']})",
                f"{study['wall_seconds']:.0f} s wall",
                f"floor {study['floor_seconds']:.0f} s, {study['ratio']:.1f}x floor; "
                f"peak RSS {study['peak_rss_bytes'] / 1e9:.2f} GB; base acc. "
                f"{study['base_accuracy_mean']:.4f}; {', '.join(study['precision'])}",
            )
        )
    bfloat16 = results.get("study_bfloat16")
    if bfloat16:
        change = results["precision_change"]
        rows.append(
            (
                "7b",
                "row 7 with --mixed_precision=mixed_bfloat16",
                f"{bfloat16['wall_seconds']:.0f} s wall",
                f"{change['speedup']:.2f}x as fast as row 7; {bfloat16['ratio']:.1f}x floor; "
                f"peak RSS {bfloat16['peak_rss_bytes'] / 1e9:.2f} GB; base acc. "
                f"{bfloat16['base_accuracy_mean']:.4f}; {', '.join(bfloat16['precision'])}; "
                f"precision test: {precision_summary(change['test'])}",
            )
        )
    longer = results.get("study_long")
    if longer:
        rows.append(
            (
                "7L",
                f"the default study 4x as long ({longer['networks']} networks, "
                f"{longer['flagfile']})",
                f"{longer['wall_seconds']:.0f} s wall",
                f"floor {longer['floor_seconds']:.0f} s, {longer['ratio']:.1f}x floor; "
                f"peak RSS {longer['peak_rss_bytes'] / 1e9:.2f} GB; base acc. "
                f"{longer['base_accuracy_mean']:.4f}; {', '.join(longer['precision'])}",
            )
        )
    grid = results.get("by_hand")
    if grid:
        rows.append(
            (
                "8",
                f"split {grid['split']} ({grid['networks']} networks): kerastransfer / "
                "the same networks by hand",
                f"{grid['package_seconds']:.0f} / {grid['by_hand_seconds']:.0f} s wall",
                f"{grid['ratio']:.2f}x as fast as by hand",
            )
        )
    return rows


def markdown_table(results):
    lines = ["| row | what | measured | ratio / note |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table_rows(results)]
    return "\n".join(lines)


def markdown_targets(results):
    lines = ["| target | measured | met |", "|---|---|---|"]
    for t in results["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.3g}"
        met = "skipped" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['target']} | {value} | {met} |")
    return "\n".join(lines)


def print_table(results, out=print):
    rows = table_rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        out("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if "precision_change" in results:
        for line in precision_lines(results["precision_change"]["test"]):
            out(line)
    for t in results["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.3g}"
        met = "skipped" if t["met"] is None else ("met" if t["met"] else "NOT met")
        out(f"target: {t['target']}: {value} ({met})")


def fmt(value, digits=3):
    return f"{value:.{digits}g}"


def on_paper():
    """The paper's grid (configs/imagenet_paper.flags) on one GPU, with and without caching.

    Returns a dict of the arithmetic; FLOPs come from the Keras caffenet at 227x227 with a
    500-class head, counted with kerastransfer.flops.
    """
    # Keras loads here only: the tables above render without it.
    from kerastransfer import flops, models, surgery  # noqa: PLC0415
    from kerastransfer.training import caching  # noqa: PLC0415

    base = models.build("caffenet", num_classes=500, input_shape=(227, 227, 3))
    forward, train = flops.forward_flops(base), flops.training_flops(base)
    images = PAPER_STEPS * PAPER_BATCH
    evaluations = PAPER_EVALUATIONS * HALF_VAL_IMAGES
    per_n = []
    for n in range(1, PAPER_LAYERS + 1):
        frozen = surgery.transfer(base, n, "frozen")
        layer = caching.cache_layer(frozen, n)
        prefix = flops.forward_flops(frozen, layer)
        uncached = images * flops.training_flops(frozen) + evaluations * forward
        cached = (
            (HALF_TRAIN_IMAGES + HALF_VAL_IMAGES) * prefix
            + images * flops.training_flops(frozen, after=layer)
            + evaluations * (forward - prefix)
        )
        step = PAPER_BATCH * flops.training_flops(frozen, after=layer)
        per_n.append(
            {
                "n": n,
                "cache_layer": layer.name,
                "uncached": uncached,
                "cached": cached,
                "step_ms": step / (GPU_ACHIEVED_TFLOPS * 1e12) * 1e3,
            }
        )
    full = images * train + evaluations * forward  # bases and fine-tuned networks
    frozen_per_split = 2  # BnB and AnB at every n
    fine_per_split = 2 + 2 * PAPER_LAYERS  # two bases, BnB+ and AnB+ at every n
    networks = PAPER_SPLITS * (2 + 4 * PAPER_LAYERS)
    without = PAPER_SPLITS * (
        fine_per_split * full + frozen_per_split * sum(r["uncached"] for r in per_n)
    )
    with_cache = PAPER_SPLITS * (
        fine_per_split * full + frozen_per_split * sum(r["cached"] for r in per_n)
    )
    seconds = lambda flops: flops / (GPU_ACHIEVED_TFLOPS * 1e12)  # noqa: E731
    with open(os.path.join(REPO, "kerastransfer", "reference", "yosinski2014_networks.csv")) as f:
        published = sum(1 for _ in csv.DictReader(f))
    return {
        "forward": forward,
        "train": train,
        "images": images,
        "networks": networks,
        "published": published,
        "full_network": full,
        "per_n": per_n,
        "without": without,
        "with_cache": with_cache,
        "hours_network": seconds(full) / 3600,
        "full_step_ms": seconds(PAPER_BATCH * train) * 1e3,
        "hours_without": seconds(without) / 3600,
        "hours_with": seconds(with_cache) / 3600,
        "paper_hours": networks * PAPER_DAYS_PER_NETWORK * 24,
    }


def render(results):
    """The text of BENCHMARKS.md."""
    paper = on_paper()
    load = results["load_before"]
    after = results.get(
        "load_after_row_8", results.get("load_after_row_7", results["load_after_rows_1_6"])
    )
    samples = [
        results[k]
        for k in ("load_before", "load_after_rows_1_6", "load_after_row_7", "load_after_row_8")
        if k in results
    ]
    commands = {p["command"]: p["cpu_percent"] for sample in samples for p in sample["busy"]}
    busy = "; ".join(f"`{command}` ({cpu:.0f}% CPU)" for command, cpu in commands.items())
    method = load.get("method", "ps: average over each process's lifetime")
    model = results["model"]
    lines = [
        "# Benchmarks",
        "",
        "How fast kerastransfer trains the default study's network on this machine, against",
        "plain Keras, PyTorch and the machine's own float32 limit. Everything below is written",
        "by `python -m tools.bench` (measurements) and `tools/bench/report.py` (this text and its",
        "arithmetic, from the JSON alone); re-run it instead of editing numbers:",
        "",
        "```bash",
        "pip install -e '.[bench]'    # PyTorch for row 4 (optional; without it row 4 is skipped)",
        "python -m tools.bench --quick                    # rows 1-6 with ratios",
        "python -m tools.bench --studies_only             # rows 1-2, 7 and 8",
        "python -m tools.bench --rows=7,7b,8              # rows 1-2 and the rows named",
        "python -m tools.bench --rows=suite [--quick]     # the task suite (about an hour)",
        "python -m tools.bench --write_md=BENCHMARKS.md   # all rows and levers; rewrites this",
        "python -m tools.bench.report benchmark.json BENCHMARKS.md   # re-renders a JSON",
        "python -m tools.bench.report a.json b.json BENCHMARKS.md    # rows of several runs",
        "```",
        "",
        f"## Latest run: {results['date']}",
        "",
        f"- command: `{results['command']}`",
        *(
            f"- rows {', '.join(run['rows'])} from `{run['command']}` ({run['date']})"
            for run in results.get("also", [])
        ),
        f"- CPU: {results['cpu']}, {results['cores']} cores; Python {results['python']}, "
        f"TensorFlow {results['tensorflow']}, Keras {results['keras']}, "
        f"PyTorch {results['torch'] or 'not installed'}",
        f"- model: {model['arch']} widths {model['widths']} on {model['input']} inputs "
        f"({model['params']:,} parameters), batch {model['batch_size']}; data: half A of "
        f"random:0 ({model['half_train_images']:,} training, {model['half_val_images']:,} "
        "validation images)",
        f"- rows 3-5: {results['steps']} steps per round, {results['repeats']} rounds in turn, "
        "best round kept (tracing excluded by a warm-up call)",
        f"- other load on the machine (other engineers' tests and studies share its cores): "
        f"load average {load['load_average']} before, {after['load_average']} after; "
        f"other processes over 5% of a core ({method}) at the start, after row 6 and after "
        f"rows 7 and 8: {busy or 'none'}",
        "",
        markdown_table(results),
        "",
        "Rows 3, 4 and 5 do the same work: the steps, then one pass over the 3,000 validation",
        "images (row 5 also writes its checkpoint and TensorBoard logs). Row 5b is row 5 with",
        "the study's schedule, a validation pass every segment (25 steps): that is what each",
        "run of the study does. Row 6 trains AnB at n = 3, 5, 7 in that order, as the study",
        "does: the cached runs continue the base's features block by block (n=3 from the",
        "images, n=5 only blocks 4-5), and their rate includes that feature pass. Row 7's floor",
        "counts training FLOPs only (frozen prefixes once per training image, as caching",
        "computes them), not evaluations.",
        "",
        *study_breakdown(results),
        "## Targets",
        "",
        markdown_targets(results),
        "",
    ]
    lines += findings_section(results)
    lines += epochs_section(results)
    lines += packing_section(results)
    lines += levers_section(results)
    lines += suite_section(results.get("suite"))
    lines += mixed_precision_section(results)
    lines += paper_section(paper)
    return "\n".join(lines) + "\n"


def _verdict(entry):
    """ "reproduced (-14.97 [-17.49, -12.45], 4)" of a finding as a study row recorded it."""
    if entry["effect"] is None:
        return entry["status"]
    ci = "" if entry["ci"] is None else f" [{entry['ci'][0]:+.2f}, {entry['ci'][1]:+.2f}]"
    return f"{entry['status']} ({entry['effect']:+.2f}{ci}, {entry['units']})"


def findings_section(results):
    """What each study row decided, finding by finding, and how far its bases had come."""
    studies = [
        (key, label)
        for key, label in (("study", "row 7 (default)"), ("study_long", "row 7L (4x as long)"))
        if results.get(key, {}).get("findings")
    ]
    if not studies:
        return []
    lines = [
        "## What the studies found",
        "",
        "Each finding's status, effect in points, 95% CI and base networks, against the "
        "comparison that decides it (the compute-matched base for findings 1 and 3 when the "
        "bases were still improving; report.md, What this study found); the comparison kept "
        "beside it below.",
        "",
        "| finding | " + " | ".join(label for _, label in studies) + " |",
        "|---|" + "---|" * len(studies),
    ]
    found = [results[key]["findings"] for key, _ in studies]
    for entries in zip(*found):
        lines.append(
            f"| {entries[0]['finding']}. {entries[0]['name']} | "
            + " | ".join(
                _verdict(f) + ("; dip " + _verdict(f["parts"][0]) if f["parts"] else "")
                for f in entries
            )
            + " |"
        )
        if any(f["beside"] for f in entries):
            lines.append(
                "| ... beside it | "
                + " | ".join(
                    f"{_verdict(f['beside'])} vs {f['beside']['comparison']}"
                    if f["beside"]
                    else "-"
                    for f in entries
                )
                + " |"
            )
    gains = []
    for key, _ in studies:
        convergence = results[key]["base_convergence"]
        longer, late = convergence["long_base"], convergence["late_gain"]
        gains.append(
            ("still improving" if convergence["improving"] else "stopped improving")
            + (f"; compute-matched base {_verdict({**longer, 'status': 'gain'})}" if longer else "")
            + (f"; last validations {late['mean']:+.2f} over the ones before" if late else "")
        )
    lines += ["| the bases | " + " | ".join(gains) + " |", ""]
    return lines


def packing_section(results):
    """Networks trained side by side in one graph against alone (row packing)."""
    packing = results.get("packing")
    if not packing:
        return []
    lines = [
        "## Packing networks into one graph",
        "",
        f"{packing['packed']} networks of one structure trained side by side in one compiled "
        "model on the same batches (each its own variables, loss and output; one graph call "
        "a step, no operator fusion) against one alone (row packing):",
        "",
        "| networks | alone, ms/step | side by side, ms/step | images/s per network |",
        "|---|---|---|---|",
    ]
    for name, found in packing["networks"].items():
        steps = {int(k): v for k, v in found["ms_per_step"].items()}
        lines.append(
            f"| {name} | {steps[1]:.2f} | {steps[packing['packed']]:.2f} | "
            f"{found['per_network_speedup']:.2f}x |"
        )
    return [*lines, ""]


def epochs_section(results):
    """The first split's bases at 1 to 16 epochs: where they stop improving."""
    table = results.get("epochs")
    if not table:
        return []
    runs = [base["run"] for base in table["bases"]]
    lines = [
        "## How long the base networks need",
        "",
        "Split random:0's base networks trained alone for each number of epochs, the rate "
        "divided by 10 at the paper's proportions (every 100/450 of the run), everything else "
        "as the default flagfile; test accuracy (row epochs).",
        "",
        "| epochs | steps | " + " | ".join(runs) + " | mean | gain over half as many |",
        "|---|---|" + "---|" * (len(runs) + 2),
    ]
    gains = {g["to"]: g["points"] for g in table["gain"]}
    for count in table["epochs"]:
        cells = [base["by_epochs"][str(count)] for base in table["bases"]]
        gain = gains.get(count)
        lines.append(
            f"| {count} | {cells[0]['steps']} | "
            + " | ".join(f"{c['test_accuracy']:.4f}" for c in cells)
            + f" | {table['mean_test'][str(count)]:.4f} | "
            + ("-" if gain is None else f"{gain:+.2f} points")
            + " |"
        )
    return [*lines, ""]


def study_breakdown(results):
    """Where row 7's wall time went, from the study's own records."""
    study = results.get("study")
    if not study:
        return []
    rest = study["wall_seconds"] - study["train_seconds"] - study["cache_seconds"]
    return [
        f"Of the study's {study['wall_seconds']:.0f} s, its {study['networks']} runs spent "
        f"{study['train_seconds']:.0f} s in `training.train` (training and the validation "
        f"pass of every segment), {study['cache_seconds']:.0f} s computing cached "
        f"features, and {rest:.0f} s went to everything else (start-up, building and "
        "loading networks, test evaluation, saving weights, analysis and export). Its "
        "base networks reached "
        + ", ".join(f"{v:.4f} ({k})" for k, v in sorted(study["base_accuracy"].items()))
        + " test accuracy on random:0.",
        "",
        *by_hand_text(results),
    ]


def by_hand_text(results):
    """What row 8 compares, with both sides' mean test accuracy per treatment."""
    grid = results.get("by_hand")
    if not grid:
        return []
    ours, theirs = grid["package_accuracy"], grid["by_hand_accuracy"]
    cells = ", ".join(
        f"{name} {ours[name]:.4f} / {theirs[name]:.4f}" for name in theirs if name in ours
    )
    return [
        f"Row 8 trains split {grid['split']}'s {grid['networks']} networks (A->B, one seed) "
        "twice, each in a subprocess from start-up to exit: through kerastransfer "
        "(`--mode=all`: a validation pass every segment for best-k, checkpoints, records, "
        f"analysis and export) and by hand ({grid['by_hand_networks']} networks: the loop a "
        "user writes from the Keras transfer-learning guide, `set_weights` on the copied "
        "blocks, `trainable = False` on the frozen ones, `fit` for the same epochs, batch "
        "and learning-rate schedule, then `evaluate` on the test images, with no "
        "validation during training). Mean test accuracy per treatment, kerastransfer / by "
        f"hand: {cells}. kerastransfer computed in {', '.join(grid['package_precision'])} "
        "(the flagfile's --mixed_precision), the hand-written grid in float32 (Keras's "
        "default).",
        "",
    ]


def _mean_ci(interval):
    """ "1.23 [95% CI -0.40, +2.86]" of an interval dict (suite.interval), "-" without a mean."""
    if interval["mean"] is None:
        return "-"
    if interval["ci"] is None:
        return f"{interval['mean']:.2f} (no CI)"
    low, high = interval["ci"]
    return f"{interval['mean']:.2f} [{low:+.2f}, {high:+.2f}]"


def _cell_name(choice):
    return f"{choice['treatment']} n={choice['n']}"


def suite_section(suite):
    """The task suite: each choice's regret per task, its mean with a 95% t-interval over
    tasks and the paired difference from the recommendation, its time; the reference cells,
    the recommendation against the best plain freeze/fine-tune cell, and what --prune cost."""
    if not suite:
        return []
    tasks = suite["tasks"]
    summary = suite["summary"]
    k = suite["prune_k"]
    sizes = suite["sizes"]
    val = {
        name: "/".join(map(str, task["examples"]["validation"])) or "?"
        for name, task in tasks.items()
    }
    lines = [
        "## Task suite: the own-model study's advice" + (" (quick)" if suite["quick"] else ""),
        "",
        "One source model (the default study's base network A of random:0 at seed 0, "
        "configs/fashion_mnist.flags' caffenet_small and solver, on "
        + (f"{sizes['source_images']:,} images a class" if sizes["source_images"] else "all")
        + f" of half A for {sizes['source_epochs']} epoch(s), test accuracy "
        f"{suite['source_test_accuracy']:.4f}) transferred "
        f"to {len(tasks)} target folders through `configs/transfer_folder.flags`"
        + (f" with `{' '.join(sizes['flags'])}`" if sizes["flags"] else "")
        + f": the full sweep, `--prune={k}` and three rules that read no data, each trained "
        "alone. A choice's regret is the points of mean test accuracy (over seeds, in the run "
        "that made it) it loses against the task's test-best cell of the full sweep; test "
        "images never choose (docs/statistics.md, the own-model recommendation). Tasks "
        "(train/ images, of which the study keeps a tenth for validation; test/ images; the "
        "validation images each choice rests on): "
        + "; ".join(
            f"{name} {task['train_images']}/{task['test_images']}, {val[name]} validation"
            for name, task in tasks.items()
        )
        + ".",
        "",
        "| choice | " + " | ".join(tasks) + " | mean regret [95% CI] | minus the "
        "recommendation's [paired 95% CI] | seconds (mean) |",
        "|---|" + "---|" * (len(tasks) + 3),
    ]
    estimator_rows = []
    for name, row in summary["choices"].items():
        per_task = " | ".join(
            f"{tasks[t]['choices'][name]['regret']:.2f}" if name in tasks[t]["choices"] else "-"
            for t in tasks
        )
        seconds = "-" if row["seconds"] is None else f"{row['seconds']:.0f}"
        if row["timed"] and row["timed"] != "wall":
            seconds += f" ({row['timed']})"
        line = (
            f"| {name} | {per_task} | {_mean_ci(row['regret'])} | "
            f"{_mean_ci(row['minus_recommendation'])} | {seconds} |"
        )
        is_recipe_pick = ":" in name and not name.endswith("best by validation")
        (estimator_rows if is_recipe_pick else lines).append(line)
    lines += [
        "",
        "Each estimator's best-scored cut for every mode (the rows above give the best of "
        "those by validation):",
        "",
        "| choice | " + " | ".join(tasks) + " | mean regret [95% CI] | minus the "
        "recommendation's [paired 95% CI] | seconds (mean) |",
        "|---|" + "---|" * (len(tasks) + 3),
        *estimator_rows,
        "",
        "Reference (test-best) cells: "
        + "; ".join(f"{t} {_cell_name(task['reference'])}" for t, task in tasks.items())
        + ". Recommended cells: "
        + "; ".join(
            f"{t} {_cell_name(task['choices']['recommendation'])}" for t, task in tasks.items()
        )
        + ".",
        "",
        "The recommendation against the test-best plain freeze/fine-tune cell (points, "
        "positive: the recipes paid): "
        + "; ".join(
            f"{t} {task['over_plain']['points']:+.2f} (vs {_cell_name(task['over_plain'])})"
            for t, task in tasks.items()
            if task["over_plain"]
        )
        + f"; mean {_mean_ci(summary['over_plain'])}.",
        "",
        f"What `--prune={k}` cost, per task (its wall time as a share of the full sweep's; "
        "its networks against the sweep's; seconds of training the transfers, the baseline, "
        "scoring, the bootstrap and the rest, from its own records):",
        "",
        "| task | share | cut points trained | bootstrap held | networks | transfers | "
        "baseline | scoring | bootstrap | rest | wall |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, task in tasks.items():
        p = task["pruning"]
        s = p["seconds"]
        held = "-" if p["held"] is None else f"{p['held']:.2f}"
        lines.append(
            f"| {name} | {p['share']:.0%} | {', '.join(map(str, p['trained'] or []))} | "
            f"{held} | {p['networks']} of {p['full_networks']} | "
            f"{s['training transfers']:.0f} | {s['training the baseline']:.0f} | "
            f"{s['scoring']:.1f} | {s['bootstrap']:.1f} | {s['the rest']:.0f} | {s['wall']:.0f} |"
        )
    floors = [t["pruning"]["networks"] / t["pruning"]["full_networks"] for t in tasks.values()]
    cells = next(iter(tasks.values()))["cells"]
    modes = len({name.split(" n=")[0] for name in cells})
    cuts = len({name.split(" n=")[1] for name in cells})
    seeds = max(cell["seeds"] for cell in cells.values())
    per_cut = modes * seeds

    def share(kept, of):
        return f"{seeds + per_cut * kept}/{seeds + per_cut * of}"

    lines += [
        "",
        "Its share of the networks is a floor under its share of the wall time, whatever the "
        f"fixed costs: here {min(floors):.0%} to {max(floors):.0%}. Keeping K of L cut points "
        f"trains the {seeds} baseline networks and K/L of the transfers ({modes} modes x "
        f"{seeds} seeds a cut point): {share(k, cuts)} networks for {k} of {cuts}, "
        f"{share(k + 1, cuts)} when the bootstrap adds a cut point, {share(k, cuts + 2)} for "
        f"{k} of {cuts + 2}.",
        "",
    ]
    return lines


def levers_section(results):
    levers = results.get("levers")
    if not levers:
        return []
    lines = [
        "## Levers",
        "",
        "Row 5b's trainer with one change each, measured in turn in one process (CPU time",
        "per image is the steadier number on a shared machine; these vary by a few",
        "percent from round to round):",
        "",
        "| lever | best img/s | CPU us per image (best) | CPU vs row 5b | in the code |",
        "|---|---|---|---|---|",
    ]
    ours = next(found for name, found in levers.items() if name.startswith("as the study"))
    for name, found in levers.items():
        if "rates" not in found:
            continue
        kept = "yes" if found is ours else "no"
        if "mixed_bfloat16" in name:
            kept = "opt-in: --mixed_precision=mixed_bfloat16"
        lines.append(
            f"| {name} | {max(found['rates']):.0f} | {min(found['cpu_us']):.0f} | "
            f"{min(found['cpu_us']) / min(ours['cpu_us']):.2f}x | {kept} |"
        )
    reuse = levers["compiled-model reuse"]["best"]
    inputs = levers["input pipeline"]
    ways = inputs["run_seconds"]
    KERAS_VALIDATION = "validation by Keras's evaluate"  # noqa: N806
    suffix = levers["steps_per_execution on a cached suffix"]["ms_per_step"]
    every, one = sorted(suffix, key=int, reverse=True)
    lines += [
        "",
        f"steps_per_execution (kept) is for the frozen runs: their suffix on cached "
        f"features (n=5: fc6-fc8) trains at {suffix[every]:.2f} ms per step with one "
        f"graph call per segment ({every} steps) against {suffix[one]:.2f} ms with "
        "Keras's one step per call; the full network above is bound by its convolutions.",
        "",
        f"Input pipeline: one run's {inputs['segments']} segments, each followed by a "
        f"pass over the {inputs['images']:,} validation images, took "
        f"{ways['as the study']:.1f} s as the study trains (kept: training batches "
        "gathered from memory by shuffled index, validation by `training.Evaluator`), "
        f"{ways['training batches from a shuffle buffer']:.1f} s with the training "
        "batches from a shuffle buffer over all examples (`data.make_dataset`), and "
        f"{ways[KERAS_VALIDATION]:.1f} s with Keras's "
        "`fit(validation_data=...)`. Where these are within a few percent of each "
        "other, neither change is a speed-up: the gathered batches are kept because they "
        "hold no second copy of the half's images (the shuffle buffer holds all of "
        "them), the evaluator because it also serves every run's test evaluation with "
        "one traced function per model structure, and no validation history file is "
        "written and fsynced after every segment.",
        "",
        f"Compiled-model reuse (kept): base B's whole run took {reuse['reused']:.1f} s on "
        f"base A's compiled model and {reuse['fresh']:.1f} s on its own (traced anew); "
        "the study reuses one compiled model for all runs of one structure and solver.",
        "Also kept: frozen-prefix caching (row 6) with features continued block by block",
        "for each base, and checkpoints, with the validation history, at most every 30 s",
        "after a run's first segment.",
        "Not changed: the evaluation schedule (--eval_every is a result flag of the",
        "flagfile) and the validation batch (the same CPU time per image, and a larger",
        "batch costs memory on 227x227 inputs).",
        "",
    ]
    flight = levers.get("runs in flight")
    if flight:
        one, two = (flight["best"][key] for key in sorted(flight["best"], key=int))
        same = "the same" if flight["same_results"] else "**different**"
        lines += [
            f"Runs in flight (`--runs_in_flight`): the plan's first {flight['runs']} runs "
            f"(both bases, then the five at n=1, all on the full network) took {one:.0f} s "
            f"one at a time and {two:.0f} s two at once, each in a thread of its own "
            f"({one / two:.2f}x as fast), with {same} test accuracies. Each run ends bit for "
            "bit as trained alone (tests/test_runs_in_flight.py); the default is one at a "
            "time.",
            "",
        ]
    return lines


def mixed_precision_section(results):
    """Mixed precision: what row 7's precision did on this CPU, then the GPU arithmetic."""
    lines = ["## Mixed precision", ""]
    bfloat16, change = results.get("study_bfloat16"), results.get("precision_change")
    if change:
        test = change["test"]
        treatments = "; ".join(
            f"{name} {'-' if t['mean'] is None else format(t['mean'], '+.2f')}, "
            f"{interval_text(t, test['confidence'])} ({t['units']} base networks): "
            f"{treatment_verdict(t)}"
            for name, t in test["treatments"].items()
        )
        changed = ", ".join(
            f"finding {number} {c['float32']} -> {c['candidate']}"
            + ("" if c["counts"] else f" (excused: {c['why']})")
            for number, c in test["findings_changed"].items()
        )
        largest = test["largest"]
        verdict = (
            "at parity: bfloat16 is harmless for this study on this kind of CPU"
            if test["passed"]
            else "not at parity (" + "; ".join(test["why"]) + ")"
        )
        declared = change["declared"]["passed"]
        agrees = (
            "this run agrees"
            if declared is test["passed"]
            else "this run **disagrees**: update BFLOAT16_VERDICTS from it"
        )
        lines += [
            f"Row 7b ran the default study with `--mixed_precision=mixed_bfloat16` on this CPU "
            f"({change['cpu_kind'].upper()}, no GPU; its records say "
            f"{', '.join(bfloat16['precision'])}): convolutions compute in bfloat16, while "
            "fc6/fc7, the softmax head and all variables stay float32. It was "
            f"{change['speedup']:.2f}x as fast as row 7 in float32, with "
            f"{bfloat16['peak_rss_bytes'] / 1e9:.2f} GB peak RSS against "
            f"{change['float32_peak_rss_bytes'] / 1e9:.2f} GB (cached features are bfloat16).",
            "",
            'The precision test (docs/statistics.md, "Precision") pairs each network with '
            "itself in row 7 and takes test accuracy, bfloat16 minus float32, in points, "
            "averaged per base network: "
            f"{precision_summary(test)}. Per treatment: {treatments}. Findings "
            f"that changed status: {changed or 'none'}. "
            + (
                f"Largest paired difference: {largest['run']} {largest['points']:+.2f} points. "
                if largest
                else ""
            )
            + f"Accepted treatments: {', '.join(test['accepted']) or 'none'}. "
            + f"{precision_sizing(test)[0].upper()}{precision_sizing(test)[1:]}. "
            + f"Verdict: {verdict}. `--mixed_precision=auto` follows the verdict declared for "
            f"{change['cpu_kind'].upper()} CPUs in kerastransfer/training/strategies.py "
            f"(BFLOAT16_VERDICTS: {change['declared']['measured']}), and picks mixed_bfloat16 "
            f"only on a kind of CPU that passed; {agrees}.",
            "",
        ]
    elif results.get("study"):
        lines += [
            "This CPU has no bfloat16 instructions (AMX or AVX512_BF16), so row 7b (the "
            "default study in mixed_bfloat16) was not run and `--mixed_precision=auto` means "
            "float32 here.",
            "",
        ]
    lines += [
        "On GPUs, `--mixed_precision=mixed_bfloat16` (or `mixed_float16`) computes in 16 bits "
        "with float32 variables. On one H100 SXM it should give at most "
        f"2x over float32: dense tensor-core peak {H100_BF16_TFLOPS} TFLOP/s in bfloat16 against "
        f"{H100_TF32_TFLOPS} in TF32 (TensorFlow's float32 default on such GPUs; "
        f"{H100_FP32_TFLOPS} without tensor cores), and half the bytes per activation through "
        f"{H100_TBPS} TB/s of memory bandwidth, which is what bounds networks this small. At "
        f"the {fmt(GPU_ACHIEVED_TFLOPS)} TFLOP/s achieved float32 rate assumed below, that is "
        f"up to {fmt(2 * GPU_ACHIEVED_TFLOPS)} TFLOP/s, as far as the input pipeline (JPEG "
        "decoding and cropping on the CPU) keeps up.",
        "",
    ]
    return lines


def paper_section(p):
    lines = [
        "## On paper: the paper's study at ImageNet scale",
        "",
        f"CaffeNet at 227x227 (500-class head, Keras model counted as in row 2): "
        f"{p['forward'] / 1e9:.3f} GFLOP forward, {p['train'] / 1e9:.2f} GFLOP to train one "
        "image (docs/scale_out.md rounds this to 3x forward). A network sees "
        f"{PAPER_STEPS:,} x {PAPER_BATCH} = {p['images'] / 1e6:.1f} "
        f"million training images and {PAPER_EVALUATIONS} evaluations of its half's "
        f"{HALF_VAL_IMAGES:,} validation images: {p['full_network']:.3g} FLOP. "
        f"`configs/imagenet_paper.flags` is {p['networks']} networks ({PAPER_SPLITS} random "
        f"splits x (2 bases + BnB, BnB+, AnB, AnB+ x {PAPER_LAYERS})); the paper published "
        f"{p['published']}. At an achieved {fmt(GPU_ACHIEVED_TFLOPS)} TFLOP/s on one "
        "H100-class GPU (docs/scale_out.md says why):",
        "",
        "| | FLOP | one GPU |",
        "|---|---|---|",
        f"| one network trained from scratch | {p['full_network']:.3g} | "
        f"{p['hours_network']:.1f} h |",
        f"| the grid, frozen prefixes recomputed every step | {p['without']:.3g} | "
        f"{p['hours_without']:.0f} h = {p['hours_without'] / 24:.1f} days |",
        f"| the grid, frozen prefixes cached | {p['with_cache']:.3g} | "
        f"{p['hours_with']:.0f} h = {p['hours_with'] / 24:.1f} days |",
        f"| the paper: {PAPER_DAYS_PER_NETWORK} days per network | | "
        f"{p['paper_hours']:,.0f} h = {p['paper_hours'] / 24:,.0f} days |",
        "",
        "Frozen networks (BnB, AnB) per n, FLOP each:",
        "",
        "| n | cached at | recomputed | cached | saving | one cached step |",
        "|---|---|---|---|---|---|",
    ]
    for r in p["per_n"]:
        lines.append(
            f"| {r['n']} | {r['cache_layer']} | {r['uncached']:.3g} | "
            f"{r['cached']:.3g} | {r['uncached'] / r['cached']:.1f}x | {r['step_ms']:.2g} ms |"
        )
    lines += [
        "",
        "Caching counts the prefix once per training and validation image of the half "
        f"(about {HALF_TRAIN_IMAGES:,} + {HALF_VAL_IMAGES:,}); the paper trained on random "
        "crops and mirrors, which change the prefix's output every step, so this column "
        "holds only for fixed (e.g. center-cropped) inputs: kerastransfer turns caching "
        "off, and says so, when the preprocessing augments. Fine-tuned networks and bases "
        "cost the same either way, which is why the grid saves less than the frozen "
        "networks do.",
        "",
        "Several networks per graph call (not in the code): a step of a base or fine-tuned "
        f"network is {p['full_step_ms']:.0f} ms of arithmetic at batch {PAPER_BATCH} and "
        f"{fmt(GPU_ACHIEVED_TFLOPS)} TFLOP/s, far above a step's fixed cost on a GPU (kernel "
        "launches and host work, of the order of 0.1 to 1 ms for a network of this depth: an "
        "assumption, not measured here), so packing them gains nothing there. A cached "
        "frozen step (last column) is as short as that fixed cost from n = 6 on, where the GPU "
        "would idle for much of each step: training the frozen networks of one half and n "
        "(BnB and AnB, and their seeds) side by side in one graph call is where packing "
        "would pay, on a share of the grid's FLOPs that caching has already made small.",
        "",
    ]
    return lines


# The keys of a benchmark JSON that hold measured rows (the rest describes the run).
ROW_KEYS = (
    "trainers",
    "notes",
    "frozen",
    "levers",
    "study",
    "study_bfloat16",
    "precision_change",
    "study_long",
    "epochs",
    "packing",
    "by_hand",
    "suite",
)


def merge(runs):
    """One benchmark dict from several runs' JSONs: the first run's description, and each
    row from the first run that measured it; `also` names the other runs' commands."""
    merged = dict(runs[0])
    merged["also"] = []
    for run in runs[1:]:
        rows = [key for key in ROW_KEYS if key in run and key not in merged]
        merged.update({key: run[key] for key in rows})
        merged["also"].append({"command": run["command"], "date": run["date"], "rows": rows})
    return merged


def main(argv=None):
    """Renders benchmark JSONs into a BENCHMARKS.md (several: merged, each row from the first
    that has it), judged by this version's targets."""
    parser = argparse.ArgumentParser(prog="python -m tools.bench.report", description=main.__doc__)
    parser.add_argument("json", nargs="+", help="JSONs written by python -m tools.bench")
    parser.add_argument("markdown", help="the BENCHMARKS.md to write")
    args = parser.parse_args(argv)
    from kerastransfer.workdir import files  # noqa: PLC0415

    runs = []
    for path in args.json:
        with open(path) as f:
            runs.append(json.load(f))
    loaded = merge(runs)
    loaded["frozen"] = {int(n): row for n, row in loaded.get("frozen", {}).items()}
    loaded["targets"] = targets(loaded)  # judged by this version's list of targets
    files.write_text(args.markdown, render(loaded))
    print(f"report: {args.markdown}")


if __name__ == "__main__":
    main()
