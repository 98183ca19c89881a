"""The study: what to train (plan), the data and one run (study), the loop over runs (runner),
and the ways to drive it: sharding, multi-worker following, own-model studies, stages.

plan (RunSpec, the grid's and the own model's plans), study (Study: data + training one run),
runner (the one loop shared by the grid, shards and own-model studies), sharding (claims on
runs between processes), following (a multi-worker follower's stand-in store), own_model (a
Study whose source is the user's model), stages (train, analyze, export: what run.py calls).
May import everything below it (data, models, surgery, training, workdir, treatments, designs,
config),
and analysis, reporting, serving and tuning from stages only; nothing below imports study/.
"""
