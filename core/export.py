"""Exporting the deployable target model of a run (DESIGN.md, "Runs" and MAMT "Plug-out").

What is exported is the backbone plus the target head, nothing else: the auxiliary heads, the other tasks'
task vectors and any training-only weighting state (MAMT's memory, kept in ``checkpoint/weighting.safetensors``)
are plugged out simply by not being written.

- A BERT-family backbone (BERT, MiniLM, MobileBERT: ``AutoModelForSequenceClassification`` feeds
  ``classifier(dropout(pooler_output))``, exactly what a :class:`mtl.model.Head` computes) is written with
  ``save_pretrained``: ``AutoModelForSequenceClassification.from_pretrained(DIR)`` and
  ``AutoTokenizer.from_pretrained(DIR)`` load it with plain transformers.
- Task embeddings (TEA-BERT) fold exactly into plain BERT: ``input`` adds the target's vector to every row of
  the word-embedding matrix (the embedding of any token is then the word vector plus the task vector, as in
  training); ``attention`` adds the target's vectors to the biases of every layer's query/key/value Linear.
- MMoE (experts and gates between pooler and head) is another architecture: the encoder is written in
  Hugging Face format under ``DIR/encoder/`` and the experts, the target's gate and its head in
  ``DIR/mtl_head.safetensors``; ``mtl predict DIR`` reads them (plain transformers cannot load a classifier
  from it, and ``DIR`` has no ``config.json`` so that it cannot be mistaken for one).

Every export is checked before it is written: the exported model must give the trained model's logits on a
few inputs. ``mtl_export.json`` says what was written, the task, its labels and metrics, the source run and
what was plugged out.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import MtlError

MANIFEST = "mtl_export.json"
HEAD_FILE = "mtl_head.safetensors"
ENCODER_DIR = "encoder"
FORMAT_VERSION = 1


def check_out(out_dir: Path, overwrite: bool) -> None:
    """Refuse to write into something that already holds files, unless ``overwrite``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise MtlError(f"--out {out_dir} exists and is not a folder")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise MtlError(f"--out {out_dir} already exists and is not empty; choose another folder or pass --overwrite")


def export_model(model, tasks: dict, target: str, out_dir: str | Path, *, run_dir: str | Path | None = None,
                 overwrite: bool = False, max_length: int | None = None) -> dict[str, Any]:
    """Write the deployable model of task ``target`` of ``model`` (a :class:`mtl.model.MultiTaskModel`) to
    ``out_dir`` and return the manifest (``mtl_export.json``) with ``path`` and ``files`` added.

    ``tasks`` maps task names to :class:`mtl.Task` (as ``Trainer.tasks`` and ``load_run`` give them). With
    ``run_dir`` (the run folder; its ``config.json``, ``eval.json`` and ``summary.json`` are read if present) the
    manifest records the run, the target's metrics and the training-only state that was left out. Nothing is
    written when the model cannot be exported (one-line :class:`MtlError`); the folder appears complete or
    not at all.
    """
    out_dir = Path(out_dir)
    if target not in tasks or target not in model.heads:
        raise MtlError(f"task {target!r} is not a task of this model ({', '.join(model.heads)})")
    check_out(out_dir, overwrite)
    task = tasks[target]
    run_info = _run_info(Path(run_dir), target) if run_dir is not None else {}
    max_length = max_length or run_info.get("max_length") or 512
    backbone = model.backbone
    encoder = getattr(backbone, "encoder", None)
    if encoder is None or not hasattr(encoder, "config"):
        raise MtlError(f"backbone {type(backbone).__name__} is not a Hugging Face encoder; it cannot be exported "
                       "(`mtl predict RUN` still works)")
    tokenizer = backbone.tokenizer
    mode = getattr(backbone, "task_embedding_mode", "none")
    vectors = _task_vectors(model, target) if mode != "none" else None
    kind = "transformers" if model.feature_map is None else "mmoe"
    if kind == "mmoe" and not _is_mmoe(model.feature_map):
        raise MtlError(f"the model has a feature map {type(model.feature_map).__name__} between backbone and heads "
                       "that cannot be exported; `mtl predict RUN` still works on the run folder")
    head = model.heads[target]
    device = next(model.parameters()).device
    encoder_state = {k: v.detach() for k, v in encoder.state_dict().items()}

    if kind == "transformers":
        exported = _classifier(encoder, encoder_state, head, task, target)
        base = exported.base_model
    else:
        from transformers import AutoModel

        base = AutoModel.from_config(copy.deepcopy(encoder.config))
        _load_base(base, encoder_state, encoder)
    folded = _fold(base, mode, vectors) if vectors is not None else None
    base.to(device)
    if kind == "transformers":
        exported.to(device).eval()
        forward = lambda batch: exported(**_inputs(batch)).logits  # noqa: E731
        head_state = None
    else:
        mixture = _target_mixture(model.feature_map, target)
        head_state = {**{k: v.detach().cpu().clone() for k, v in mixture.state_dict().items()},
                      **{f"classifier.{k}": v.detach().cpu().clone() for k, v in head.classifier.state_dict().items()}}
        exported_mmoe = MmoeClassifier(base, mixture, copy.deepcopy(head.classifier), target).to(device).eval()
        forward = exported_mmoe
    _verify(model, target, task, tokenizer, forward, max_length, device)

    plugged_out = [f"auxiliary heads: {', '.join(n for n in model.heads if n != target)}"] if len(model.heads) > 1 else []
    if model.feature_map is not None:
        others = [n for n in model.feature_map.gates if n != target]
        if others:
            plugged_out.append(f"MMoE gates of the other tasks: {', '.join(others)}")
    if vectors is not None and len(model.task_ids) > 1:
        plugged_out.append(f"task vectors of the other tasks ({mode} task embedding; the target's is folded in)")
    if run_info.get("weighting_state"):
        plugged_out.append(f"weighting {run_info['weighting']!r} state ({', '.join(run_info['weighting_state'])}) "
                           "in checkpoint/weighting.safetensors: training-only, not exported")

    manifest: dict[str, Any] = {
        "format": "mtl-export",
        "version": FORMAT_VERSION,
        "kind": kind,
        "loadable_with_transformers": kind == "transformers",
        "task": target,
        "task_options": run_info.get("task_options", {}),
        "text_columns": list(task.text_columns),
        "labels": list(task.labels) if task.labels is not None else None,
        "problem_type": "regression" if task.is_regression else "single_label_classification",
        "num_labels": task.num_outputs,
        "metrics": run_info.get("metrics", {}),
        "task_embedding": mode,
        "folded": folded,
        "plugged_out": plugged_out,
        "max_length": max_length,
        "eval_batch_size": run_info.get("eval_batch_size", 128),
        "data": run_info.get("data", {}),
        "source": run_info.get("source", {}),
    }
    if kind == "mmoe":
        manifest["mmoe"] = {"encoder": ENCODER_DIR, "head": HEAD_FILE, "experts": len(model.feature_map.experts),
                            "hidden": model.feature_map.experts[0][0].out_features,
                            "dropout": float(model.feature_map.experts[0][2].p)}
        manifest["note"] = ("MMoE puts gate-weighted experts between the pooler and the classifier: plain transformers "
                            "cannot load this as a classifier (AutoModel.from_pretrained(DIR/encoder) loads the "
                            "encoder alone); `mtl predict DIR` loads the whole model")
    else:
        manifest["note"] = ("plain transformers: AutoModelForSequenceClassification.from_pretrained(DIR) and "
                            "AutoTokenizer.from_pretrained(DIR)")

    def write(folder: Path) -> None:
        from .restore import _quiet_transformers

        restore = _quiet_transformers()
        try:
            save(folder)
        finally:
            restore()

    def save(folder: Path) -> None:
        if kind == "transformers":
            exported.save_pretrained(folder)
        else:
            from safetensors.torch import save_file

            base.save_pretrained(folder / ENCODER_DIR)
            save_file({k: v.contiguous() for k, v in head_state.items()}, str(folder / HEAD_FILE),
                      metadata={"format": "pt", "kind": "mtl-mmoe-head", "task": target})
        tokenizer.save_pretrained(folder)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")

    files = _write_atomically(out_dir, write)
    return {**manifest, "path": str(out_dir), "files": files}


# ------------------------------------------------------------------------------------------------ building


def _classifier(encoder, encoder_state: dict, head, task, target: str):
    """``AutoModelForSequenceClassification`` of the encoder's config with the encoder's weights and the head."""
    from transformers import AutoModelForSequenceClassification

    config = copy.deepcopy(encoder.config)
    model_type = getattr(config, "model_type", type(encoder).__name__)
    config.num_labels = task.num_outputs
    labels = list(task.labels) if task.labels is not None else ["score"]
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    config.problem_type = "regression" if task.is_regression else "single_label_classification"
    config.architectures = None
    if hasattr(config, "classifier_dropout"):
        config.classifier_dropout = float(head.dropout.p)
    unsupported = (f"cannot export backbone architecture {model_type!r} ({type(encoder).__name__}) as a plain "
                   "transformers classifier: only BERT-family encoders (BERT, MiniLM, MobileBERT, ...) whose "
                   "classifier is a Linear on the pooler output map exactly; `mtl predict RUN` still works")
    try:
        classifier = AutoModelForSequenceClassification.from_config(config)
    except Exception as exc:
        raise MtlError(f"{unsupported} ({type(exc).__name__})") from None
    linear = getattr(classifier, "classifier", None)
    base = classifier.base_model
    if (not isinstance(linear, nn.Linear) or base is classifier or getattr(base, "pooler", None) is None
            or linear.in_features != head.classifier.in_features):
        raise MtlError(unsupported)
    try:
        _load_base(base, encoder_state, encoder)
    except MtlError:
        raise MtlError(unsupported) from None
    linear.load_state_dict(head.classifier.state_dict())
    return classifier


def _load_base(base, state: dict, encoder) -> None:
    expected = base.state_dict()
    if set(expected) != set(state) or any(tuple(expected[k].shape) != tuple(v.shape) for k, v in state.items()):
        raise MtlError(f"the encoder {type(encoder).__name__} does not map onto {type(base).__name__}")
    base.load_state_dict({k: v.to(expected[k].device) for k, v in state.items()})


def _task_vectors(model, target: str):
    embedding = model.backbone.task_embedding
    if embedding is None:
        raise MtlError("the backbone has task embeddings switched on but none configured")
    index = embedding.tasks.index(target)
    vectors = embedding.vectors.detach()
    return vectors[index] if embedding.mode == "input" else vectors[:, :, index]


def _fold(base, mode: str, vectors) -> str:
    """Fold the target's task vectors into plain encoder weights; returns a description of what was changed."""
    from .task_embedding import attention_projections, input_embeddings

    with torch.no_grad():
        if mode == "input":
            table = input_embeddings(base)
            table.weight += vectors.to(table.weight)[None, :]
            return "input task embedding added to every row of the word-embedding matrix"
        layers = attention_projections(base)
        if len(layers) != vectors.shape[0]:
            raise MtlError(f"attention task embeddings for {vectors.shape[0]} layers, the encoder has {len(layers)}")
        for i, projections in enumerate(layers):
            for j, linear in enumerate(projections):
                if linear.bias is None:
                    raise MtlError("attention task embeddings cannot be folded into query/key/value without a bias")
                linear.bias += vectors[i, j].to(linear.bias)
    return "attention task embeddings added to the query/key/value biases of every layer"


def _is_mmoe(module) -> bool:
    return type(module).__name__ == "MixtureOfExperts" and hasattr(module, "experts") and hasattr(module, "gates")


def _target_mixture(module, target: str):
    """A copy of an MMoE module with the experts and the target's gate only."""
    from mtl.plugins.weightings.mmoe import MixtureOfExperts

    experts = len(module.experts)
    first = module.experts[0]
    hidden_size, width, dropout = first[0].in_features, first[0].out_features, float(first[2].p)
    mixture = MixtureOfExperts(hidden_size, [target], experts, width, dropout)
    state = {k: v for k, v in module.state_dict().items() if k.startswith("experts.") or k.startswith(f"gates.{target}.")}
    mixture.load_state_dict(state)
    return mixture.to(next(module.parameters()).device)


def _inputs(batch: dict) -> dict:
    return {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}


class MmoeClassifier(nn.Module):
    """An exported MMoE target model: encoder → pooled → experts mixed by the target's gate → classifier."""

    def __init__(self, encoder: nn.Module, mixture: nn.Module, classifier: nn.Linear, task: str) -> None:
        super().__init__()
        self.encoder, self.mixture, self.classifier, self.task = encoder, mixture, classifier, task

    def forward(self, batch: dict) -> torch.Tensor:
        out = self.encoder(**_inputs(batch), return_dict=True)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            pooled = out.last_hidden_state[:, 0]
        return self.classifier(self.mixture(pooled, self.task))


def _verify(model, target: str, task, tokenizer, forward, max_length: int, device) -> None:
    """The exported model must give the trained model's logits (eval mode) on a few inputs."""
    first = ["A short sentence.", "Another, somewhat longer example sentence to make the batch need padding."]
    second = ["Something else entirely, for the second text.", "Short."] if len(task.text_columns) > 1 else None
    batch = tokenizer(first, second, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    batch = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(target, batch)[0].float()
            got = forward(batch).float()
    finally:
        model.train(was_training)
    if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-4, rtol=1e-4):
        gap = (got - expected).abs().max().item() if got.shape == expected.shape else f"shape {tuple(got.shape)}"
        raise MtlError(f"export check failed: the exported model's logits differ from the trained model's ({gap}); "
                       "nothing was written")


# ------------------------------------------------------------------------------------------------ run info


def _run_info(run_dir: Path, target: str) -> dict[str, Any]:
    """What the manifest records about the source run (files that are missing are skipped)."""
    from .config import FIELD_NAMES, RunConfig, plugin_options
    from .restore import training_only_state

    info: dict[str, Any] = {}
    record = _read(run_dir / "config.json")
    if isinstance(record, dict):
        try:
            config = RunConfig(**{k: v for k, v in record.items() if k in FIELD_NAMES})
            routed = plugin_options(config, {"weighting": config.weighting, "sampler": config.sampler,
                                             "backbone": config.backbone})
            info["task_options"] = routed.get(("task", target), {})
        except (TypeError, MtlError):  # a hand-edited config: the manifest just lacks the task's options
            pass
        info["max_length"] = record.get("max_length")
        info["eval_batch_size"] = record.get("eval_batch_size", 128)
        info["weighting"] = record.get("weighting")
        info["data"] = {"data_dir": record.get("data_dir"),
                        "data": {k: v for k, v in (record.get("data") or {}).items() if k.partition(".")[0] == target},
                        "eval_limit": record.get("eval_limit")}
        info["source"] = {k: record.get(k) for k in ("target", "aux", "weighting", "sampler", "backbone", "options", "seed")}
    info.setdefault("source", {})["run"] = str(run_dir.resolve())
    summary = _read(run_dir / "summary.json")
    if isinstance(summary, dict):
        info["source"].update({k: summary.get(k) for k in ("best_epoch", "best_step", "selection")})
    evals = _read(run_dir / "eval.json")
    if isinstance(evals, dict) and isinstance(evals.get(target), dict):
        info["metrics"] = evals[target]
    info["weighting_state"] = training_only_state(run_dir)
    return info


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_atomically(out_dir: Path, write) -> list[str]:
    """``write(folder)`` into a temporary sibling folder, then put it in place of ``out_dir``."""
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    mask = os.umask(0)
    os.umask(mask)
    try:
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes it private; the export is an ordinary folder
        write(tmp)
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return files
