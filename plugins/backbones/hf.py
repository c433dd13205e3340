"""Backbone ``hf:<name-or-path>``: any Hugging Face encoder checkpoint (``AutoModel``), hub name or local folder."""

from mtl import hookimpl


def hf(name: str):
    """``hf:bert-base-uncased``, ``hf:google/mobilebert-uncased``, ``hf:/path/to/folder``."""
    from mtl.backbone import from_pretrained

    if not name:
        raise ValueError("name a model after 'hf:', e.g. hf:bert-base-uncased or hf:/path/to/model")
    return from_pretrained(name, f"hf:{name}")


@hookimpl
def register_backbones(register):
    register("hf", hf, description="any Hugging Face encoder: hf:<hub name or local folder>")
