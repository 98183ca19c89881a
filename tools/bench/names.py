"""The trainers' names (rows 3-5): their keys in the JSON's "trainers", which the trainers
write and report.py reads."""

PLAIN_KERAS = "plain Keras model.fit"
TORCH_PEER = "PyTorch (CPU)"
KERAS_TRANSFER = "kerastransfer training.train"
