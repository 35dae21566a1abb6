"""Training: state, pure steps, optimizers, sharding, checkpoints, logging and the loop."""
