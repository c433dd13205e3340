"""Self-attention for CPU training with the dropout kernel, as a transformers attention function (``mtl_sdpa``).

``softmax(Q Kᵀ · s + M) V`` (Vaswani et al., "Attention is all you need", NeurIPS 2017, Eq. 1) with dropout on the
attention probabilities, as BERT trains (Devlin et al., NAACL 2019; ``attention_probs_dropout_prob``).

With dropout in training, ``torch.nn.functional.scaled_dot_product_attention`` on CPU leaves its fused kernel for
the "math" path, which in bf16 copies the scores to float32 and back, builds a float mask with ``bernoulli_`` and
checks for fully masked rows — several times the time of the two matrix products it wraps (README, "Benchmarks").
Here the same computation runs in the inputs' dtype (autocast has already chosen it for Q, K and V), with
:func:`mtl.model.dropout.dropout`. Everything else — evaluation, dropout 0, other devices, causal masks, position
biases, soft-capping — goes to transformers' own ``sdpa`` function unchanged.

:func:`use_kernel_attention` switches an encoder whose ``config._attn_implementation`` is ``sdpa`` (transformers'
default) to this function; :func:`plain_attention` switches a config back, for exports: the name is never written
to ``config.json`` (transformers does not serialise ``_attn_implementation``).
"""

from __future__ import annotations

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.modeling_utils import AttentionInterface

from mtl.model.dropout import dropout as kernel_dropout
from mtl.model.dropout import uses_kernel

NAME = "mtl_sdpa"
_BASE = "sdpa"
_UNSUPPORTED = ("softcap", "position_bias", "s_aux", "sinks", "sliding_window")


def attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                      is_causal: bool | None = None, **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: ``[B, H, L, d]`` inputs, ``([B, L, H, d], None)`` out."""
    # causal as transformers' sdpa function decides it (a mask, when given, already holds any causal pattern)
    causal = query.shape[2] > 1 and attention_mask is None and (
        is_causal if is_causal is not None else getattr(module, "is_causal", True))
    if (not module.training or not uses_kernel(query, dropout) or causal or query.dtype != key.dtype
            or key.dtype != value.dtype or any(kwargs.get(name) is not None for name in _UNSUPPORTED)):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:  # grouped-query attention: each key/value head serves `groups` query heads
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    with torch.autocast("cpu", enabled=False):  # Q, K, V are already in the dtype autocast chose
        scores = torch.matmul(query * scale, key.transpose(-1, -2))
        if attention_mask is not None:
            if attention_mask.dtype == torch.bool:  # True = attend
                scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
            else:  # additive
                scores = scores + attention_mask.to(scores.dtype)
        probabilities = kernel_dropout(torch.softmax(scores, dim=-1), dropout, True)
        output = torch.matmul(probabilities, value)
    return output.transpose(1, 2).contiguous(), None


def register() -> None:
    """Make :data:`NAME` a transformers attention implementation (with sdpa's attention masks); idempotent."""
    AttentionInterface.register(NAME, attention_forward)
    AttentionMaskInterface.register(NAME, sdpa_mask)


def use_kernel_attention(encoder: torch.nn.Module) -> bool:
    """Switch ``encoder`` (a transformers model) from ``sdpa`` to :data:`NAME`; False when it uses something else."""
    config = getattr(encoder, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != _BASE:
        return False
    register()
    config._attn_implementation = NAME
    return True


def plain_attention(config) -> None:
    """Put a config switched by :func:`use_kernel_attention` back on transformers' ``sdpa``."""
    if getattr(config, "_attn_implementation", None) == NAME:
        config._attn_implementation = _BASE
