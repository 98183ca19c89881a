"""Row 6: AnB runs frozen at n = 3, 5, 7, with and without frozen-prefix caching."""

import os
import shutil

FROZEN_N = (3, 5, 7)  # the n row 6 trains, in this order


def frozen_runs(setup, layers, repeats, log):
    """AnB runs frozen at each n (the study's solver), with and without caching, in turn.

    Like the study, the cached runs of one base continue its features block by block: n=3
    computes blocks 1-3 from the images, n=5 only blocks 4-5 on n=3's features, and so on.
    Cached images/s counts that feature pass (trained images / (feature seconds + train
    seconds)); `train_only` leaves it out. The base is an untrained network (the speed is
    the same).
    """
    from kerastransfer.study.study import Study  # noqa: PLC0415
    from kerastransfer.workdir.provenance import file_digest  # noqa: PLC0415

    studies, bases = {}, {}
    for cached in (False, True):
        experiment = setup.experiment.replace(
            cache_frozen=cached,
            layers=tuple(layers),
            treatments=("transfer",),
            workdir=os.path.join(setup.workdir, f"row6_{cached}"),
        )
        study = studies[cached] = Study.load(experiment, log=lambda message: None)
        base_spec = next(s for s in study.runs if s.treatment == "base" and s.target == "A")
        base = setup.build()
        weights = os.path.join("runs", base_spec.run, "final.weights.h5")
        os.makedirs(os.path.dirname(os.path.join(study.workdir, weights)))
        base.save_weights(os.path.join(study.workdir, weights))
        bases[cached] = {
            "num_classes": setup.half.num_classes,
            "weights": weights,
            "weights_sha256": file_digest(os.path.join(study.workdir, weights)),
        }
    results = {n: {False: [], True: []} for n in layers}
    for _ in range(repeats):
        for n in layers:
            for cached, study in studies.items():
                spec = next(s for s in study.runs if s.treatment == "transfer" and s.n == n)
                shutil.rmtree(os.path.join(study.workdir, "runs", spec.run), ignore_errors=True)
                record = study.train_run(spec, bases[cached])
                trained = record["steps"] * setup.experiment.solver.batch_size
                seconds = record["train_seconds"] + record.get("cache_seconds", 0.0)
                results[n][cached].append(
                    {
                        "images_per_second": trained / seconds,
                        "train_only": record["images_per_second"],
                        "cache_seconds": record.get("cache_seconds", 0.0),
                        "cached_prefix": record["cached_prefix"],
                    }
                )
                log(
                    f"  n={n} {'cached' if cached else 'uncached'}: "
                    f"{results[n][cached][-1]['images_per_second']:.0f} img/s"
                )
    rows = {}
    for n, found in results.items():
        best = {cached: max(r, key=lambda x: x["images_per_second"]) for cached, r in found.items()}
        rows[n] = {
            "uncached": best[False],
            "cached": best[True],
            "ratio": best[True]["images_per_second"] / best[False]["images_per_second"],
            "ratio_train_only": best[True]["train_only"] / best[False]["train_only"],
        }
    return rows
