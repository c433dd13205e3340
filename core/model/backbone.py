"""Backbones: a shared transformer encoder with its tokenizer (imports torch and transformers).

A backbone gives ``tokenizer``, ``hidden_size`` and ``forward(batch) -> (pooled [B, D], hidden_states)``.
``pooled`` is what the encoder family's own transformers heads apply their last Linear to (:mod:`mtl.model.families`):
the encoder's pooler output where it has one (BERT, RoBERTa: tanh(W·h_[CLS])), else a pooler the backbone owns
(``pooler``, part of its state: ELECTRA gelu, DeBERTa-v2 ``pooler_hidden_act``, DistilBERT relu, each of dense(h_0)),
so a trained target model exports exactly.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from huggingface_hub import try_to_load_from_cache
from huggingface_hub.repocard import metadata_load
from torch import nn
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from mtl.data import hub
from mtl.errors import MtlError
from mtl.model.families import make_pooler
from mtl.model.task_embedding import DEFAULT_ACTIVATION, TaskEmbedding, check_activation, check_encoder


class Backbone(nn.Module):
    """Base class: an encoder and its tokenizer."""

    tokenizer = None
    hidden_size: int = 0
    #: what the model card of an export says of the pretrained weights (None: not known, e.g. random weights): the
    #: Hub id of the checkpoint the backbone starts from (``base_model``) and its licence (``license``, a Hub
    #: licence id such as ``apache-2.0``)
    base_model: str | None = None
    license: str | None = None

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        raise NotImplementedError


class HFBackbone(Backbone):
    """Any Hugging Face encoder (``AutoModel``): BERT, MiniLM, MobileBERT, RoBERTa, ...

    ``task_embedding`` (``none``, ``input``, ``attention``, ``projected``, ``activation``) adds learned task
    vectors to the word embeddings or to the self-attention projections (TEA-BERT; see
    :mod:`mtl.model.task_embedding`); ``task_activation`` is the activation of the ``activation`` mode. They are
    created by ``configure_tasks`` once the tasks are known (``MultiTaskModel`` calls it), and the batch then needs
    ``task_ids`` [B] (``MultiTaskModel.encode`` adds them).
    """

    def __init__(self, encoder: nn.Module, tokenizer, name: str = "", task_embedding: str = "none",
                 task_activation: str = DEFAULT_ACTIVATION) -> None:
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.name = name
        self.hidden_size = int(encoder.config.hidden_size)
        self._accepts_token_types = "token_type_ids" in _forward_arguments(encoder)
        check_encoder(encoder, task_embedding)  # ValueError now, before any training
        self.task_embedding_mode = task_embedding
        self.task_activation = check_activation(task_activation)
        self.task_embedding = None  # TaskEmbedding, made by configure_tasks
        # the family's pooler when the encoder has none of its own (ELECTRA, DeBERTa-v2, DistilBERT); BERT and
        # RoBERTa keep theirs and add no parameter
        self.pooler = make_pooler(encoder)

    @property
    def config(self):
        return self.encoder.config

    @property
    def uses_task_ids(self) -> bool:
        return self.task_embedding_mode != "none"

    def configure_tasks(self, tasks: list[str]) -> None:
        """Create the task vectors for ``tasks`` (ids = positions in the list); nothing without task embeddings."""
        if not self.uses_task_ids:
            return
        if self.task_embedding is not None:
            if list(tasks) != self.task_embedding.tasks:
                raise ValueError(f"task embeddings are already configured for {self.task_embedding.tasks}, "
                                 f"not {list(tasks)}")
            return
        self.task_embedding = TaskEmbedding(self.encoder, self.task_embedding_mode, list(tasks),
                                            self.task_activation)

    def forward(self, batch):
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if self._accepts_token_types and "token_type_ids" in batch:
            inputs["token_type_ids"] = batch["token_type_ids"]
        if not self.uses_task_ids:
            return self._encode(inputs)
        if self.task_embedding is None:
            raise RuntimeError(f"backbone {self.name!r}: task_embedding={self.task_embedding_mode!r} needs "
                               "configure_tasks(tasks) before the first forward (MultiTaskModel calls it)")
        task_ids = batch.get("task_ids")
        if task_ids is None:
            raise ValueError(f"backbone {self.name!r}: task_embedding={self.task_embedding_mode!r} needs "
                             "batch['task_ids'] [B] (MultiTaskModel.encode adds them)")
        with self.task_embedding.use(task_ids):
            if self.task_embedding_mode == "input":
                table = self.encoder.get_input_embeddings()
                inputs["inputs_embeds"] = self.task_embedding.embed(table, inputs.pop("input_ids"),
                                                                    self.task_embedding.current)
            return self._encode(inputs)

    def _encode(self, inputs):
        out = self.encoder(**inputs, output_hidden_states=True, return_dict=True)
        if self.pooler is not None:
            return self.pooler(out.last_hidden_state), out.hidden_states
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            pooled = out.last_hidden_state[:, 0]
        return pooled, out.hidden_states


def _forward_arguments(module: nn.Module) -> set[str]:
    return set(inspect.signature(module.forward).parameters)


def from_pretrained(name_or_path: str, label: str, task_embedding: str = "none",
                    task_activation: str = DEFAULT_ACTIVATION) -> HFBackbone:
    """Load an encoder and its tokenizer from a local folder or the hub; one clear error when neither works.

    ``task_embedding`` that the loaded architecture cannot take is a ValueError (before any training);
    ``task_activation`` is the activation of ``task_embedding='activation'``.
    """
    local = Path(name_or_path).expanduser()
    source = str(local) if local.exists() else name_or_path
    # without a usable hub, look only in the local cache: an error in seconds, not a minute of retries
    no_hub = None if local.exists() else hub.unavailable()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "weights not initialised" notices for the unused pooler etc.
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=no_hub is not None)
        encoder = AutoModel.from_pretrained(source, local_files_only=no_hub is not None)
    except Exception as exc:
        where = "the local folder" if local.exists() else (
            f"the local cache (the hub is not usable: {no_hub})" if no_hub
            else "the Hugging Face hub or the local cache")
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MtlError(
            f"backbone {label!r}: could not load {name_or_path!r} from {where}: {reason[:200]}"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    backbone = HFBackbone(encoder, tokenizer, name=label, task_embedding=task_embedding,
                          task_activation=task_activation)
    backbone.base_model, backbone.license = card_metadata(name_or_path)
    return backbone


def card_metadata(name_or_path: str) -> tuple[str | None, str | None]:
    """(base model, licence) of a checkpoint for the model card of an export, without the network: a Hub name is its
    own base model, with the licence of its model card when the card is in the local cache; a local folder's
    README.md (a Hub model card) may name both (``base_model``, ``license``)."""
    local = Path(name_or_path).expanduser()
    base = None if local.exists() else name_or_path
    try:
        card = local / "README.md" if local.exists() else try_to_load_from_cache(name_or_path, "README.md")
        metadata = metadata_load(card) if isinstance(card, (str, Path)) and Path(card).is_file() else None
    except Exception:  # no card, an unreadable card, a name the cache does not take: nothing is known
        metadata = None
    metadata = metadata if isinstance(metadata, dict) else {}
    named = metadata.get("base_model")
    if isinstance(named, list):
        named = named[0] if len(named) == 1 else None
    licence = metadata.get("license")
    return (base or (named if isinstance(named, str) else None),
            licence if isinstance(licence, str) and licence != "other" else None)
