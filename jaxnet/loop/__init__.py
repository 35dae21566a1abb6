"""What every method shares: the workdir, checkpoints, metric logging and the training loop."""
