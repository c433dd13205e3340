"""Task embeddings in an export (TEA-BERT): folded into plain BERT weights, or kept beside the encoder.

``input`` adds the target's vector to every row of the word-embedding matrix (the embedding of any token is then
the word vector plus the task vector, as in training); ``attention`` adds the target's vectors to the biases of
every layer's query/key/value Linear; ``projected`` does the same with the target's W^l·e_t (a constant per layer
and slot once the task is fixed). ``activation`` (Q̂ = W'·act(Q + W·e_t)) cannot fold: :func:`task_attention_state`
is what an export keeps of it (:mod:`mtl.runs.exported` rebuilds it).
"""

from __future__ import annotations

from typing import Any

import torch

from mtl.errors import MtlError
from mtl.model.task_embedding import attention_projections, input_embeddings


def task_vectors(model, target: str):
    """The target's task vector [D] (``input``), else what it adds to every layer's query/key/value [L, 3, D]:
    q_t^l (``attention``), W^l·e_t (``projected``; for ``activation`` before the activation)."""
    embedding = model.backbone.task_embedding
    if embedding is None:
        raise MtlError("the backbone has task embeddings switched on but none configured")
    index = embedding.tasks.index(target)
    with torch.no_grad():
        return embedding.vectors.detach()[index] if embedding.mode == "input" else embedding.target_shifts(index)


def task_attention_state(model, target: str) -> dict[str, Any]:
    """What the target's inference needs of the ``activation`` task embedding: its W·e_t per layer and slot
    (``shift`` [L, 3, D]), W' (``post`` [L, 3, D, D]) and the activation's name."""
    embedding = model.backbone.task_embedding
    shift = task_vectors(model, target)
    state = {"shift": shift.float().cpu().clone(), "post": embedding.post.detach().float().cpu().clone()}
    return {"state": state, "activation": embedding.activation}


def fold(base, mode: str, vectors) -> str:
    """Fold the target's task vectors into plain encoder weights; returns a description of what was changed."""
    with torch.no_grad():
        if mode == "input":
            table = input_embeddings(base)
            table.weight += vectors.to(table.weight)[None, :]
            return "input task embedding added to every row of the word-embedding matrix"
        layers = attention_projections(base, mode)
        if len(layers) != vectors.shape[0]:
            raise MtlError(f"{mode} task embeddings for {vectors.shape[0]} layers, the encoder has {len(layers)}")
        for i, projections in enumerate(layers):
            for j, linear in enumerate(projections):
                if linear.bias is None:
                    raise MtlError(f"{mode} task embeddings cannot be folded into query/key/value without a bias")
                linear.bias += vectors[i, j].to(linear.bias)
    if mode == "projected":
        return "projected task embedding (W·e_t of each layer) added to the query/key/value biases of every layer"
    return "attention task embeddings added to the query/key/value biases of every layer"
