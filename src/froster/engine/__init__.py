"""Training and evaluation: the loop, metrics, checkpoints, weight averaging, DDP set-up."""
