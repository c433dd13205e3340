"""An exported model folder (``mtl export``'s output): its file names, its manifest, the model of a feature-map export.

Written by :mod:`mtl.runs.export`, read by :mod:`mtl.runs.predict`; both import this module and nothing of each
other. Three kinds of export (``kind`` in ``mtl_export.json``):

- ``transformers``: a plain ``AutoModelForSequenceClassification`` folder.
- ``feature-map``: the run's weighting put a module between the pooler and the classifier
  (``model.feature_map``). The encoder is written in Hugging Face format under ``DIR/encoder/``; the target's
  part of that module (``Weighting.inference_module``, keys unprefixed) and the classifier (``classifier.*``)
  in ``DIR/mtl_head.safetensors``; ``feature_map: {weighting, options, encoder, head}`` says how the module is
  rebuilt: ``mtl.create("weighting", weighting, **options).inference_module(task, hidden_size)``.
- ``task-attention``: the ``activation`` task embedding (TEA-BERT, Q̂ = W'·act(Q + W·e_t)) changes every
  self-attention layer, so plain BERT cannot compute it. The encoder is written under ``DIR/encoder/``, the
  classifier in ``DIR/mtl_head.safetensors``, the target's constant s = W·e_t (``shift`` [L, 3, D]) and W'
  (``post`` [L, 3, D, D]) in ``DIR/mtl_task_attention.safetensors``; ``task_attention: {activation, file,
  encoder, head}`` says how :class:`mtl.model.task_embedding.TargetAttention` rebuilds it on the encoder.
  A feature-map export of such a run (MMoE with ``activation``) has both blocks and keeps kind ``feature-map``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers.utils import logging as hf_logging

from mtl.contract import loader
from mtl.errors import MtlError, UnknownNameError
from mtl.model.task_embedding import TargetAttention
from mtl.runs.folder import EXPORT_MANIFEST
from mtl.runs.restore import load_state

MANIFEST = EXPORT_MANIFEST
HEAD_FILE = "mtl_head.safetensors"
ENCODER_DIR = "encoder"
ATTENTION_FILE = "mtl_task_attention.safetensors"
FORMAT_VERSION = 3
PLAIN = "transformers"
FEATURE_MAP = "feature-map"
TASK_ATTENTION = "task-attention"
KINDS = (PLAIN, FEATURE_MAP, TASK_ATTENTION)
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What in an ``mtl_export.json`` record the loader cannot use (a newer format, an unknown kind, a field of the
    wrong type), or None."""
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"'version' must be an integer >= 1 (got {version!r})"
    if version > FORMAT_VERSION:
        return f"written by a newer mtl (format version {version}; this mtl reads up to {FORMAT_VERSION}): upgrade mtl"
    kind = manifest.get("kind", PLAIN)
    if kind not in KINDS:
        return f"'kind' must be one of {', '.join(KINDS)} (got {kind!r})"
    if not isinstance(manifest.get("task"), str) or not manifest["task"]:
        return f"'task' must be a task name (got {manifest.get('task')!r})"
    for key in ("max_length", "eval_batch_size"):
        value = manifest.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return f"'{key}' must be an integer >= 1 (got {value!r})"
    labels = manifest.get("labels")
    if labels is not None and not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
        return f"'labels' must be a list of label names, or null for a regression task (got {labels!r})"
    columns = manifest.get("text_columns")
    if columns is not None and not (isinstance(columns, list) and 1 <= len(columns) <= 2
                                    and all(isinstance(c, str) and c for c in columns)):
        return f"'text_columns' must be a list of one or two column names (got {columns!r})"
    problem = manifest.get("problem_type")
    if problem is not None and problem not in ("regression", "single_label_classification",
                                               "multi_label_classification"):
        return (f"'problem_type' must be regression, single_label_classification or multi_label_classification "
                f"(got {problem!r})")
    if problem is not None and (problem == "regression") != (labels is None):
        return f"'problem_type' {problem} does not match 'labels' {labels!r}"
    return None


def feature_map_spec(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """``{weighting, options, encoder, head}`` of a feature-map export; None for another kind."""
    if manifest.get("kind", PLAIN) != FEATURE_MAP:
        return None
    block = manifest.get("feature_map")
    if not isinstance(block, dict):
        raise MtlError(f"{MANIFEST}: an export of kind {FEATURE_MAP!r} without its 'feature_map' block")
    weighting, options = block.get("weighting"), block.get("options") or {}
    if not isinstance(weighting, str) or not isinstance(options, dict):
        raise MtlError(f"{MANIFEST}: the feature map's weighting and options are malformed")
    return {"weighting": weighting, "options": options, "encoder": block.get("encoder") or ENCODER_DIR,
            "head": block.get("head") or HEAD_FILE}


def task_attention_spec(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """``{activation, file, encoder, head}`` of an export whose encoder has the ``activation`` task embedding
    (kind ``task-attention``, or a feature-map export with a ``task_attention`` block); None otherwise."""
    block = manifest.get("task_attention")
    if block is None and manifest.get("kind") != TASK_ATTENTION:
        return None
    if not isinstance(block, dict) or not isinstance(block.get("activation"), str):
        raise MtlError(f"{MANIFEST}: an export with the activation task embedding needs a task_attention block "
                       "naming its activation")
    return {"activation": block["activation"], "file": block.get("file") or ATTENTION_FILE,
            "encoder": block.get("encoder") or ENCODER_DIR, "head": block.get("head") or HEAD_FILE}


def task_attention(encoder: nn.Module, state: dict, activation: str, path: Path):
    """The target's ``activation`` task embedding rebuilt on ``encoder`` from ``state`` (``shift``, ``post``, as
    written to ``path``): :class:`mtl.model.task_embedding.TargetAttention`, its hooks installed."""
    try:
        module = TargetAttention(encoder, activation)
    except ValueError as exc:
        raise MtlError(f"{path}: {exc}") from None
    load_state(module, state, path, f"the activation task embedding of {type(encoder).__name__}")
    return module


def inference_module(weighting, name: str, task: str, hidden_size: int, feature_map=None):
    """``weighting.inference_module(task, hidden_size)``; a one-line MtlError when the weighting does not say how
    its module is rebuilt, or builds one whose parameters are not a slice of the trained ``feature_map``."""
    where = f"the model has a feature map{f' ({type(feature_map).__name__})' if feature_map is not None else ''}"
    try:
        module = weighting.inference_module(task, hidden_size)
    except MtlError:
        raise
    except Exception as exc:
        raise MtlError(f"weighting {name!r}: inference_module({task!r}) failed ({type(exc).__name__}: {exc})") from None
    if module is None:
        raise MtlError(f"{where} from weighting {name!r}, which does not say how to rebuild it for inference "
                       "(Weighting.inference_module), so it cannot be exported; `mtl predict RUN` still works")
    if feature_map is not None:
        trained = feature_map.state_dict()
        extra = [k for k, v in module.state_dict().items()
                 if k not in trained or tuple(trained[k].shape) != tuple(v.shape)]
        if extra:
            raise MtlError(f"weighting {name!r}: inference_module({task!r}) has parameters that are not in the trained "
                           f"feature map ({', '.join(extra[:3])}); `mtl predict RUN` still works")
    return module


def create_weighting(name: str, options: dict[str, Any], where: str):
    """The weighting ``name`` built with ``options`` (not set up), to ask it for its inference module."""
    try:
        return loader.create("weighting", name, **options)
    except UnknownNameError as exc:
        raise MtlError(f"{where}: needs weighting {name!r} (the module between backbone and heads), which is not "
                       f"installed; {exc}") from None


def inputs(batch: dict) -> dict:
    """The encoder's inputs of a padded batch."""
    return {k: batch[k] for k in INPUTS if k in batch}


def quiet_transformers():
    """Silence transformers' notices and progress bars; returns the function that restores them."""
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    def restore() -> None:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()

    return restore


class FeatureMapClassifier(nn.Module):
    """An exported target model that is not a plain classifier: encoder → pooled → ``module(pooled, task)``
    (none: pooled) → classifier. ``task_attention`` (:func:`task_attention`) is held here so that it moves with
    the model; its hooks on the encoder's query/key/value do its work."""

    def __init__(self, encoder: nn.Module, module: nn.Module | None, classifier: nn.Linear, task: str,
                 task_attention: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder, self.module, self.classifier, self.task = encoder, module, classifier, task
        self.task_attention = task_attention

    def forward(self, batch: dict) -> torch.Tensor:
        out = self.encoder(**inputs(batch), return_dict=True)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            pooled = out.last_hidden_state[:, 0]
        return self.classifier(self.module(pooled, self.task) if self.module is not None else pooled)


def split_head(state: dict, path: Path) -> tuple[dict, dict]:
    """``mtl_head.safetensors``'s tensors as (the module's state, the classifier's state)."""
    module = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    classifier = {k[len("classifier."):]: v for k, v in state.items() if k.startswith("classifier.")}
    if not classifier:
        raise MtlError(f"{path}: no classifier.* tensors (not an mtl export head)")
    return module, classifier
