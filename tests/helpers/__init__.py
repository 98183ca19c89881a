"""Shared by the tests (importable as `helpers`: setup.cfg puts tests/ on pytest's pythonpath).

cli             the real command line in a subprocess (run_cli, REPO, SMOKE), and Python
                tools (saved_model_cli, ...) found beside the running interpreter
records         a workdir's results.jsonl, read through kerastransfer.workdir.results
ports           free TCP ports on 127.0.0.1 (behind the free_port(s) fixtures)
reliability     small studies, a runner read while it runs, snapshots of files
studies         a smoke-sized study loaded in this process (tiny_study)
data_fixtures   synthetic IDX files, PNG folders and in-memory sources
exports         tiny models to export, smooth images, crafted PNGs of any claimed size
transfer_asserts  the paper's definition of a transferred network, as assertions
mock_tfds_run   a launcher script: the command line with TFDS mock data (run as a file)
"""
