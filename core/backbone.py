"""Backbones: a shared transformer encoder with its tokenizer (imports torch and transformers).

A backbone gives ``tokenizer``, ``hidden_size`` and ``forward(batch) -> (pooled [B, D], hidden_states)``.
``pooled`` is the encoder's pooler output where it has one (BERT: tanh(W·h_[CLS])), which is exactly what
``AutoModelForSequenceClassification`` feeds its classifier, so a trained target model exports unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .errors import MtlError


class Backbone(nn.Module):
    """Base class: an encoder and its tokenizer."""

    tokenizer = None
    hidden_size: int = 0

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        raise NotImplementedError


class HFBackbone(Backbone):
    """Any Hugging Face encoder (``AutoModel``): BERT, MiniLM, MobileBERT, RoBERTa, ..."""

    def __init__(self, encoder: nn.Module, tokenizer, name: str = "") -> None:
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.name = name
        self.hidden_size = int(encoder.config.hidden_size)
        self._accepts_token_types = "token_type_ids" in _forward_arguments(encoder)

    @property
    def config(self):
        return self.encoder.config

    def forward(self, batch):
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if self._accepts_token_types and "token_type_ids" in batch:
            inputs["token_type_ids"] = batch["token_type_ids"]
        out = self.encoder(**inputs, output_hidden_states=True, return_dict=True)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            pooled = out.last_hidden_state[:, 0]
        return pooled, out.hidden_states


def _forward_arguments(module: nn.Module) -> set[str]:
    import inspect

    return set(inspect.signature(module.forward).parameters)


def from_pretrained(name_or_path: str, label: str) -> HFBackbone:
    """Load an encoder and its tokenizer from a local folder or the hub; one clear error when neither works."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    local = Path(name_or_path).expanduser()
    source = str(local) if local.exists() else name_or_path
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "weights not initialised" notices for the unused pooler etc.
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        encoder = AutoModel.from_pretrained(source)
    except Exception as exc:
        where = "the local folder" if local.exists() else (
            "the local cache (HF_HUB_OFFLINE is set)" if offline else "the Hugging Face hub or the local cache"
        )
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MtlError(
            f"backbone {label!r}: could not load {name_or_path!r} from {where}: {reason[:200]}"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return HFBackbone(encoder, tokenizer, name=label)
