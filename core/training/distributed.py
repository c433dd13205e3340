"""Data-parallel training on PyTorch's own distributed engine (torchrun, ``torch.distributed``).

Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank builds the same model from the same seed, trains the task the
sampler chose on rank 0, and takes a contiguous shard of the step's global batch: rank r gets chunk r of
``tensor_split(batch, world)``, so gathering in rank order gives the batch back in its original order (which
MAMT's exact sequential memory replacement needs). Gradients are averaged by DistributedDataParallel (gloo on
CPU, nccl on CUDA). Without torchrun, :class:`Context` is the single process: every method is the identity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from mtl.errors import MtlError


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ batches
    def shard(self, indices: list[int]) -> tuple[list[int], bool]:
        """This rank's contiguous chunk of a global batch, and whether the batch is split at all.

        A batch with fewer examples than ranks (the tail of a small task) is not split: every rank trains
        all of it, so gradients stay the global mean and no rank is left without work.
        """
        if not self.enabled or len(indices) < self.world:
            return indices, False
        bounds = [len(indices) * r // self.world for r in range(self.world + 1)]
        return indices[bounds[self.rank] : bounds[self.rank + 1]], True

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenation of every rank's ``tensor`` (same trailing shape, any length) in rank order."""
        if not self.enabled:
            return tensor
        import torch.distributed as dist

        lengths = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(self.world)]
        dist.all_gather(lengths, torch.tensor([tensor.shape[0]], device=tensor.device))
        longest = int(max(n.item() for n in lengths))
        padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
        padded[: tensor.shape[0]] = tensor
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([part[: int(n.item())] for part, n in zip(parts, lengths, strict=False)])

    # ------------------------------------------------------------------ small collective helpers
    def broadcast_choice(self, names: list[str], all_names: list[str]) -> list[str]:
        """Rank 0's choice of tasks for this step, on every rank."""
        if not self.enabled:
            return names
        import torch.distributed as dist

        device = self.device
        chosen = torch.full((len(all_names),), -1, dtype=torch.long, device=device)
        chosen[: len(names)] = torch.tensor([all_names.index(n) for n in names], dtype=torch.long)
        dist.broadcast(chosen, src=0)
        return [all_names[i] for i in chosen.tolist() if i >= 0]

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks (float64)."""
        if not self.enabled:
            return list(values)
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flag: bool) -> bool:
        return self.sum([1.0 if flag else 0.0])[0] > 0

    def objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` in rank order (in-process communication only; nothing is written)."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def average_gradients(self, parameters: list[torch.nn.Parameter]) -> None:
        """Average over the ranks the gradients of ``parameters`` outside DistributedDataParallel's reduction (a
        weighting's own, or every parameter when the weighting computes the gradients itself), in one collective.
        Every rank has gradients for the same parameters (they train the same tasks each step)."""
        if not self.enabled:
            return
        import torch.distributed as dist

        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor``'s mean over the ranks (a new tensor; ``tensor`` itself in one process)."""
        if not self.enabled:
            return tensor
        import torch.distributed as dist

        out = tensor.detach().clone().contiguous()
        dist.all_reduce(out)
        return out / self.world

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    @property
    def device(self) -> torch.device:
        if self.backend == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def init() -> Context:
    """The distributed context of this process: torchrun's environment, or a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    import torch.distributed as dist

    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend=backend)
        except (RuntimeError, ValueError) as exc:
            raise MtlError(f"distributed set-up failed (rank {rank} of {world}, {backend}): {exc}") from None
    return Context(rank=rank, world=world, local_rank=local_rank, backend=backend)


class StepModule(torch.nn.Module):
    """One forward for all the tasks of a step (what DDP wraps): ``{task: model(task, batch)}``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batches: dict[str, dict[str, torch.Tensor]]):
        return {name: self.model(name, batch) for name, batch in batches.items()}
