"""What the types whose instance is a group of sequences share (multiple choice: k endings; ranking: a query's
candidates): the group's sequences padded to [B, G, L] with a mask of the real ones, flattened for the backbone,
and the per-sequence outputs put back in the group's shape."""

from __future__ import annotations

from typing import Any

SEQUENCE_KEYS = ("input_ids", "attention_mask", "token_type_ids")
FILL = -1e4  # the logit of a padded candidate: no probability, yet finite (a softmax, a symmetric KL stay finite)


def encode_groups(tokenizer, groups: list[list[tuple[str, str]]], max_length: int) -> dict[str, list]:
    """Each group's (first, second) text pairs tokenised together: ``input_ids`` (and ``token_type_ids``) as one
    list of sequences per group, ``length`` the longest sequence of the group."""
    firsts = [first for group in groups for first, _ in group]
    seconds = [second for group in groups for _, second in group]
    enc = tokenizer(firsts, seconds, truncation=True, max_length=max_length) if firsts else {"input_ids": []}
    out: dict[str, list] = {"input_ids": [], "length": []}
    types = [] if "token_type_ids" in enc else None
    start = 0
    for group in groups:
        ids = list(enc["input_ids"][start : start + len(group)])
        out["input_ids"].append(ids)
        out["length"].append(max((len(s) for s in ids), default=0))
        if types is not None:
            types.append(list(enc["token_type_ids"][start : start + len(group)]))
        start += len(group)
    if types is not None:
        out["token_type_ids"] = types
    return out


def pad_groups(rows: dict[str, list], pad_id: int) -> dict[str, Any]:
    """Instances of G_i sequences each as ``input_ids``/``attention_mask`` (/``token_type_ids``) [B, G, L] (G the
    largest group, L the longest sequence) and ``choice_mask`` [B, G] (1: a real sequence)."""
    import torch

    groups = rows["input_ids"]
    width = max((len(seq) for group in groups for seq in group), default=1)
    size = max(len(group) for group in groups)
    shape = (len(groups), size, width)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    attention = torch.zeros(shape, dtype=torch.long)
    types = torch.zeros(shape, dtype=torch.long) if rows.get("token_type_ids") is not None else None
    mask = torch.zeros(shape[:2], dtype=torch.long)
    for b, group in enumerate(groups):
        for g, seq in enumerate(group):
            input_ids[b, g, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            attention[b, g, : len(seq)] = 1
            if types is not None:
                types[b, g, : len(seq)] = torch.tensor(rows["token_type_ids"][b][g], dtype=torch.long)
            mask[b, g] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention, "choice_mask": mask}
    if types is not None:
        batch["token_type_ids"] = types
    return batch


def flatten(batch: dict[str, Any], real_only: bool) -> dict[str, Any]:
    """The batch's sequences [B, G, L] as the backbone takes them: [B·G, L], or only the real ones [N, L]."""
    mask = batch["choice_mask"].bool() if real_only else None
    out = {}
    for key, value in batch.items():
        if key in SEQUENCE_KEYS and value.dim() == 3:
            out[key] = value[mask] if mask is not None else value.reshape(-1, value.shape[-1])
        elif key not in ("labels", "choice_mask"):
            out[key] = value
    return out


def regroup(values, batch: dict[str, Any], fill: float):
    """One value per real sequence [N] (or [N, H]) back in the group's shape [B, G] (or [B, G, H]), ``fill`` at
    the padded places (differentiable: a masked scatter)."""
    mask = batch["choice_mask"].bool()
    shape = tuple(mask.shape) + tuple(values.shape[1:])
    where = mask.view(*mask.shape, *([1] * (values.dim() - 1))).expand(shape)
    return values.new_full(shape, fill).masked_scatter(where, values)
