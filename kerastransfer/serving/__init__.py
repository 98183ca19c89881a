"""Serving: export a trained network as a SavedModel in TF-Serving's layout, and choose which.

export (the SavedModel, its signatures, warmup requests, models.config and batching
parameters), images (the checks and decoding of `predict_image_bytes`, inside the graph), best
(the run to export: best validation metric among --export_treatments, or --export_run).
May import: config, data, workdir, errors; never study/ (the driver, app/, hands it the study).
"""
