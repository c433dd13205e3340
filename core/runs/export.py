"""Exporting the deployable target model of a run (DESIGN.md, "Runs" and MAMT "Plug-out").

What is exported is the backbone plus the target head, nothing else: the auxiliary heads, the other tasks'
task vectors and any training-only weighting state (MAMT's memory, kept in ``checkpoint/weighting.safetensors``)
are plugged out simply by not being written.

- A backbone of a family mtl maps (BERT, MiniLM, MobileBERT, RoBERTa, XLM-R, CamemBERT, DeBERTa-v2, ELECTRA,
  DistilBERT: the backbone's pooled feature is what the family's classifier applies its last Linear to, see
  :mod:`mtl.model.families` and :mod:`mtl.runs.families`) is written with ``save_pretrained``:
  ``AutoModelForSequenceClassification.from_pretrained(DIR)`` and ``AutoTokenizer.from_pretrained(DIR)`` load it
  with plain transformers.
- Task embeddings (TEA-BERT) fold exactly into plain BERT: ``input`` adds the target's vector to every row of
  the word-embedding matrix (the embedding of any token is then the word vector plus the task vector, as in
  training); ``attention`` adds the target's vectors to the biases of every layer's query/key/value Linear;
  ``projected`` does the same with the target's W^l·e_t (a constant per layer and slot once the task is fixed).
- ``activation`` (Q̂ = W'·act(Q + W·e_t)) cannot fold: it is another architecture (kind ``task-attention``,
  :mod:`mtl.runs.exported`). The encoder goes to ``DIR/encoder/``, the classifier to ``DIR/mtl_head.safetensors``
  and what the target's inference needs (its constant W·e_t per layer and slot, W', the activation's name in the
  manifest) to ``DIR/mtl_task_attention.safetensors``; ``mtl predict DIR`` rebuilds the hooks on the encoder.
- A model whose weighting put a module between pooler and heads (``model.feature_map``) is another
  architecture: the weighting says through the contract (``Weighting.inference_module``) which part of that
  module the target's inference needs; the encoder is written in Hugging Face format under ``DIR/encoder/`` and
  that part plus the target's classifier in ``DIR/mtl_head.safetensors`` (:mod:`mtl.runs.exported`);
  ``mtl predict DIR`` reads them (plain transformers cannot load a classifier from it, and ``DIR`` has no
  ``config.json`` so that it cannot be mistaken for one). The parameters of the feature map the target does not
  need (e.g. the other tasks' gates) are plugged out.

Every export is checked before it is written: the exported model must give the trained model's logits on a
few inputs (for a feature-map export, with the module rebuilt from the manifest as ``mtl predict`` rebuilds it).
``mtl_export.json`` says what was written, the task, its labels and metrics, the source run and what was
plugged out.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModel

from mtl import locks
from mtl.data.batching import encode
from mtl.data.examples import Examples
from mtl.errors import MtlError
from mtl.model.attention import plain_attention
from mtl.model.families import SEQUENCE
from mtl.runs import card, folding
from mtl.runs import folder as run_folder
from mtl.runs.config import RunConfig
from mtl.runs.exported import (
    ATTENTION_FILE,
    ENCODER_DIR,
    FEATURE_MAP,
    FORMAT_VERSION,
    HEAD_FILE,
    MANIFEST,
    PLAIN,
    TASK_ATTENTION,
    FeatureMapClassifier,
    create_weighting,
    inference_module,
    quiet_transformers,
    task_attention,
)
from mtl.runs.families import build_exported
from mtl.runs.folder import RunFolder
from mtl.runs.restore import load_state

__all__ = ["ENCODER_DIR", "HEAD_FILE", "MANIFEST", "export_model"]

#: the run options the manifest's ``source`` records
SOURCE_KEYS = ("target", "aux", "weighting", "sampler", "backbone", "options", "seed")


def export_model(model, tasks: dict, target: str, out_dir: str | Path, *, run_dir: str | Path | None = None,
                 overwrite: bool = False, max_length: int | None = None, weighting=None,
                 model_id: str | None = None) -> dict[str, Any]:
    """Write the deployable model of task ``target`` of ``model`` (a :class:`mtl.model.MultiTaskModel`) to
    ``out_dir`` and return the manifest (``mtl_export.json``) with ``path`` and ``files`` added.

    ``tasks`` maps task names to :class:`mtl.Task` (as ``Trainer.tasks`` and ``load_run`` give them). With
    ``run_dir`` (the run folder; its ``config.json``, ``eval.json`` and ``summary.json`` are read if present) the
    manifest records the run, the target's metrics and the training-only state that was left out. A model with a
    feature map between backbone and heads needs the run folder's configuration (the manifest records the run's
    weighting and options, from which ``mtl predict`` rebuilds the target's module); ``weighting`` is the run's
    :class:`mtl.Weighting` instance (the trainer's own), else one is built from that configuration. Nothing is
    written when the model cannot be exported (one-line :class:`MtlError`); the folder appears complete or not
    at all. Its ``README.md`` is the model card (:mod:`mtl.runs.card`), naming the model ``model_id`` (default:
    ``out_dir`` as given).
    """
    out_dir = Path(out_dir)
    if target not in tasks or target not in model.heads:
        raise MtlError(f"task {target!r} is not a task of this model ({', '.join(model.heads)})")
    with locks.FolderLock(out_dir, "mtl export"):
        return _export(model, tasks, target, out_dir, run_dir=run_dir, overwrite=overwrite, max_length=max_length,
                       weighting=weighting, model_id=model_id)


def _export(model, tasks: dict, target: str, out_dir: Path, *, run_dir: str | Path | None, overwrite: bool,
            max_length: int | None, weighting, model_id: str | None) -> dict[str, Any]:
    run_folder.check_empty(out_dir, overwrite, "--output", reads=[run_dir] if run_dir is not None else [])
    task = tasks[target]
    run_info = _run_info(RunFolder(run_dir), target) if run_dir is not None else {}
    max_length = max_length or run_info.get("max_length") or RunConfig.max_length
    backbone = model.backbone
    encoder = getattr(backbone, "encoder", None)
    if encoder is None or not hasattr(encoder, "config"):
        raise MtlError(f"backbone {type(backbone).__name__} is not a Hugging Face encoder; it cannot be exported "
                       "(`mtl predict RUN` still works)")
    tokenizer = backbone.tokenizer
    mode = getattr(backbone, "task_embedding_mode", "none")
    vectors = folding.task_vectors(model, target) if mode != "none" else None
    attention = folding.task_attention_state(model, target) if mode == "activation" else None
    kind = FEATURE_MAP if model.feature_map is not None else TASK_ATTENTION if attention is not None else PLAIN
    pooler = getattr(backbone, "pooler", None)
    if pooler is not None and kind != PLAIN:
        raise MtlError(f"cannot export the {type(encoder).__name__} backbone as a {kind} model: the pooler mtl adds "
                       "to it is not part of that export format; `mtl predict RUN` still works")
    spec = _feature_map(model, target, run_info, weighting) if kind == FEATURE_MAP else None
    head = model.heads[target]
    device = next(model.parameters()).device
    encoder_state = {k: v.detach() for k, v in encoder.state_dict().items()}

    if kind == PLAIN:
        exported = _classifier(encoder, encoder_state, head, task, pooler)
        base = exported.base_model
    else:
        base = AutoModel.from_config(_plain_config(encoder))
        _load_base(base, encoder_state, encoder)
    folded = folding.fold(base, mode, vectors) if vectors is not None and attention is None else None
    base.to(device)
    if kind == PLAIN:
        exported.to(device).eval()
        forward = lambda batch: task.kind.exported_logits(task, exported, batch)  # noqa: E731
        head_state = None
    else:
        head_state = {**(spec.pop("state") if spec is not None else {}),
                      **{f"classifier.{k}": v.detach().cpu().clone() for k, v in head.classifier.state_dict().items()}}
        # checked as `mtl predict DIR` will load it: the module rebuilt from the manifest's weighting and options,
        # the activation task embedding rebuilt on the plain encoder from the tensors written
        rebuilt = _rebuild(spec, target, model.hidden_size, head_state, head.classifier) if spec is not None else None
        hooks = (task_attention(base, attention["state"], attention["activation"], Path(ATTENTION_FILE))
                 if attention is not None else None)
        forward = FeatureMapClassifier(base, rebuilt, _classifier_copy(head.classifier, head_state), target,
                                       task_attention=hooks)
        forward = forward.to(device).eval()
    _verify(model, target, task, tokenizer, forward, max_length, device)

    others = [n for n in model.heads if n != target]
    plugged_out = [f"auxiliary heads: {', '.join(others)}"] if others else []
    if spec is not None and spec["unused"]:
        plugged_out.append(f"feature-map parameters of weighting {spec['weighting']!r} that {target} does not use: "
                           + ", ".join(spec["unused"]))
    if vectors is not None and len(model.task_ids) > 1:
        kept = "kept beside the encoder" if attention is not None else "folded in"
        plugged_out.append(f"task vectors of the other tasks ({mode} task embedding; the target's is {kept})")
    if run_info.get("weighting_state"):
        plugged_out.append(f"weighting {run_info['weighting']!r} state ({', '.join(run_info['weighting_state'])}) "
                           f"in {run_info['weighting_state_file']}: training-only, not exported")

    manifest: dict[str, Any] = {
        "format": "mtl-export",
        "version": FORMAT_VERSION,
        "kind": kind,
        "loadable_with_transformers": kind == PLAIN,
        "export_class": task.kind.export_class,  # the transformers class a plain export loads with
        "task": target,
        "task_options": run_info.get("task_options", {}),
        "text_columns": list(task.text_columns),
        "labels": list(task.labels) if task.labels else None,  # None: regression, or a type without classes (spans)
        "type": task.kind.name,
        "problem_type": task.kind.problem_type(task),
        "num_labels": task.num_outputs,
        "metrics": run_info.get("metrics", {}),
        "task_embedding": mode,
        "folded": folded,
        **({"task_attention": {"activation": attention["activation"], "file": ATTENTION_FILE,
                               "encoder": ENCODER_DIR, "head": HEAD_FILE}} if attention is not None else {}),
        "plugged_out": plugged_out,
        "max_length": max_length,
        "eval_batch_size": run_info.get("eval_batch_size") or RunConfig.eval_batch_size,
        "data": run_info.get("data", {}),
        "source": run_info.get("source", {}),
    }
    manifest["card"] = card.card_info(backbone, tasks, target, run_info.get("config"))
    if kind == FEATURE_MAP:
        manifest["feature_map"] = {"weighting": spec["weighting"], "options": spec["options"],
                                   "encoder": ENCODER_DIR, "head": HEAD_FILE}
        manifest["note"] = (f"weighting {spec['weighting']!r} puts a module ({spec['module']}) between the pooler and "
                            "the classifier: plain transformers cannot load this as a classifier "
                            f"(AutoModel.from_pretrained(DIR/{ENCODER_DIR}) loads the encoder alone); "
                            "`mtl predict DIR` loads the whole model")
    elif kind == TASK_ATTENTION:
        manifest["note"] = (f"the activation task embedding (TEA-BERT: Q̂ = W'·act(Q + W·e_t), act = "
                            f"{attention['activation']}) changes every self-attention layer: plain transformers cannot "
                            f"compute it (AutoModel.from_pretrained(DIR/{ENCODER_DIR}) loads the encoder without it); "
                            f"{ATTENTION_FILE} holds the target's W·e_t per layer and slot and W'; "
                            "`mtl predict DIR` loads the whole model")
    else:
        manifest["note"] = (f"plain transformers: {task.kind.export_class}.from_pretrained(DIR) and "
                            "AutoTokenizer.from_pretrained(DIR)")
    if kind == FEATURE_MAP and attention is not None:
        manifest["note"] += (f"; the encoder also has the activation task embedding (act = {attention['activation']}), "
                             f"rebuilt from {ATTENTION_FILE}")

    def write(folder: Path) -> None:
        restore = quiet_transformers()
        try:
            save(folder)
        finally:
            restore()

    def save(folder: Path) -> None:
        if kind == PLAIN:
            exported.save_pretrained(folder)
        else:
            base.save_pretrained(folder / ENCODER_DIR)
            run_folder.save_tensors(folder / HEAD_FILE, head_state,
                                    {"format": "pt", "kind": "mtl-feature-map-head", "task": target,
                                     "weighting": spec["weighting"] if spec is not None else ""})
        if attention is not None:
            run_folder.save_tensors(folder / ATTENTION_FILE, attention["state"],
                                    {"format": "pt", "kind": "mtl-task-attention", "task": target,
                                     "activation": attention["activation"]})
        tokenizer.save_pretrained(folder)
        run_folder.write_json(folder / MANIFEST, manifest)
        card.write(folder, manifest, model_id or str(out_dir))

    # about what it writes (the whole multi-task model's tensors bound the target's), checked against the free space
    needed = sum(t.numel() * t.element_size() for t in model.state_dict().values()) + (1 << 20)
    files = run_folder.write_folder_atomically(out_dir, write, needed=needed)
    return {**manifest, "path": str(out_dir), "files": files}


# ------------------------------------------------------------------------------------------------ feature map


def _feature_map(model, target: str, run_info: dict, weighting) -> dict[str, Any]:
    """What a feature-map export writes of ``model.feature_map``: the weighting's name and options (from the run
    folder's configuration), its inference module's state (the trained values of its keys), the unused rest."""
    feature_map = model.feature_map
    config = run_info.get("config")
    if config is None:
        raise MtlError(f"the model has a feature map ({type(feature_map).__name__}) between backbone and heads: "
                       "exporting it needs the run folder (run_dir=) whose config.json names the weighting and "
                       "its options")
    name = config.weighting
    options = run_info.get("weighting_options", {})
    if weighting is None:
        weighting = create_weighting(name, options, str(run_info["config_path"]))
    module = inference_module(weighting, name, target, model.hidden_size, feature_map)
    trained = feature_map.state_dict()
    keys = list(module.state_dict())
    if any(k.startswith("classifier.") for k in keys):
        raise MtlError(f"weighting {name!r}: inference_module({target!r}) names a parameter classifier.*, which "
                       f"{HEAD_FILE} keeps for the target's classifier; `mtl predict RUN` still works")
    state = {k: trained[k].detach().cpu().clone() for k in keys}
    return {"weighting": name, "options": options, "module": type(module).__name__, "state": state,
            "unused": _unused(trained, state)}


def _unused(trained: dict, kept: dict) -> list[str]:
    """The feature map's parameters that are not exported: a submodule by its name when none of its parameters
    is (``gates.rte``), else the parameter itself (``gates.rte`` of a ParameterDict)."""
    unused = []
    for key in trained:
        if key in kept:
            continue
        owner = key.rpartition(".")[0]
        whole = owner and not any(k in kept for k in trained if k.startswith(owner + "."))
        unused.append(owner if whole else key)
    return list(dict.fromkeys(unused))


def _rebuild(spec: dict, target: str, hidden_size: int, head_state: dict, classifier: nn.Linear) -> nn.Module:
    """The target's module as ``mtl predict`` rebuilds it: a weighting built from the manifest's name and options,
    its inference module, the exported state."""
    weighting = create_weighting(spec["weighting"], spec["options"], "the run's configuration")
    module = inference_module(weighting, spec["weighting"], target, hidden_size)
    state = {k: v for k, v in head_state.items() if not k.startswith("classifier.")}
    load_state(module, state, Path(HEAD_FILE),
               f"the module weighting {spec['weighting']!r} rebuilds from the options the manifest records")
    return module.to(next(classifier.parameters()).device).eval()


def _classifier_copy(classifier: nn.Linear, head_state: dict) -> nn.Linear:
    linear = copy.deepcopy(classifier)
    linear.load_state_dict({k[len("classifier."):]: v for k, v in head_state.items() if k.startswith("classifier.")})
    return linear


# ------------------------------------------------------------------------------------------------ building


def _plain_config(encoder):
    """A copy of the encoder's config on transformers' own attention (a CPU training run switches it to mtl's)."""
    config = copy.deepcopy(encoder.config)
    plain_attention(config)
    return config


def _classifier(encoder, encoder_state: dict, head, task, pooler: nn.Module | None):
    """The transformers model of the task type's export kind (``AutoModelForSequenceClassification``, ...ForMultiple
    Choice, ...ForTokenClassification, ...ForQuestionAnswering) of the encoder's family with the encoder's weights,
    the backbone's pooler (``pooler``: the one mtl adds to ELECTRA, DeBERTa-v2, DistilBERT) and the head's Linear
    (:func:`mtl.runs.families.build_exported`)."""
    kind = task.kind
    pooler_state = {k: v.detach() for k, v in pooler.state_dict().items()} if pooler is not None else None
    return build_exported(kind.export_kind, encoder, pooler_state, head.classifier,
                          num_labels=head.classifier.out_features if kind.export_kind != SEQUENCE else task.num_outputs,
                          labels=kind.export_labels(task), problem_type=kind.problem_type(task),
                          dropout=float(head.dropout.p), encoder_state=encoder_state)


def _load_base(base, state: dict, encoder) -> None:
    expected = base.state_dict()
    if set(expected) != set(state) or any(tuple(expected[k].shape) != tuple(v.shape) for k, v in state.items()):
        raise MtlError(f"the encoder {type(encoder).__name__} does not map onto {type(base).__name__}")
    base.load_state_dict({k: v.to(expected[k].device) for k, v in state.items()})


def _verify(model, target: str, task, tokenizer, forward, max_length: int, device) -> None:
    """The exported model must give the trained model's logits (eval mode) on a few inputs."""
    rows = task.kind.sample_rows(task)
    sample = Examples([], [], "export check", rows) if task.kind.structured else Examples(
        list(zip(*rows.values(), strict=True)), [], "export check")
    data = encode(sample, tokenizer, max_length, task)
    batch = {k: v.to(device) for k, v in data.collate(list(range(len(data)))).items() if k != "labels"}
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


def _run_info(run: RunFolder, target: str) -> dict[str, Any]:
    """What the manifest records about the source run (files that are missing are skipped), and the run's
    configuration (``config``, ``weighting_options``) that a feature-map export needs."""
    info: dict[str, Any] = {"config_path": run.config_path, "source": {"run": str(run.path.resolve())}}
    read = run.run_record(missing_ok=True)
    if read is not None:
        config = read.config
        routed = config.plugin_options()
        info.update(config=config, task_options=routed.get(("task", target), {}),
                    weighting_options=routed.get(("weighting", config.weighting), {}),
                    max_length=config.max_length, eval_batch_size=config.eval_batch_size, weighting=config.weighting)
        info["data"] = {"data_dir": config.data_dir, "eval_limit": config.eval_limit,
                        "data": {k: v for k, v in config.data.items() if k.partition(".")[0] == target}}
        info["source"].update({k: getattr(config, k) for k in SOURCE_KEYS})
    summary = run.summary()
    if isinstance(summary, dict):
        info["source"].update({k: summary.get(k) for k in ("best_epoch", "best_step", "selection")})
    evals = run.eval()
    if isinstance(evals, dict) and isinstance(evals.get(target), dict):
        info["metrics"] = evals[target]
    info["weighting_state"] = run.weighting_state_names()
    info["weighting_state_file"] = run.weighting_state_path.relative_to(run.path).as_posix()
    return info
