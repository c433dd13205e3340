"""Training: the trainer, its loop state, distributed data parallelism and random-generator state."""
