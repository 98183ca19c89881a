"""The workdir's files: atomic writes, the results store, the lock and provenance.

files (atomic writes), results (results.jsonl: the one reader and writer, the best-k metric),
lock (one runner at a time), provenance (config.json, source commit, file digests).
May import: config, treatments, errors; never TensorFlow, Keras or anything of study/.
"""
