"""The Hugging Face hub: is it usable (offline switches and a quick reachability probe, so that loading data or a
model fails in seconds with a clear reason instead of retrying for a minute), and a task's split read from it
through ``datasets.load_dataset``."""

from __future__ import annotations

import os
import socket
import threading
from typing import Any
from urllib.parse import urlparse

from mtl.data.examples import Examples, TaskData
from mtl.data.labels import Labels, is_unlabeled_split
from mtl.errors import DataError

HUB_HOST = "huggingface.co"


def offline() -> str | None:
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{var} is set"
    return None


def probe(timeout: float = 3.0) -> str | None:
    """Why the hub cannot be reached (a quick TCP connect), or None. Skipped when a proxy is configured."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or f"https://{HUB_HOST}")
    host, port = endpoint.hostname or HUB_HOST, endpoint.port or (80 if endpoint.scheme == "http" else 443)
    outcome: list[str | None] = []

    def connect() -> None:  # in a thread, because name resolution ignores the socket timeout
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"{host}: {exc.strerror or type(exc).__name__}")

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return outcome[0] if outcome else f"{host}: no answer within {timeout:g} s"


def unavailable() -> str | None:
    """Why the hub cannot be used now (offline switch or no connection), or None."""
    return offline() or probe()


def _unreachable(task: TaskData, split: str, reason: str) -> DataError:
    return DataError(
        f"no data for task {task.name!r} split {split!r}: pass --data-dir (a GLUE folder) or "
        f"--data {task.name}.{split}=FILE; the Hugging Face hub could not be reached ({reason})"
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def read_hub(task: TaskData, split: str, *, limit: int | None = None) -> Examples:
    """A split from the Hugging Face hub through ``datasets.load_dataset`` (imported only here).

    Fails fast, with a one-line :class:`DataError`, when offline mode is set or the hub is unreachable.
    """
    assert task.hub is not None
    path, config = task.hub
    hub_split = task.hub_splits[split]
    reason = offline() or probe()
    if reason is not None:
        raise _unreachable(task, split, reason)
    try:
        import datasets  # heavy (pyarrow, pandas): only when a split comes from the hub
    except ImportError as exc:  # pragma: no cover - datasets is a dependency
        raise _unreachable(task, split, f"the datasets package is missing: {exc}") from None
    source = f"hub:{path}" + (f"/{config}" if config else "") + f"[{hub_split}]"
    try:
        dataset = datasets.load_dataset(path, config, split=hub_split)
    except (ConnectionError, TimeoutError) as exc:
        raise _unreachable(task, split, _short(exc)) from None
    except Exception as exc:  # the hub answered, but with an error (no such dataset/split, ...)
        if type(exc).__name__ in ("ConnectionError", "ConnectTimeout", "ReadTimeout", "OfflineModeIsEnabled",
                                  "LocalEntryNotFoundError"):
            raise _unreachable(task, split, _short(exc)) from None
        raise DataError(f"loading {source} for task {task.name!r} failed: {_short(exc)}") from None
    if getattr(task.kind, "structured", False):
        from mtl.data.records import from_dataset

        examples = from_dataset(task, split, dataset, source, limit)
    else:
        examples = _from_hub(task, split, dataset, source, limit)
    examples.fingerprint = {"dataset": source, "fingerprint": getattr(dataset, "_fingerprint", None)}
    return examples


def _from_hub(task: TaskData, split: str, dataset: Any, source: str, limit: int | None) -> Examples:
    """Our examples from a hub dataset: columns renamed by ``task.hub_columns``, int labels index ``task.labels``."""
    names = list(dataset.column_names)
    hub_name = {c: task.hub_columns.get(c, c) for c in (*task.text_columns, task.label_column)}
    for column in task.text_columns:
        if hub_name[column] not in names:
            raise DataError(f"{source}: missing column {hub_name[column]!r} of task {task.name!r}; "
                            f"the columns are: {', '.join(names)}")
    columns = [list(dataset[hub_name[c]]) for c in task.text_columns]
    raw = list(dataset[hub_name[task.label_column]]) if hub_name[task.label_column] in names else None
    if raw is None and not is_unlabeled_split(split):
        raise DataError(f"{source}: missing label column {hub_name[task.label_column]!r} of task {task.name!r}; "
                        f"the columns are: {', '.join(names)}")
    if raw is not None and is_unlabeled_split(split) and all(v == -1 for v in raw):
        raw = None  # GLUE's hidden test labels are -1
    texts: list[tuple[str, ...]] = []
    labels: list[Any] = []
    n_classes = len(task.labels) if task.labels is not None else task.num_outputs
    labels_of = Labels(task)
    for i, row in enumerate(zip(*columns, strict=True)):
        if limit is not None and len(texts) >= limit:
            break
        if raw is not None:
            value = raw[i]
            if task.is_regression:
                labels.append(float(value))
            elif isinstance(value, str):
                label = labels_of.convert(value, f"{source} row {i}")
                if label is None:
                    continue
                labels.append(label)
            else:
                value = int(value)
                if value == -1:  # SNLI: no gold label
                    continue
                if not 0 <= value < n_classes:
                    raise DataError(f"{source} row {i}: label {value} is out of range for task {task.name!r} "
                                    f"({n_classes} labels: {', '.join(task.labels)})")
                labels.append(value)
        texts.append(tuple("" if t is None else str(t) for t in row))
    if not texts and limit != 0:
        raise DataError(f"task {task.name!r} has no examples in {source}")
    return Examples(texts, labels, source)
