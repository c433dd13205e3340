"""Backbone ``hf:<name-or-path>``: any Hugging Face encoder checkpoint (``AutoModel``), hub name or local folder."""

from typing import Literal

from mtl import hookimpl


def hf(name: str, task_embedding: Literal["none", "input", "attention", "projected", "activation"] = "none",
       task_activation: Literal["gelu", "relu", "tanh"] = "tanh"):
    """``hf:bert-base-uncased``, ``hf:google/mobilebert-uncased``, ``hf:/path/to/folder``.

    ``task_embedding``: learned task vectors added to the input embeddings (any encoder with a word-embedding
    table) or to Q/K/V of every self-attention layer, directly or projected per layer (BERT-style encoders)
    (TEA-BERT); ``task_activation``: the activation of ``task_embedding=activation``.
    """
    from mtl import from_pretrained

    if not name:
        raise ValueError("name a model after 'hf:', e.g. hf:bert-base-uncased or hf:/path/to/model")
    return from_pretrained(name, f"hf:{name}", task_embedding=task_embedding,
                           task_activation=task_activation)


@hookimpl
def register_backbones(register):
    register("hf", hf, description="any Hugging Face encoder: hf:<hub name or local folder>")
