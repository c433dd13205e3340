"""Task embeddings for a shared encoder (Maziarka & Danel, "Multitask Learning Using BERT with Task-Embedded
Attention", IJCNN 2021: EmBERT, here called TEA-BERT).

One learned vector per task tells the shared encoder which task an instance belongs to:

- ``input``: a vector E_t [D] added to the word embedding of every token (BERT still adds its position and
  token-type embeddings); ``tasks × D`` parameters.
- ``attention``: vectors added to the query, key and value projections of every self-attention layer,
  ``layers × 3 × tasks × D`` parameters, through forward hooks on the ``query``/``key``/``value`` Linear
  modules of ``encoder.layer[i].attention.self`` (BERT, MiniLM, RoBERTa, ELECTRA, ...).

All vectors start at zero, so training starts exactly from the pretrained encoder. The vectors are module
parameters (trained by the optimizer and saved with the model). The task of each row comes from the
``task_ids`` [B] of the batch, which the backbone sets with :meth:`TaskEmbedding.use` for the duration of one
forward only.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

MODES = ("none", "input", "attention")
SLOTS = ("query", "key", "value")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"task_embedding must be one of {', '.join(MODES)} (got {mode!r})")
    return mode


def input_embeddings(encoder: nn.Module) -> nn.Embedding:
    """The word-embedding table the ``input`` mode adds to; ValueError where the encoder has none usable."""
    name = type(encoder).__name__
    getter = getattr(encoder, "get_input_embeddings", None)
    table = getter() if callable(getter) else None
    if not isinstance(table, nn.Embedding):
        raise ValueError(f"task_embedding='input' needs an encoder with a word-embedding table; {name} has none")
    import inspect

    if "inputs_embeds" not in inspect.signature(encoder.forward).parameters:
        raise ValueError(f"task_embedding='input' needs an encoder that accepts inputs_embeds; {name} does not")
    return table


def attention_projections(encoder: nn.Module) -> list[tuple[nn.Linear, nn.Linear, nn.Linear]]:
    """(query, key, value) of every self-attention layer of a BERT-style encoder; ValueError otherwise."""
    name = type(encoder).__name__
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    found = []
    try:
        for layer in layers:
            attention = layer.attention.self
            projections = tuple(getattr(attention, slot) for slot in SLOTS)
            if not all(isinstance(p, nn.Linear) for p in projections):
                raise AttributeError
            found.append(projections)
    except (AttributeError, TypeError):
        found = []
    if not found:
        raise ValueError(f"task_embedding='attention' needs a BERT-style encoder "
                         f"(encoder.layer[i].attention.self.query/key/value); {name} has another architecture")
    widths = {p.out_features for projections in found for p in projections}
    if len(widths) != 1:
        raise ValueError(f"task_embedding='attention': {name} has query/key/value of different widths {sorted(widths)}")
    return found


def check_encoder(encoder: nn.Module, mode: str) -> None:
    """Raise ValueError now (before any training) when ``encoder`` cannot take task embeddings of ``mode``."""
    check_mode(mode)
    if mode == "input":
        input_embeddings(encoder)
    elif mode == "attention":
        attention_projections(encoder)


class _AddTaskVector:
    """Forward hook of one query/key/value projection: adds the vector of each row's task to its output.

    A small object (not a closure) so that ``copy.deepcopy`` of the model points the copy's hooks at the copy.
    """

    def __init__(self, owner: "TaskEmbedding", layer: int, slot: int) -> None:
        self.owner, self.layer, self.slot = owner, layer, slot

    def __call__(self, module, inputs, output):
        task_ids = self.owner.current
        if task_ids is None:  # the encoder used on its own: no task, no change
            return None
        vectors = self.owner.vectors[self.layer, self.slot].to(output.dtype)[task_ids]  # [B, D]
        if output.dim() != 3 or output.shape[0] != vectors.shape[0]:
            raise RuntimeError(f"task embeddings: expected a [B={vectors.shape[0]}, S, D] projection output, "
                               f"got {tuple(output.shape)}")
        return output + vectors[:, None, :]


class TaskEmbedding(nn.Module):
    """The task vectors of one encoder: ``vectors`` [T, D] (``input``) or [layers, 3, T, D] (``attention``)."""

    def __init__(self, encoder: nn.Module, mode: str, tasks: list[str]) -> None:
        super().__init__()
        if check_mode(mode) == "none":
            raise ValueError("TaskEmbedding needs mode 'input' or 'attention'")
        if not tasks:
            raise ValueError("task embeddings need at least one task")
        self.mode, self.tasks = mode, list(tasks)
        self.current: torch.Tensor | None = None  # the task ids of the forward in progress (not state)
        reference = next(encoder.parameters())
        factory = {"device": reference.device, "dtype": torch.float32}
        if mode == "input":
            table = input_embeddings(encoder)
            self.vectors = nn.Parameter(torch.zeros(len(tasks), table.embedding_dim, **factory))
        else:
            projections = attention_projections(encoder)
            width = projections[0][0].out_features
            self.vectors = nn.Parameter(torch.zeros(len(projections), 3, len(tasks), width, **factory))
            self._handles = [p.register_forward_hook(_AddTaskVector(self, i, j))
                             for i, layer in enumerate(projections) for j, p in enumerate(layer)]

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, tasks={len(self.tasks)}, shape={tuple(self.vectors.shape)}"

    def embed(self, table: nn.Embedding, input_ids: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """``input`` mode: the word embeddings of ``input_ids`` plus each row's task vector, [B, S, D]."""
        words = table(input_ids)
        return words + self.vectors.to(words.dtype)[task_ids][:, None, :]

    @contextmanager
    def use(self, task_ids: torch.Tensor):
        """Make the attention hooks add the vectors of ``task_ids`` [B] inside the block, and nothing after it."""
        if task_ids.dim() != 1:
            raise ValueError(f"task_ids must have shape [B] (got {tuple(task_ids.shape)})")
        if bool(((task_ids < 0) | (task_ids >= len(self.tasks))).any()):
            raise ValueError(f"task_ids must be in [0, {len(self.tasks)}) (got {task_ids.tolist()})")
        self.current = task_ids.to(self.vectors.device, torch.long)
        try:
            yield
        finally:
            self.current = None
