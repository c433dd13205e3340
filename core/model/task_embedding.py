"""Task embeddings for a shared encoder (Maziarka & Danel, "Multitask Learning Using BERT with Task-Embedded
Attention", IJCNN 2021: EmBERT, here called TEA-BERT).

A learned vector per task tells the shared encoder which task an instance belongs to. With T tasks, L layers and
width D (BERT: the hidden size), the modes and the parameters they add:

- ``input``: Ê = E + e_t, a vector e_t [D] added to the word embedding of every token (BERT still adds its
  position and token-type embeddings); ``T·D`` parameters.
- ``attention``: Q̂ = Q + q_t^l (K, V alike), vectors added to the query, key and value projections of every
  self-attention layer; ``3·L·T·D`` parameters.
- ``projected``: Q̂ = Q + W_Q^l·e_t (K, V alike): one e_t [D] per task shared by all layers, projected for each
  layer and slot by a learned W [D, D]; ``T·D + 3·L·D²`` parameters.
- ``activation``: Q̂ = W'_Q^l·act(Q + W_Q^l·e_t) (K, V alike), ``act`` the option ``task_activation`` (gelu,
  relu, tanh); W' [D, D] per layer and slot; ``T·D + 6·L·D²`` parameters.

The attention-side modes work through forward hooks on the ``query``/``key``/``value`` Linear modules of
``encoder.layer[i].attention.self`` (BERT, MiniLM, RoBERTa, ELECTRA, ...).

Initialisation. ``input`` and ``attention`` vectors start at zero. ``projected``: e_t = 0 and W ~ N(0, σ²) (σ the
encoder's ``initializer_range``, 0.02 for BERT), so W·e_t = 0 and training starts exactly from the pretrained
encoder; e_t gets a gradient (Wᵀ·∂L/∂Q̂ ≠ 0) from the first step and W from the second (∂L/∂W = ∂L/∂Q̂·e_tᵀ is 0
until e_t has moved). The reverse (W = 0, e_t random) would equally start from the encoder; e_t = 0 is chosen so
that all tasks start alike and what tells them apart is learned, not drawn. ``activation``: the same e_t and W, and
W' = I, so at start Q̂ = act(Q): *not* the pretrained encoder (no non-linear act is the identity), only as close as
``act`` is to it. The default ``tanh`` keeps the sign and is the identity near 0; on all-MiniLM-L6-v2 the pooled
outputs at start have a mean cosine similarity to the pretrained ones of 0.89 with tanh, 0.79 with gelu, 0.71 with
relu (six sentences).

The parameters belong to the module (trained by the optimizer, saved with the model). The task of each row comes
from the ``task_ids`` [B] of the batch, which the backbone sets with :meth:`TaskEmbedding.use` for the duration of
one forward only. :class:`TargetAttention` is the ``activation`` mode frozen on one task, for exports.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F

MODES = ("none", "input", "attention", "projected", "activation")
ATTENTION_MODES = ("attention", "projected", "activation")  # modes hooked into query/key/value
ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "tanh": torch.tanh}
DEFAULT_ACTIVATION = "tanh"  # the closest to the identity at the start (see the docstring)
SLOTS = ("query", "key", "value")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"task_embedding must be one of {', '.join(MODES)} (got {mode!r})")
    return mode


def check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"task_activation must be one of {', '.join(ACTIVATIONS)} (got {name!r})")
    return name


def input_embeddings(encoder: nn.Module) -> nn.Embedding:
    """The word-embedding table the ``input`` mode adds to; ValueError where the encoder has none usable."""
    name = type(encoder).__name__
    getter = getattr(encoder, "get_input_embeddings", None)
    table = getter() if callable(getter) else None
    if not isinstance(table, nn.Embedding):
        raise ValueError(f"task_embedding='input' needs an encoder with a word-embedding table; {name} has none")
    if "inputs_embeds" not in inspect.signature(encoder.forward).parameters:
        raise ValueError(f"task_embedding='input' needs an encoder that accepts inputs_embeds; {name} does not")
    return table


def attention_projections(encoder: nn.Module, mode: str = "attention") -> list[tuple[nn.Linear, nn.Linear, nn.Linear]]:
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
        raise ValueError(f"task_embedding={mode!r} needs a BERT-style encoder "
                         f"(encoder.layer[i].attention.self.query/key/value); {name} has another architecture")
    widths = {p.out_features for projections in found for p in projections}
    if len(widths) != 1:
        raise ValueError(f"task_embedding={mode!r}: {name} has query/key/value of different widths {sorted(widths)}")
    return found


def check_encoder(encoder: nn.Module, mode: str) -> None:
    """Raise ValueError now (before any training) when ``encoder`` cannot take task embeddings of ``mode``."""
    check_mode(mode)
    if mode == "input":
        input_embeddings(encoder)
    elif mode in ATTENTION_MODES:
        attention_projections(encoder, mode)


def activated(output: torch.Tensor, shift: torch.Tensor, post: torch.Tensor, activation: str) -> torch.Tensor:
    """The ``activation`` mode's Q̂ = W'·act(Q + s) for a projection output Q [B, S, D], s = W·e_t [B, 1, D] (or
    [D]) and W' = ``post`` [D, D]."""
    return F.linear(ACTIVATIONS[activation](output + shift), post)


class _TaskHook:
    """Forward hook of one query/key/value projection: applies each row's task to its output
    (:meth:`TaskEmbedding.apply`).

    A small object (not a closure) so that ``copy.deepcopy`` of the model points the copy's hooks at the copy.
    """

    def __init__(self, owner: TaskEmbedding, layer: int, slot: int) -> None:
        self.owner, self.layer, self.slot = owner, layer, slot

    def __call__(self, module, inputs, output):
        task_ids = self.owner.current
        if task_ids is None:  # the encoder used on its own: no task, no change
            return None
        if output.dim() != 3 or output.shape[0] != task_ids.shape[0]:
            raise RuntimeError(f"task embeddings: expected a [B={task_ids.shape[0]}, S, D] projection output, "
                               f"got {tuple(output.shape)}")
        return self.owner.apply(self.layer, self.slot, output, task_ids)


class TaskEmbedding(nn.Module):
    """The task parameters of one encoder (see the module's docstring for the equations):

    - ``vectors``: [T, D] (``input``, ``projected``, ``activation``: e_t) or [L, 3, T, D] (``attention``: q_t^l,
      k_t^l, v_t^l);
    - ``projection``: [L, 3, D, D], W of ``projected`` and ``activation``;
    - ``post``: [L, 3, D, D], W' of ``activation`` (identity at start).
    """

    def __init__(self, encoder: nn.Module, mode: str, tasks: list[str], activation: str = DEFAULT_ACTIVATION) -> None:
        super().__init__()
        if check_mode(mode) == "none":
            raise ValueError(f"TaskEmbedding needs a mode of {', '.join(MODES[1:])}")
        if not tasks:
            raise ValueError("task embeddings need at least one task")
        self.mode, self.tasks, self.activation = mode, list(tasks), check_activation(activation)
        self.current: torch.Tensor | None = None  # the task ids of the forward in progress (not state)
        self.register_parameter("projection", None)
        self.register_parameter("post", None)
        reference = next(encoder.parameters())
        factory = {"device": reference.device, "dtype": torch.float32}
        if mode == "input":
            table = input_embeddings(encoder)
            self.vectors = nn.Parameter(torch.zeros(len(tasks), table.embedding_dim, **factory))
            return
        projections = attention_projections(encoder, mode)
        layers, width = len(projections), projections[0][0].out_features
        if mode == "attention":
            self.vectors = nn.Parameter(torch.zeros(layers, 3, len(tasks), width, **factory))
        else:
            std = float(getattr(getattr(encoder, "config", None), "initializer_range", 0.02))
            self.vectors = nn.Parameter(torch.zeros(len(tasks), width, **factory))
            self.projection = nn.Parameter(torch.randn(layers, 3, width, width, **factory) * std)
        if mode == "activation":
            self.post = nn.Parameter(torch.eye(width, **factory).repeat(layers, 3, 1, 1))
        self._handles = [p.register_forward_hook(_TaskHook(self, i, j))
                         for i, layer in enumerate(projections) for j, p in enumerate(layer)]

    def extra_repr(self) -> str:
        extra = f", activation={self.activation!r}" if self.mode == "activation" else ""
        return f"mode={self.mode!r}, tasks={len(self.tasks)}, shape={tuple(self.vectors.shape)}{extra}"

    def shifts(self, layer: int, slot: int) -> torch.Tensor:
        """What each task adds to the projection ``slot`` of ``layer`` before any activation, [T, D]:
        q_t^l (``attention``) or W^l·e_t (``projected``, ``activation``)."""
        if self.mode == "attention":
            return self.vectors[layer, slot]
        return F.linear(self.vectors, self.projection[layer, slot])

    def target_shifts(self, task: int) -> torch.Tensor:
        """The shifts of one task for every layer and slot, [L, 3, D] (what an export folds or keeps)."""
        if self.mode == "attention":
            return self.vectors[:, :, task]
        return torch.einsum("lsde,e->lsd", self.projection, self.vectors[task])

    def apply(self, layer: int, slot: int, output: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """The projection output Q [B, S, D] of ``layer``/``slot`` with each row's task applied: Q + shift, or
        W'·act(Q + shift) (``activation``)."""
        shift = self.shifts(layer, slot).to(output.dtype)[task_ids][:, None, :]
        if self.mode == "activation":
            return activated(output, shift, self.post[layer, slot].to(output.dtype), self.activation)
        return output + shift

    def embed(self, table: nn.Embedding, input_ids: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """``input`` mode: the word embeddings of ``input_ids`` plus each row's task vector, [B, S, D]."""
        words = table(input_ids)
        return words + self.vectors.to(words.dtype)[task_ids][:, None, :]

    @contextmanager
    def use(self, task_ids: torch.Tensor):
        """Make the attention hooks apply the tasks ``task_ids`` [B] inside the block, and nothing after it."""
        if task_ids.dim() != 1:
            raise ValueError(f"task_ids must have shape [B] (got {tuple(task_ids.shape)})")
        if bool(((task_ids < 0) | (task_ids >= len(self.tasks))).any()):
            raise ValueError(f"task_ids must be in [0, {len(self.tasks)}) (got {task_ids.tolist()})")
        self.current = task_ids.to(self.vectors.device, torch.long)
        try:
            yield
        finally:
            self.current = None


class _TargetHook:
    """Forward hook of one projection of an exported ``activation`` model: W'·act(Q + s), s the target's."""

    def __init__(self, owner: TargetAttention, layer: int, slot: int) -> None:
        self.owner, self.layer, self.slot = owner, layer, slot

    def __call__(self, module, inputs, output):
        owner = self.owner
        shift, post = owner.shift[self.layer, self.slot], owner.post[self.layer, self.slot]
        return activated(output, shift.to(output.dtype), post.to(output.dtype), owner.activation)


class TargetAttention(nn.Module):
    """The ``activation`` mode of one task, for inference: hooks that make ``encoder`` compute
    Q̂ = W'·act(Q + s) in every layer and slot, with the task's constant s = W·e_t (``shift`` [L, 3, D]) and W'
    (``post`` [L, 3, D, D]). Made with s = 0 and W' = I, then loaded (``load_state_dict``) with a trained task's
    values, it gives the trained model's outputs for that task from a plain encoder.
    """

    def __init__(self, encoder: nn.Module, activation: str) -> None:
        super().__init__()
        projections = attention_projections(encoder, "activation")
        layers, width = len(projections), projections[0][0].out_features
        reference = next(encoder.parameters())
        self.activation = check_activation(activation)
        self.register_buffer("shift", torch.zeros(layers, 3, width, device=reference.device))
        self.register_buffer("post", torch.eye(width, device=reference.device).repeat(layers, 3, 1, 1))
        self._handles = [p.register_forward_hook(_TargetHook(self, i, j))
                         for i, layer in enumerate(projections) for j, p in enumerate(layer)]

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}, layers={self.shift.shape[0]}"
