"""Rebuilding a trained model from its run folder (DESIGN.md, "Runs"): no training data, no pickle.

``load_run(run_dir)`` reads ``config.json``, builds the same backbone (name and options, task embeddings
included), the same tasks and heads in the same order (task ids) and the same dropout, recreates the module a
weighting put between backbone and heads (MMoE's experts and gates) by calling that weighting's own
``setup`` on a run without data, and loads ``checkpoint/best.safetensors`` with safetensors. Every problem
is a one-line :class:`mtl.errors.MtlError` naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .config import FIELD_NAMES, RunConfig, plugin_options
from .errors import MtlError

CHECKPOINT = Path("checkpoint") / "best.safetensors"
WEIGHTING_STATE = Path("checkpoint") / "weighting.safetensors"


def read_json(path: Path, what: str) -> Any:
    """A JSON file of a run or export folder; MtlError naming it when it is missing or does not parse."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MtlError(f"{path}: missing ({what})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MtlError(f"{path}: cannot read {what}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MtlError(f"{path}:{exc.lineno}: invalid JSON in {what}: {exc.msg}") from None


def is_run_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "checkpoint").is_dir()


def read_config(run_dir: str | Path) -> tuple[RunConfig, dict[str, Any]]:
    """The run's :class:`RunConfig` and the whole ``config.json`` record (plugins, sizes, versions ...)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MtlError(f"not a run folder: {run_dir} " + ("is a file" if run_dir.exists() else "does not exist"))
    if not is_run_dir(run_dir):
        missing = "config.json" if not (run_dir / "config.json").is_file() else "checkpoint/"
        raise MtlError(f"not a run folder: {run_dir} has no {missing} (a folder written by `mtl run`)")
    path = run_dir / "config.json"
    record = read_json(path, "the run's configuration")
    if not isinstance(record, dict):
        raise MtlError(f"{path}: not a run configuration (expected a JSON object)")
    try:
        config = RunConfig(**{k: v for k, v in record.items() if k in FIELD_NAMES})
    except TypeError as exc:
        raise MtlError(f"{path}: not a run configuration: {exc}") from None
    if not config.tasks:
        raise MtlError(f"{path}: the run has no tasks (no 'target')")
    return config, record


def build_model(config: RunConfig):
    """A freshly initialised :class:`MultiTaskModel` of ``config`` and its tasks, ``(model, tasks)``."""
    import torch

    import mtl

    from .model import MultiTaskModel

    routed = plugin_options(config, {"weighting": config.weighting, "sampler": config.sampler,
                                     "backbone": config.backbone})
    tasks = {name: mtl.create("task", name, **routed.get(("task", name), {})) for name in config.tasks}
    with torch.random.fork_rng(devices=[]):  # a random backbone (tiny) must not move the caller's generator
        torch.manual_seed(config.seed)
        backbone = mtl.create("backbone", config.backbone, **routed.get(("backbone", config.backbone), {}))
    model = MultiTaskModel(backbone, {n: t.num_outputs for n, t in tasks.items()}, config.dropout)
    weighting_options = routed.get(("weighting", config.weighting), {})
    return model, tasks, weighting_options


def _add_feature_map(config: RunConfig, model, tasks, options: dict, checkpoint: Path) -> None:
    """Recreate the module the run's weighting installed as ``model.feature_map`` (MMoE), by its own setup."""
    import mtl

    weighting = mtl.create("weighting", config.weighting, **options)
    try:
        import torch

        from .run import Run

        # what setup sees when a model is rebuilt for inference: the model and tasks, no training data
        weighting.setup(Run(config, model, tasks, config.target, train={}, device=torch.device("cpu"),
                            rng=torch.Generator().manual_seed(config.seed)))
    except MtlError:
        raise
    except Exception as exc:
        raise MtlError(f"{checkpoint}: the model has a feature map from weighting {config.weighting!r}, which "
                       f"cannot be rebuilt without training data ({type(exc).__name__}: {exc})") from None
    if model.feature_map is None:
        raise MtlError(f"{checkpoint}: holds feature_map.* parameters but weighting {config.weighting!r} "
                       "adds no feature map to the model")


def load_checkpoint(path: Path) -> dict:
    """The tensors of a safetensors checkpoint; MtlError naming it when missing, truncated or corrupted."""
    if not path.is_file():
        raise MtlError(f"{path}: missing (the run has no best checkpoint; did it finish an evaluation?)")
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # SafetensorError, OSError ...: a truncated or overwritten file
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise MtlError(f"{path}: not a readable safetensors checkpoint ({reason[:160]})") from None


def load_state(model, state: dict, path: Path) -> None:
    """``model.load_state_dict(state)`` with a one-line MtlError naming ``path`` when keys or shapes differ."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise MtlError(f"{path}: the checkpoint does not match the model of config.json: keys "
                       + "; ".join(parts))
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise MtlError(f"{path}: the checkpoint does not match the model of config.json: {key} has shape "
                           f"{tuple(state[key].shape)}, the model {tuple(value.shape)}")
    model.load_state_dict(state)


def load_run(run_dir: str | Path):
    """``(config, model, tasks)`` of a run folder: the best checkpoint in a rebuilt model, in eval mode, on CPU.

    ``tasks`` maps each task name of the run (target first) to its :class:`mtl.Task`.
    """
    run_dir = Path(run_dir)
    config, _ = read_config(run_dir)
    path = run_dir / CHECKPOINT
    state = load_checkpoint(path)
    model, tasks, weighting_options = build_model(config)
    if any(k.startswith("feature_map.") for k in state):
        _add_feature_map(config, model, tasks, weighting_options, path)
    load_state(model, state, path)
    model.eval()
    return config, model, tasks


def training_only_state(run_dir: str | Path) -> list[str]:
    """Names of the weighting state kept beside the model (``checkpoint/weighting.safetensors``), e.g. ``bank``."""
    path = Path(run_dir) / WEIGHTING_STATE
    if not path.is_file():
        return []
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            names = list(f.keys())
            names += list(json.loads((f.metadata() or {}).get("state", "{}")))
    except Exception:
        return ["(unreadable weighting state)"]
    return names


# ------------------------------------------------------------------------------------------------ predictors


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

    def logits(self, encoded) -> "torch.Tensor":
        """Logits [N, C] of an :class:`mtl.batching.Encoded` split, in its order (length-sorted batches)."""
        import torch

        from .batching import sorted_batches

        out = None
        with torch.no_grad():
            for positions in sorted_batches(encoded.lengths, self.batch_size):
                batch = {k: v for k, v in encoded.collate(positions).items() if k != "labels"}
                logits = self.forward(batch).float().cpu()
                if out is None:
                    out = torch.empty(len(encoded), logits.shape[-1])
                out[positions] = logits
        return out if out is not None else torch.empty(0, self.task.num_outputs)

    def encode(self, texts: list[tuple[str, ...]], labels: list | None = None):
        from .batching import encode
        from .task import Examples

        return encode(Examples(list(texts), list(labels or []), "input"), self.tokenizer, self.max_length,
                      self.task.is_regression)

    def predict(self, texts: list[tuple[str, ...]]) -> list[dict]:
        """One ``{"label", "score", "logits"}`` per text (classification) or ``{"score"}`` (regression)."""
        if not texts:
            return []
        logits = self.logits(self.encode(texts))
        if self.task.is_regression:
            return [{"score": float(row[0])} for row in logits]
        probabilities = logits.softmax(dim=-1)
        rows = []
        for row, p in zip(logits, probabilities):
            index = int(row.argmax())
            rows.append({"label": self.task.labels[index], "score": float(p[index]),
                         "logits": [float(v) for v in row]})
        return rows

    def evaluate(self, split: str, *, data_dir: str | None = None, data: dict[str, str] | None = None,
                 limit: int | None = None) -> dict[str, Any]:
        """The task's metrics on ``split``, computed as the trainer computes them at each epoch end.

        Data comes from ``data`` (``task.split=FILE`` or ``task=FOLDER``), else ``data_dir``, else the run's own
        sources; ``limit`` defaults to the run's ``--eval-limit``.
        """
        import torch

        name = self.task.name
        data = {**(self.data.get("data") or {}), **(data or {})}
        if data_dir is None:
            data_dir = self.data.get("data_dir")
        if limit is None:
            limit = self.data.get("eval_limit")
        file = data.get(f"{name}.{split}")
        folder = data.get(name) if file is None else None
        examples = self.task.load(split, data_dir=folder or (data_dir if file is None else None), file=file, limit=limit)
        if not examples.labels:
            raise MtlError(f"{examples.source}: split {split!r} of task {name!r} has no labels to evaluate against")
        encoded = self.encode(examples.texts, examples.labels)
        logits = self.logits(encoded)
        predictions = self.task.predict(logits).to(torch.float32 if self.task.is_regression else torch.long)
        metrics = self.task.compute_metrics(predictions.numpy(), encoded.labels.numpy())
        return {"task": name, "split": split, "examples": len(examples), "source": examples.source,
                "model": str(self.path), "metrics": metrics}


def load_predictor(path: str | Path, task: str | None = None) -> Predictor:
    """A :class:`Predictor` for ``task`` (default: the target) of a run folder or an exported folder."""
    from .export import MANIFEST

    path = Path(path)
    if path.is_dir() and (path / MANIFEST).is_file():
        return _export_predictor(path, task)
    if path.is_dir() and (path / "config.json").is_file() and (path / "checkpoint").is_dir():
        return _run_predictor(path, task)
    if not path.exists():
        raise MtlError(f"{path} does not exist (give a run folder or an exported model folder)")
    raise MtlError(f"{path} is neither a run folder (config.json and checkpoint/) nor an exported model "
                   f"({MANIFEST})")


def _run_predictor(path: Path, task: str | None) -> Predictor:
    config, model, tasks = load_run(path)
    name = task or config.target
    if name not in tasks:
        from .suggest import unknown

        raise MtlError(f"{path}: " + unknown("task of this run", name, list(tasks)))
    data = {"data_dir": config.data_dir,
            "data": {k: v for k, v in config.data.items() if k.partition(".")[0] == name},
            "eval_limit": config.eval_limit}
    return Predictor(tasks[name], model.backbone.tokenizer, lambda batch: model(name, batch)[0], kind="run",
                     path=path, max_length=config.max_length, batch_size=config.eval_batch_size, data=data)


def _export_predictor(path: Path, task: str | None) -> Predictor:
    from .export import ENCODER_DIR, HEAD_FILE, MANIFEST, MmoeClassifier

    manifest = read_json(path / MANIFEST, "the export manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != "mtl-export" or "task" not in manifest:
        raise MtlError(f"{path / MANIFEST}: not an mtl export manifest")
    name = manifest["task"]
    if task is not None and task != name:
        raise MtlError(f"{path} holds the model of task {name!r} only, not {task!r}")
    task_obj = _export_task(manifest)
    hf = _quiet_transformers()
    try:
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path))
        if manifest.get("kind") == "mmoe":
            from mtl.plugins.weightings.mmoe import MixtureOfExperts
            from torch import nn

            info = manifest["mmoe"]
            encoder = AutoModel.from_pretrained(str(path / info.get("encoder", ENCODER_DIR)))
            state = load_checkpoint(path / info.get("head", HEAD_FILE))
            mixture = MixtureOfExperts(int(encoder.config.hidden_size), [name], int(info["experts"]),
                                       int(info["hidden"]), float(info.get("dropout", 0.0)))
            classifier = nn.Linear(int(encoder.config.hidden_size), task_obj.num_outputs)
            load_state(mixture, {k: v for k, v in state.items() if not k.startswith("classifier.")},
                       path / info.get("head", HEAD_FILE))
            load_state(classifier, {k[len("classifier."):]: v for k, v in state.items() if k.startswith("classifier.")},
                       path / info.get("head", HEAD_FILE))
            module = MmoeClassifier(encoder, mixture, classifier, name).eval()
            forward = module
        else:
            model = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
            forward = lambda batch: model(**{k: v for k, v in batch.items()  # noqa: E731
                                             if k in ("input_ids", "attention_mask", "token_type_ids")}).logits
    except MtlError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise MtlError(f"{path}: cannot load the exported model ({reason[:200]})") from None
    finally:
        hf()
    return Predictor(task_obj, tokenizer, forward, kind="export", path=path,
                     max_length=int(manifest.get("max_length") or 512),
                     batch_size=int(manifest.get("eval_batch_size") or 128), data=manifest.get("data") or {})


def _export_task(manifest: dict):
    """The task of an export: the registered plugin with the run's options, else one rebuilt from the manifest."""
    import mtl

    from .errors import UnknownNameError
    from .task import Task

    name = manifest["task"]
    try:
        return mtl.create("task", name, **(manifest.get("task_options") or {}))
    except UnknownNameError:
        task = Task()
        task.name = name
        task.text_columns = tuple(manifest.get("text_columns") or ("sentence",))
        task.labels = tuple(manifest["labels"]) if manifest.get("labels") is not None else None
        metrics = list((manifest.get("metrics") or {}).values())
        task.metrics = tuple(metrics[0]) if metrics else (("pearson",) if task.labels is None else ("accuracy",))
        return task


def _quiet_transformers():
    """Silence transformers' notices and progress bars; returns the function that restores them."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    def restore() -> None:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()

    return restore


# ------------------------------------------------------------------------------------------------ input lines


def parse_lines(lines, task, where: str = "<stdin>") -> list[tuple[str, ...]]:
    """The texts of each non-blank input line: a JSON object with the task's text columns, or one text (two
    separated by a tab for a pair task). A bad line is an MtlError naming ``where`` and its 1-based number."""
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
