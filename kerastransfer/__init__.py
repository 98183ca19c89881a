"""kerastransfer: how transferable are the features of each layer of a deep network?

Reproduces Yosinski et al. 2014 on any image classification dataset and exports the best
transferred model for TF-Serving. Start with `python -m kerastransfer.run --flagfile=...`.
"""

__version__ = "0.1.0"
