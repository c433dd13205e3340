"""Backbone ``tiny``: a small randomly initialised BERT (Devlin et al. 2019) for fast tests.

It uses MiniLM's uncased WordPiece tokenizer (bundled, offline) and the seed of the run for its weights.
"""

from typing import Literal

from mtl import hookimpl


def tiny(hidden_size: int = 64, layers: int = 2, heads: int = 2, intermediate_size: int = 128,
         task_embedding: Literal["none", "input", "attention", "projected", "activation"] = "none",
         task_activation: Literal["gelu", "relu", "tanh"] = "tanh"):
    """A ``BertModel`` of ``layers`` layers of width ``hidden_size``, random weights from the current seed.

    ``task_embedding``: learned task vectors added to the input embeddings or to Q/K/V (TEA-BERT);
    ``task_activation``: the activation of ``task_embedding=activation``.
    """
    from transformers import AutoTokenizer, BertConfig, BertModel

    from mtl import HFBackbone, check_model_size
    from mtl.plugins.backbones.minilm import model_path

    for key, value in {"hidden_size": hidden_size, "layers": layers, "heads": heads,
                       "intermediate_size": intermediate_size}.items():
        if value < 1:
            raise ValueError(f"{key} must be >= 1 (got {value})")
    if hidden_size % heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be a multiple of heads ({heads})")
    tokenizer = AutoTokenizer.from_pretrained(model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=512,
    )
    check_model_size(config, f"layers={layers}, hidden_size={hidden_size}, intermediate_size={intermediate_size}")
    return HFBackbone(BertModel(config), tokenizer, name="tiny", task_embedding=task_embedding,
                      task_activation=task_activation)


@hookimpl
def register_backbones(register):
    register("tiny", tiny, description="small random BERT for tests (MiniLM's tokenizer)")
