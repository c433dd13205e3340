"""Loss-weighting methods: weightings that weight each task's mean loss (one plugin per module)."""
