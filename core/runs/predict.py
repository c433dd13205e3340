"""Predicting and evaluating with a trained model: from a run folder or from an exported folder (README,
"Export, predict, eval").

``load_predictor(path, task)`` gives a :class:`Predictor` of a run folder (the model rebuilt by
:func:`mtl.runs.restore.load_run`; any task of the run) or of an exported folder (``mtl_export.json``: a plain
transformers classifier, a feature-map export whose module is rebuilt by the weighting named in the manifest, or
a task-attention export whose ``activation`` task embedding is rebuilt on the encoder, see
:mod:`mtl.runs.exported`). ``parse_lines`` reads `mtl predict`'s input lines. Every problem is a one-line
:class:`mtl.errors.MtlError` naming the file or the line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from mtl.contract import loader
from mtl.contract.task import Task
from mtl.data.batching import encode, sorted_batches
from mtl.data.examples import Examples
from mtl.data.records import from_records
from mtl.errors import MtlError, UnknownNameError, unknown
from mtl.runs import folder as run_folder
from mtl.runs.exported import (
    MANIFEST,
    FeatureMapClassifier,
    create_weighting,
    feature_map_spec,
    inference_module,
    manifest_problem,
    quiet_transformers,
    split_head,
    task_attention,
    task_attention_spec,
)
from mtl.runs.folder import RunFolder
from mtl.runs.restore import load_run, load_state

__all__ = ["Predictor", "load_predictor", "parse_lines"]


class Predictor:
    """A trained model of one task, from a run folder or an exported folder: logits, predictions, metrics.

    ``forward(batch) -> logits`` takes the padded batch of :meth:`mtl.batching.Encoded.collate`.
    ``data`` holds the run's data sources and limit (``data_dir``, ``data``, ``eval_limit``) for :meth:`evaluate`.
    """

    def __init__(self, task, tokenizer, forward, *, kind: str, path: Path, max_length: int, batch_size: int,
                 data: dict | None = None) -> None:
        self.task, self.tokenizer, self.forward = task, tokenizer, forward
        self.kind, self.path, self.max_length, self.batch_size = kind, path, max_length, batch_size
        self.data = data or {}

    def logits(self, encoded) -> torch.Tensor:
        """Logits [N, C] of an :class:`mtl.batching.Encoded` split of a sequence classification, in its order."""
        rows = self.instance_logits(encoded)[0]
        return torch.stack(rows) if rows else torch.empty(0, self.task.num_outputs)

    def instance_logits(self, encoded) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """One logits tensor and one prediction per instance of ``encoded``, in its order (length-sorted batches)."""
        logits: list = [None] * len(encoded)
        predictions: list = [None] * len(encoded)
        with torch.no_grad():
            for positions in sorted_batches(encoded.lengths, self.batch_size):
                batch = {k: v for k, v in encoded.collate(positions).items() if k != "labels"}
                out = self.forward(batch).float().cpu()
                predicted = self.task.predict(out)
                for j, position in enumerate(positions):
                    logits[position], predictions[position] = out[j], predicted[j]
        return logits, predictions

    def encode(self, texts: list[tuple[str, ...]], labels: list | None = None):
        return encode(Examples(list(texts), list(labels or []), "input"), self.tokenizer, self.max_length,
                      self.task)

    def predict(self, given) -> list[dict]:
        """One dict per example, as the task's type presents it (:meth:`mtl.contract.types.TaskType.present`):
        ``{"label", "score", "logits"}`` (classification), ``{"score"}`` (regression), ... ``given``: text tuples,
        or :class:`Examples` (a structured type's, from :func:`parse_lines`)."""
        examples = given if isinstance(given, Examples) else Examples(list(given), [], "input")
        if len(examples) == 0:
            return []
        encoded = encode(examples, self.tokenizer, self.max_length, self.task)
        logits, _ = self.instance_logits(encoded)
        return self.task.kind.present(self.task, examples.columns(self.task), encoded, logits)

    def evaluate(self, split: str, *, data_dir: str | None = None, data: dict[str, str] | None = None,
                 limit: int | None = None) -> dict[str, Any]:
        """The task's metrics on ``split``, computed as the trainer computes them at each epoch end.

        Data comes from ``data`` (``task.split=FILE`` or ``task=FOLDER``), else ``data_dir``, else the run's own
        sources; ``limit`` defaults to the run's ``--eval-limit``.
        """
        name = self.task.name
        if data_dir is not None and not Path(data_dir).is_dir():  # given: a task with packaged data would ignore it
            raise MtlError(f"--data-dir {data_dir}: no such folder")
        data = {**(self.data.get("data") or {}), **(data or {})}
        if data_dir is None:
            data_dir = self.data.get("data_dir")
        if limit is None:
            limit = self.data.get("eval_limit")
        file = data.get(f"{name}.{split}")
        folder = data.get(name) if file is None else None
        source = folder or (data_dir if file is None else None)
        examples = self.task.load(split, data_dir=source, file=file, limit=limit)
        if not examples.labels:
            raise MtlError(f"{examples.source}: split {split!r} of task {name!r} has no labels to evaluate against")
        encoded = encode(examples, self.tokenizer, self.max_length, self.task)
        _, values = self.instance_logits(encoded)
        predictions, references = self.task.kind.score(self.task, encoded, values)
        metrics = self.task.compute_metrics(predictions.numpy(), references.numpy())
        return {"task": name, "split": split, "examples": len(examples), "source": examples.source,
                "model": str(self.path), "metrics": metrics}


def load_predictor(path: str | Path, task: str | None = None) -> Predictor:
    """A :class:`Predictor` for ``task`` (default: the target) of a run folder or an exported folder."""
    path = Path(path)
    if path.is_dir() and (path / MANIFEST).is_file():
        return _export_predictor(path, task)
    run = RunFolder(path)
    if run.is_run():
        return _run_predictor(run, task)
    if not path.exists():
        raise MtlError(f"{path} does not exist (give a run folder or an exported model folder)")
    raise MtlError(f"{path} is neither a run folder ({run.config_path.name} and {run.checkpoints.name}/) nor an "
                   f"exported model ({MANIFEST})")


def _run_predictor(run: RunFolder, task: str | None) -> Predictor:
    config, model, tasks = load_run(run.path)
    name = task or config.target
    if name not in tasks:
        raise MtlError(f"{run.path}: " + unknown("task of this run", name, list(tasks)))
    data = {"data_dir": config.data_dir,
            "data": {k: v for k, v in config.data.items() if k.partition(".")[0] == name},
            "eval_limit": config.eval_limit}
    return Predictor(tasks[name], model.backbone.tokenizer, lambda batch: model(name, batch)[0], kind="run",
                     path=run.path, max_length=config.max_length, batch_size=config.eval_batch_size, data=data)


def _export_predictor(path: Path, task: str | None) -> Predictor:
    manifest = run_folder.read_json(path / MANIFEST, "the export manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != "mtl-export" or "task" not in manifest:
        raise MtlError(f"{path / MANIFEST}: not an mtl export manifest")
    problem = manifest_problem(manifest)
    if problem:
        raise MtlError(f"{path / MANIFEST}: {problem}")
    name = manifest["task"]
    if task is not None and task != name:
        raise MtlError(f"{path} holds the model of task {name!r} only, not {task!r}")
    try:
        spec, attention = feature_map_spec(manifest), task_attention_spec(manifest)
    except MtlError as exc:
        raise MtlError(f"{path}/{exc}") from None
    task_obj = export_task(manifest)
    _check_files(path)
    hf = quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        if spec is not None or attention is not None:
            forward = _encoder_model(path, spec, attention, name, task_obj)
        else:
            import transformers

            auto = getattr(transformers, task_obj.kind.export_class, AutoModelForSequenceClassification)
            model = auto.from_pretrained(str(path)).eval()
            forward = lambda batch: task_obj.kind.exported_logits(task_obj, model, batch)  # noqa: E731
    except MtlError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise MtlError(f"{path}: cannot load the exported model ({reason[:200]})") from None
    finally:
        hf()
    return Predictor(task_obj, tokenizer, forward, kind="export", path=path,
                     max_length=manifest["max_length"], batch_size=manifest["eval_batch_size"],
                     data=manifest.get("data") or {})


def _check_files(path: Path) -> None:
    """A damaged JSON or safetensors file of an export (its folder and ``encoder/``): a one-line error naming the
    file, which transformers' own message does not. Safetensors files are checked by their header and size only."""
    for file in sorted([*path.glob("*.json"), *path.glob("*/*.json"), *path.glob("*.safetensors"),
                        *path.glob("*/*.safetensors")]):
        if file.suffix == ".json":
            run_folder.read_json(file, "a file of the export")
            continue
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except Exception as exc:  # SafetensorError, OSError: a truncated or overwritten file
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise MtlError(f"{file}: not a readable safetensors file ({reason[:160]})") from None


def _encoder_model(path: Path, spec: dict | None, attention: dict | None, name: str, task):
    """An export that is not a plain classifier: the encoder (with the ``activation`` task embedding rebuilt on it
    where ``attention``), the module the manifest's weighting rebuilds (where ``spec``), the classifier."""
    files = spec if spec is not None else attention
    head = path / files["head"]
    head_state = run_folder.load_tensors(head, "export head", missing="the export's module and classifier")
    encoder = AutoModel.from_pretrained(str(path / files["encoder"]))
    hidden_size = int(encoder.config.hidden_size)
    module_state, classifier_state = split_head(head_state, head)
    module = None
    if spec is not None:
        weighting = create_weighting(spec["weighting"], spec["options"], str(path / MANIFEST))
        module = inference_module(weighting, spec["weighting"], name, hidden_size)
        load_state(module, module_state, head, f"the module weighting {spec['weighting']!r} rebuilds for {name!r}")
    elif module_state:
        raise MtlError(f"{head}: tensors no part of this export uses ({', '.join(sorted(module_state)[:3])})")
    hooks = None
    if attention is not None:
        file = path / attention["file"]
        state = run_folder.load_tensors(file, "task attention", missing="the target's activation task embedding")
        hooks = task_attention(encoder, state, attention["activation"], file)
    classifier = nn.Linear(hidden_size, task.num_outputs)
    load_state(classifier, classifier_state, head, f"the classifier of task {name!r}")
    return FeatureMapClassifier(encoder, module, classifier, name, task_attention=hooks).eval()


def export_task(manifest: dict):
    """The task of an export: the registered plugin with the run's options, else one rebuilt from the manifest."""
    name = manifest["task"]
    try:
        return loader.create("task", name, **(manifest.get("task_options") or {}))
    except UnknownNameError:
        task = Task()
        task.name = name
        task.text_columns = tuple(manifest.get("text_columns") or ("sentence",))
        task.labels = tuple(manifest["labels"]) if manifest.get("labels") is not None else None
        metrics = list((manifest.get("metrics") or {}).values())
        task.metrics = tuple(metrics[0]) if metrics else (("pearson",) if task.labels is None else ("accuracy",))
        return task


# ------------------------------------------------------------------------------------------------ input lines


def parse_lines(lines, task, where: str = "<stdin>") -> list[tuple[str, ...]] | Examples:
    """The texts of each non-blank input line: a JSON object with the task's text columns, or one text (two
    separated by a tab for a pair task). A bad line is an MtlError naming ``where`` and its 1-based number. A
    structured type's lines are JSON objects read as its rows (:class:`Examples`)."""
    if task.kind.structured:
        return _parse_records(lines, task, where)
    columns = tuple(task.text_columns)
    texts = []
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        at = f"{where}:{number}"
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MtlError(f"{at}: invalid JSON: {exc.msg} (column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise MtlError(f"{at}: expected a JSON object with {', '.join(columns)}")
            missing = [c for c in columns if c not in obj]
            if missing:
                raise MtlError(f"{at}: missing {', '.join(repr(c) for c in missing)}; task {task.name!r} needs "
                               f"{', '.join(columns)}")
            bad = [c for c in columns if not isinstance(obj[c], str)]
            if bad:
                raise MtlError(f"{at}: {bad[0]!r} must be a string (got {type(obj[bad[0]]).__name__})")
            texts.append(tuple(obj[c] for c in columns))
            continue
        fields = line.split("\t")
        if len(fields) != len(columns):
            need = "one text" if len(columns) == 1 else f"{len(columns)} texts separated by a tab"
            raise MtlError(f"{at}: task {task.name!r} needs {need} ({', '.join(columns)}), got {len(fields)}")
        texts.append(tuple(fields))
    return texts


def _parse_records(lines, task, where: str) -> Examples:
    def records():
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            at = f"{where}:{number}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MtlError(f"{at}: invalid JSON: {exc.msg} (column {exc.colno})") from None
            yield at, obj

    return from_records(task, "test", records(), where, None)
