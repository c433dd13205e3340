"""Perturbed input embeddings: the model's outputs on x + δ, where x are the word embeddings of a batch.

SMART (Jiang et al., ACL 2020, Eq. 3) perturbs the input embedding vectors; here δ [B, S, E] is added to the
output of the encoder's word-embedding table by a forward hook for the duration of one forward, so it works for
every ``HFBackbone`` encoder and composes with TEA-BERT's ``input`` mode (which calls the same table).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


def word_embeddings(model: nn.Module) -> nn.Embedding:
    """The word-embedding table of ``model``'s backbone encoder; ValueError where it has none."""
    encoder = getattr(getattr(model, "backbone", None), "encoder", None)
    getter = getattr(encoder, "get_input_embeddings", None)
    table = getter() if callable(getter) else None
    if not isinstance(table, nn.Embedding):
        name = type(encoder).__name__ if encoder is not None else type(getattr(model, "backbone", model)).__name__
        raise ValueError(f"perturbing input embeddings needs a backbone encoder with a word-embedding table; "
                         f"{name} has none")
    return table


@contextmanager
def perturbed(table: nn.Embedding, delta: torch.Tensor):
    """Inside the block, every lookup of ``table`` with indices [B, S] returns its embeddings + ``delta``."""

    def add(module, inputs, output):
        if output.shape != delta.shape:
            raise RuntimeError(f"embedding perturbation of shape {tuple(delta.shape)} for embeddings of shape "
                               f"{tuple(output.shape)}")
        return output + delta.to(output.dtype)

    handle = table.register_forward_hook(add)
    try:
        yield
    finally:
        handle.remove()
