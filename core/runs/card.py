"""The model card (``README.md``) of an exported model: the Hugging Face Hub's format, made with ``huggingface_hub``'s
:class:`~huggingface_hub.ModelCard` and :class:`~huggingface_hub.ModelCardData`.

YAML metadata (licence when the backbone's is known, ``library_name: transformers`` for a plain export,
``base_model``, tags, datasets, and a ``model-index`` with the target's metrics from ``eval.json``), then text: the
multi-task setup (target, auxiliary tasks, weighting, sampler, seed, the main options), the evaluation, what was
plugged out, and how to load the model. Everything comes from the export's manifest (``mtl_export.json``, its
``card`` block written by :func:`card_info`), so a card can be written again for another name
(``mtl push`` writes it for the Hub repository).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

CARD = "README.md"
#: eval.json's metric names -> the Hub's metric ids (https://huggingface.co/metrics)
METRIC_IDS = {"accuracy": "accuracy", "f1": "f1", "mcc": "matthews_correlation", "pearson": "pearsonr",
              "spearman": "spearmanr"}
#: the run options the card lists besides the tasks and strategies (in this order)
TRAINING_KEYS = ("epochs", "max_steps", "batch_size", "max_length", "optimizer", "lr", "weight_decay", "warmup",
                 "clip", "dropout", "precision", "limit", "task_limits", "eval_limit", "teachers",
                 "teacher_temperature", "group_by_length", "regularizer")
LABELS = {"lr": "Peak learning rate", "max_steps": "Steps", "limit": "Training examples per task (at most)",
          "task_limits": "Training examples of a task (at most)", "eval_limit": "Evaluation examples (at most)",
          "clip": "Gradient clipping", "group_by_length": "Batches grouped by length", "max_length": "Max tokens"}
REPOSITORY = "mtl (multi-task learning for NLU)"


def card_info(backbone, tasks: dict, target: str, config) -> dict[str, Any]:
    """The ``card`` block of a manifest: what the card needs that the rest of the manifest lacks. ``config`` is the
    run's :class:`mtl.runs.config.RunConfig` (None when the run folder's config.json is missing)."""
    datasets = {}
    for name, task in tasks.items():
        hub = getattr(task, "hub", None)
        splits = dict(getattr(task, "hub_splits", {}) or {})
        datasets[name] = {"path": hub[0] if hub else None, "config": hub[1] if hub else None,
                          "eval_splits": {s: splits.get(s, s) if hub else s for s in task.eval_splits},
                          "regression": bool(task.is_regression)}
    training = {}
    if config is not None:
        values = config.to_dict()
        training = {k: values[k] for k in TRAINING_KEYS if values.get(k) not in (None, {}, [], False)}
        if values.get("max_steps"):  # --max-steps overrides --epochs
            training.pop("epochs", None)
        if not values.get("teachers"):
            training.pop("teacher_temperature", None)
        training["seed"] = values.get("seed")
    return {"base_model": getattr(backbone, "base_model", None), "license": getattr(backbone, "license", None),
            "datasets": datasets, "training": training}


def render(manifest: dict[str, Any], model_id: str) -> str:
    """The card's text for the export described by ``manifest``, named ``model_id`` (a Hub repository id or a
    folder: the name in the metadata and in the loading example)."""
    info = manifest.get("card") or {}
    source = manifest.get("source") or {}
    target = manifest["task"]
    aux = [a for a in source.get("aux") or [] if a != target]
    datasets = info.get("datasets") or {}
    plain = bool(manifest.get("loadable_with_transformers"))
    weighting, sampler = source.get("weighting"), source.get("sampler")

    results = []
    mine = datasets.get(target, {})
    for split, metrics in (manifest.get("metrics") or {}).items():
        for metric, value in metrics.items():
            results.append(EvalResult(
                task_type="text-classification", task_name="Text Classification",
                dataset_type=mine.get("path") or target, dataset_name=_dataset_name(target, mine),
                dataset_config=mine.get("config"), dataset_split=(mine.get("eval_splits") or {}).get(split, split),
                metric_type=METRIC_IDS.get(metric, metric), metric_name=metric, metric_value=float(value)))
    hub_datasets = list(dict.fromkeys(d["path"] for n, d in datasets.items() if d.get("path") and n in [target, *aux]))
    tags = ["mtl", "multi-task", "multi-task-learning", "text-classification"]
    tags += [t for t in (f"weighting-{weighting}" if weighting else None,
                         f"sampler-{sampler}" if sampler else None) if t]
    data = ModelCardData(
        license=info.get("license") or None,
        library_name="transformers" if plain else None,
        base_model=info.get("base_model") or None,
        pipeline_tag="text-classification",
        tags=tags,
        datasets=hub_datasets or None,
        model_name=model_id,
        eval_results=results or None,
        # the task, its labels and the multi-task setup, machine-readable (the text says the same)
        mtl={"task": target, "labels": manifest.get("labels"), "auxiliary_tasks": aux, "weighting": weighting,
             "sampler": sampler, "seed": source.get("seed")},
    )
    text = _text(manifest, model_id, target, aux, info, plain)
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{text}")
    return str(card)


def write(folder: str | Path, manifest: dict[str, Any], model_id: str) -> Path:
    """Write ``folder/README.md`` for the export described by ``manifest``."""
    path = Path(folder) / CARD
    path.write_text(render(manifest, model_id), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ the text


def _dataset_name(task: str, dataset: dict) -> str:
    path, config = dataset.get("path"), dataset.get("config")
    if not path:
        return task
    return " ".join(x for x in (path.rsplit("/", 1)[-1].upper(), (config or "").upper()) if x)


def _text(manifest: dict, model_id: str, target: str, aux: list[str], info: dict, plain: bool) -> str:
    source = manifest.get("source") or {}
    training = info.get("training") or {}
    base = info.get("base_model")
    backbone = source.get("backbone") or "?"
    lines = [f"# {model_id}", ""]
    trained_from = f"[{base}](https://huggingface.co/{base})" if base else f"the `{backbone}` backbone"
    with_aux = f" with {_names(aux)} as auxiliary task{'s' if len(aux) > 1 else ''}" if aux else " alone"
    lines += [f"A {_kind(manifest)} for **{target}**, trained from {trained_from}{with_aux} by multi-task learning "
              f"with {REPOSITORY}: one shared encoder, one head per task; this export keeps the encoder and the "
              f"{target} head.", ""]

    lines += ["## Multi-task setup", "", "| | |", "|---|---|"]
    rows = [("Target task", f"`{target}`"), ("Auxiliary tasks", _names(aux) or "none"),
            ("Weighting", _plugin(source.get("weighting"), source.get("options"))),
            ("Sampler", _plugin(source.get("sampler"), source.get("options"))),
            ("Backbone", _plugin(backbone, source.get("options")) + (f" (from `{base}`)" if base else "")),
            ("Seed", str(source.get("seed") if source.get("seed") is not None else training.get("seed", "?")))]
    if manifest.get("task_embedding") not in (None, "none"):
        rows.append(("Task embedding", f"`{manifest['task_embedding']}`"))
    for key, value in training.items():
        if key == "seed":
            continue
        if key == "regularizer":
            value = _plugin(value, source.get("options"))
        rows.append((LABELS.get(key, key.replace("_", " ").capitalize()), _value(value)))
    if source.get("selection"):
        rows.append(("Model selection", f"best epoch ({source.get('best_epoch')}) by `{source['selection']}`"))
    lines += [f"| {name} | {value} |" for name, value in rows] + [""]

    metrics = manifest.get("metrics") or {}
    if metrics:
        lines += ["## Evaluation", "", f"{target}, from the run's `eval.json` (the selected checkpoint):", "",
                  "| split | metric | value |", "|---|---|---|"]
        lines += [f"| {split} | {metric} | {value:.4f} |" for split, values in metrics.items()
                  for metric, value in values.items()] + [""]

    lines += ["## Usage", ""]
    lines += _usage(manifest, model_id, plain)
    if manifest.get("plugged_out"):
        lines += ["", "## Plugged out", "", "Training-only parts not in this export:", ""]
        lines += [f"- {item}" for item in manifest["plugged_out"]]
    labels = manifest.get("labels")
    lines += ["", "## Labels", "", ", ".join(f"`{label}`" for label in labels) if labels
              else "Regression: one output, the predicted score."]
    return "\n".join(lines) + "\n"


def _kind(manifest: dict) -> str:
    return "text-regression model" if manifest.get("labels") is None else "text-classification model"


def _names(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _plugin(name: str | None, options: dict | None) -> str:
    if not name:
        return "none"
    values = (options or {}).get(name) or (options or {}).get(name.partition(":")[0]) or {}
    given = ", ".join(f"{k}={v}" for k, v in values.items())
    return f"`{name}`" + (f" ({given})" if given else "")


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _usage(manifest: dict, model_id: str, plain: bool) -> list[str]:
    if manifest.get("export_class") == "AutoModelForTokenClassification":
        return _token_usage(manifest, model_id, plain)
    columns = manifest.get("text_columns") or ["sentence"]
    max_length = manifest["max_length"]
    examples = ["A first sentence.", "A second sentence."][: min(len(columns), 2)]
    predict = [f"A local copy also works with `mtl predict FOLDER` (one JSON line in, one out: "
               f"`echo '{json.dumps(dict(zip(columns, examples, strict=True)))}' | mtl predict FOLDER`)."]
    if plain:
        last = ("score = logits[0, 0].item()  # regression: the predicted score" if manifest.get("labels") is None
                else "print(model.config.id2label[int(logits.argmax(-1))])")
        arguments = ", ".join(json.dumps(e) for e in examples)
        return [f"With plain `transformers` (inputs: {_names(columns)}):", "", "```python", "import torch",
                "from transformers import AutoModelForSequenceClassification, AutoTokenizer", "",
                f'tokenizer = AutoTokenizer.from_pretrained("{model_id}")',
                f'model = AutoModelForSequenceClassification.from_pretrained("{model_id}").eval()',
                f'inputs = tokenizer({arguments}, truncation=True, max_length={max_length}, return_tensors="pt")',
                "with torch.no_grad():", "    logits = model(**inputs).logits", last, "```", "", *predict]
    note = manifest.get("note") or "it loads with `mtl predict`"
    return [f"Not a plain `transformers` classifier: {note}.", "", *predict]


def _token_usage(manifest: dict, model_id: str, plain: bool) -> list[str]:
    """A token classifier: the tag of each word is the one of its first sub-word (as it was trained)."""
    words = ["Anna", "visited", "Oslo", "."]
    predict = [f"A local copy also works with `mtl predict FOLDER` (one JSON line in, one out, the entities with "
               f"character offsets: `echo '{json.dumps({'tokens': words})}' | mtl predict FOLDER`, or a plain text "
               "line split on whitespace)."]
    if not plain:
        return [f"Not a plain `transformers` model: {manifest.get('note') or 'it loads with `mtl predict`'}.", "",
                *predict]
    return ["With plain `transformers` (the input: a list of words; the tag of a word is its first sub-word's):", "",
            "```python", "import torch", "from transformers import AutoModelForTokenClassification, AutoTokenizer", "",
            f'tokenizer = AutoTokenizer.from_pretrained("{model_id}")',
            f'model = AutoModelForTokenClassification.from_pretrained("{model_id}").eval()',
            f"words = {json.dumps(words)}",
            f"inputs = tokenizer(words, is_split_into_words=True, truncation=True, "
            f'max_length={manifest["max_length"]}, return_tensors="pt")',
            "with torch.no_grad():", "    logits = model(**inputs).logits[0]",
            "ids = inputs.word_ids()",
            "first = [i for i, w in enumerate(ids) if w is not None and (i == 0 or ids[i - 1] != w)]",
            "print([model.config.id2label[int(logits[i].argmax())] for i in first])  # one tag per word",
            "```", "", *predict]
