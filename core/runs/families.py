"""The transformers model of one task kind, built from a trained mtl encoder, its pooler and a head's Linear.

``build_exported(kind, encoder, pooler_state, head_linear, ...)`` returns, with the run's weights:

- ``sequence-classification``: ``AutoModelForSequenceClassification`` (also one logit: regression, a ranking
  scorer; ``problem_type`` ``multi_label_classification`` for one sigmoid per label);
- ``multiple-choice``: ``AutoModelForMultipleChoice`` (pooled → Linear(H, 1), logits [B, k]);
- ``token-classification``: ``AutoModelForTokenClassification`` (``classifier``, Linear(H, C) on every token);
- ``question-answering``: ``AutoModelForQuestionAnswering`` (``qa_outputs``, Linear(H, 2) on every token).

Where the pooled feature goes per family (:mod:`mtl.model.families`): BERT keeps its pooler in the base model;
RoBERTa's pooler dense becomes ``classifier.dense`` (sequence) or stays ``roberta.pooler`` (multiple choice);
ELECTRA's is ``classifier.dense`` or ``sequence_summary.summary``; DeBERTa-v2's ``pooler.dense``; DistilBERT's
``pre_classifier``. The head's Linear is the family's last Linear (``classifier``, ``classifier.out_proj``,
``qa_outputs``). An architecture not in the table is mapped the BERT way when its transformers model has exactly
those weights, else refused in one line.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers import (
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from mtl.errors import MtlError
from mtl.model.attention import plain_attention
from mtl.model.families import BERT, CHOICE, KINDS, QA, SEQUENCE, TOKENS, family

AUTO_CLASSES = {SEQUENCE: AutoModelForSequenceClassification, CHOICE: AutoModelForMultipleChoice,
                TOKENS: AutoModelForTokenClassification, QA: AutoModelForQuestionAnswering}
SUPPORTED = "BERT, MiniLM, MobileBERT, RoBERTa, XLM-R, CamemBERT, DeBERTa-v2/v3, ELECTRA, DistilBERT"


def build_exported(kind: str, encoder: nn.Module, pooler_state: dict | None, head_linear: nn.Linear, *,
                   num_labels: int | None = None, labels: list[str] | None = None, problem_type: str | None = None,
                   dropout: float | None = None, encoder_state: dict | None = None):
    """The transformers model of ``kind`` with ``encoder``'s weights (``encoder_state`` if given), the pooler
    mtl added to it (``pooler_state``: ``dense.weight``/``dense.bias``; None when the encoder has its own pooler)
    and ``head_linear`` as the last Linear; in eval mode. ``num_labels`` defaults to the Linear's outputs (2 for
    question answering: start and end), ``labels`` names them (``id2label``), ``problem_type`` is the config's,
    ``dropout`` the classifier dropout recorded in the config. Anything that does not map is a one-line MtlError."""
    if kind not in AUTO_CLASSES:
        raise MtlError(f"unknown export kind {kind!r} (one of {', '.join(KINDS)})")
    config = copy.deepcopy(encoder.config)
    plain_attention(config)  # transformers' own attention (a CPU training run switches to mtl's)
    model_type = getattr(config, "model_type", type(encoder).__name__)
    spec = family(config)
    refusal = (f"cannot export backbone architecture {model_type!r} ({type(encoder).__name__}) as a transformers "
               f"{kind} model: the families that map exactly are {SUPPORTED}; `mtl predict RUN` still works")
    state = dict(encoder_state if encoder_state is not None else encoder.state_dict())
    own = {k.partition(".")[2]: v for k, v in state.items() if k.startswith("pooler.")}
    if pooler_state is not None and own:
        raise MtlError(f"{refusal} (the encoder has a pooler of its own and another was given)")
    if pooler_state is None and spec is not None and spec.activation is not None:
        raise MtlError(f"{refusal} (its pooler's weights are missing)")
    if spec is None and kind in (SEQUENCE, CHOICE) and not own:
        raise MtlError(refusal)
    spec = spec or BERT
    outputs = int(head_linear.out_features)
    _configure(config, kind, spec, num_labels or outputs, labels, problem_type, dropout)
    try:
        model = AUTO_CLASSES[kind].from_config(config)
    except Exception as exc:
        raise MtlError(f"{refusal} ({type(exc).__name__})") from None
    prefix = model.base_model_prefix
    pooler_target = spec.pooler.get(kind) if kind in (SEQUENCE, CHOICE) else None
    mapped = {f"{prefix}.{k}": v for k, v in state.items()
              if not (k.startswith("pooler.") and (pooler_target is not None or kind in (TOKENS, QA)))}
    if pooler_target is not None:
        source = pooler_state if pooler_state is not None else own
        mapped.update({f"{pooler_target}.{k.partition('.')[2]}": v for k, v in source.items()
                       if k.startswith("dense.")})
    mapped.update({f"{spec.head[kind]}.{k}": v for k, v in head_linear.state_dict().items()})
    expected = model.state_dict()
    if set(expected) != set(mapped) or any(tuple(expected[k].shape) != tuple(v.shape) for k, v in mapped.items()):
        missing = sorted(set(expected) - set(mapped))[:2] + sorted(set(mapped) - set(expected))[:2]
        raise MtlError(f"{refusal} (weights that do not map: {', '.join(missing) or 'shapes'})")
    with torch.no_grad():
        model.load_state_dict({k: v.detach().to(expected[k]) for k, v in mapped.items()})
    return model.eval()


def _configure(config, kind: str, spec, num_labels: int, labels, problem_type, dropout) -> None:
    config.architectures = None
    config.num_labels = num_labels if kind != CHOICE else 1
    if kind != CHOICE:
        names = list(labels) if labels is not None else (
            ["start", "end"] if kind == QA else ["score"] if num_labels == 1 else [str(i) for i in range(num_labels)])
        if len(names) != config.num_labels:
            raise MtlError(f"{len(names)} label names for {config.num_labels} outputs")
        config.id2label = dict(enumerate(names))
        config.label2id = {name: i for i, name in enumerate(names)}
    if problem_type is not None:
        config.problem_type = problem_type
    if dropout is not None and hasattr(config, "classifier_dropout"):
        config.classifier_dropout = float(dropout)
    if getattr(config, "model_type", None) == "deberta-v2":
        config.pooler_hidden_size = int(config.hidden_size)
    if kind == CHOICE:
        for key, value in spec.choice_config:
            setattr(config, key, value)
