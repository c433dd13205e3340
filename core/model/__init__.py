"""The model: backbones, task embeddings, the shared multi-task model and what a weighting sees at setup."""
