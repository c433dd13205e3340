"""Encoder families: the pooled feature an mtl head reads, defined per family as that family's transformers heads.

An mtl head is ``dropout + Linear`` on the backbone's pooled feature, so the pooled feature of each family is what
its own transformers sentence-level heads (``*ForSequenceClassification``, ``*ForMultipleChoice``) apply before
their last Linear; a trained head then maps exactly onto them (dropouts aside: eval mode). ``h0`` is the last
hidden state of the first token:

- BERT, MiniLM, MobileBERT, ... and RoBERTa, XLM-R, CamemBERT: the encoder's own pooler, ``pooler_output``
  (BERT and RoBERTa: tanh(dense(h0))). BERT's heads apply ``classifier`` to it; RoBERTa's sequence classifier is
  dense → tanh → out_proj on h0 (its ``dense`` is the pooler's), its multiple-choice head ``roberta.pooler`` →
  ``classifier``.
- ELECTRA: gelu(dense(h0)), a pooler mtl adds (ElectraModel has none): ``ElectraClassificationHead`` is dense →
  gelu → out_proj on h0; ``ElectraForMultipleChoice``'s ``sequence_summary`` (summary_type ``first``, a
  projection, activation ``gelu``) is the same before its ``classifier``.
- DeBERTa-v2/v3: act(dense(h0)) with act = ``config.pooler_hidden_act``: ``ContextPooler`` (``pooler``) before
  ``classifier`` in both heads.
- DistilBERT: relu(pre_classifier(h0)) before ``classifier`` in both heads.

Another architecture keeps the encoder's ``pooler_output`` where it has one, else h0 (without a trainable pooler).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.activations import ACT2FN


@dataclass(frozen=True)
class Family:
    """How one encoder family pools and where its transformers heads keep the pooler and the last Linear.

    ``activation``: the activation of the pooler mtl adds (dense + activation on h0), a config attribute name
    prefixed ``config:``, or None when the encoder's own pooler is the pooled feature. ``pooler`` and ``head``
    map a task kind to the module path of the pooler's dense Linear (None: inside the base model, unchanged) and
    of the last Linear in that kind's transformers model."""

    name: str
    activation: str | None
    pooler: dict[str, str | None]
    head: dict[str, str]
    #: config values the family's multiple-choice head needs to equal the pooled feature
    choice_config: tuple[tuple[str, object], ...] = ()


SEQUENCE, CHOICE = "sequence-classification", "multiple-choice"
TOKENS, QA = "token-classification", "question-answering"
KINDS = (SEQUENCE, CHOICE, TOKENS, QA)
_PER_TOKEN = {TOKENS: "classifier", QA: "qa_outputs"}

BERT = Family("BERT", None, {SEQUENCE: None, CHOICE: None},
              {SEQUENCE: "classifier", CHOICE: "classifier", **_PER_TOKEN})
ROBERTA = Family("RoBERTa", None, {SEQUENCE: "classifier.dense", CHOICE: None},
                 {SEQUENCE: "classifier.out_proj", CHOICE: "classifier", **_PER_TOKEN})
ELECTRA = Family("ELECTRA", "gelu", {SEQUENCE: "classifier.dense", CHOICE: "sequence_summary.summary"},
                 {SEQUENCE: "classifier.out_proj", CHOICE: "classifier", **_PER_TOKEN},
                 choice_config=(("summary_type", "first"), ("summary_use_proj", True),
                                ("summary_proj_to_labels", False), ("summary_activation", "gelu")))
DEBERTA_V2 = Family("DeBERTa-v2", "config:pooler_hidden_act", {SEQUENCE: "pooler.dense", CHOICE: "pooler.dense"},
                    {SEQUENCE: "classifier", CHOICE: "classifier", **_PER_TOKEN})
DISTILBERT = Family("DistilBERT", "relu", {SEQUENCE: "pre_classifier", CHOICE: "pre_classifier"},
                    {SEQUENCE: "classifier", CHOICE: "classifier", **_PER_TOKEN})

#: model_type (transformers config) -> family
FAMILIES: dict[str, Family] = {
    "bert": BERT, "mobilebert": BERT,
    "roberta": ROBERTA, "xlm-roberta": ROBERTA, "camembert": ROBERTA,
    "electra": ELECTRA,
    "deberta-v2": DEBERTA_V2,
    "distilbert": DISTILBERT,
}


def family(config) -> Family | None:
    """The family of an encoder's config, or None for an architecture mtl does not map."""
    return FAMILIES.get(getattr(config, "model_type", None))


def has_own_pooler(encoder: nn.Module) -> bool:
    return getattr(encoder, "pooler", None) is not None


class FamilyPooler(nn.Module):
    """act(dense(h0)): the pooler mtl adds to an encoder without one (ELECTRA, DeBERTa-v2, DistilBERT)."""

    def __init__(self, hidden_size: int, activation: str, init_std: float = 0.02) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation_name = activation
        self.activation = ACT2FN[activation]
        nn.init.normal_(self.dense.weight, std=init_std)
        nn.init.zeros_(self.dense.bias)

    def forward(self, last_hidden_state: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(last_hidden_state[:, 0]))


def make_pooler(encoder: nn.Module) -> FamilyPooler | None:
    """The pooler mtl adds to ``encoder`` (a transformers ``AutoModel``): None when the encoder has its own or its
    family is not one mtl maps."""
    config = encoder.config
    spec = family(config)
    if spec is None or spec.activation is None or has_own_pooler(encoder):
        return None
    activation = spec.activation
    if activation.startswith("config:"):
        activation = getattr(config, activation.partition(":")[2])
    pooler = FamilyPooler(int(config.hidden_size), activation, float(getattr(config, "initializer_range", 0.02)))
    weight = next(encoder.parameters(), None)
    return pooler.to(dtype=weight.dtype) if weight is not None else pooler
