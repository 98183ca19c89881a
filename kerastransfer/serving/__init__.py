"""Serving: export a trained network as a SavedModel in TF-Serving's layout, and choose which.

export (the SavedModel, its signatures, warmup requests, models.config), best (the run to
export: best validation metric among --export_treatments, or --export_run).
May import: data, workdir, errors; never study/ (the stage hands it the study).
"""
