"""The study: what to train (plan), the data and one run (study), the loop over runs (runner),
and the ways to drive it: sharding, multi-worker following, own-model studies, scoring.

plan (RunSpec, the grid's and the own model's plans), study (Study: data + training one run),
runner (the one loop shared by the grid, shards and own-model studies), sharding (claims on
runs between processes), following (a multi-worker follower's stand-in store), own_model (a
Study whose source is the user's model), scoring (every cut point's features, scored by the
estimators), pruning (--prune's decision from those scores, without TensorFlow), probing
(trained networks' activations on a probe batch, for CKA).
May import everything below it (data, models, surgery, training, workdir, treatments, designs,
config, estimators) and, of analysis, json_safe (what scoring needs); never tuning,
reporting, serving or app, and nothing below imports study/. The drivers of app/ combine it
with those.
"""
