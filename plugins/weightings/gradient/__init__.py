"""Gradient methods: weightings that combine the tasks' gradients (one plugin per module)."""
