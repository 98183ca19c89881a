"""Developer tools, run from the repository root: the benchmark (`python -m tools.bench`), the
TF-Serving client (`python tools/serving_client.py`) and the environment's setup
(`tools/setup.sh`). A package so that the benchmark's modules import each other by their full
names, with no sys.path inserts."""
