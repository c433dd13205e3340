"""What the gradient weightings backed by TorchJD's aggregators share (Quinton & Rey, "Jacobian Descent for
Multi-Objective Optimization", arXiv 2406.16232; ``torchjd.aggregation`` 0.18).

:class:`TorchJDWeighting` is a :class:`mtl.GradientWeighting`: the contract computes the Jacobian of the step's
per-task mean losses on the shared parameters (averaged over ranks) and :meth:`TorchJDWeighting.aggregate` hands it to
a TorchJD aggregator, one row per task:

- *Lazily built.* The aggregator is built at the first step, for that step's tasks (some need their number). The rows
  keep the order of that first step (the target first for a method with a primary objective); a later step with
  another set of tasks gets an aggregator of its own. A step with one task is plain back-propagation: there is
  nothing to combine (use the ``all`` sampler).
- *Weights.* Where the aggregator combines the rows with weights (``aggregator.weighting``; for a Gramian-based one
  the Gramian weighting composed with the Gramian), a forward hook captures them as they are computed, so a stateful
  weighting is never called twice, and they are recorded with ``step.record_weights`` (logged as ``weight.<task>``).
- *Randomness.* Every aggregator runs under ``torch.random.fork_rng`` with the global generator seeded by a number
  drawn from the run's generator (``run.rng``) at each step. PCGrad's and GradVac's visiting orders and GradDrop's
  thresholds are then reproducible, the same on every rank, identical after ``--resume`` (the trainer checkpoints
  ``run.rng``), and they leave the global stream (dropout) exactly where it was.
- *State.* A stateful aggregator's state (its modules' buffers, their ``_state_key`` and step counters, anything a
  plugin adds in :attr:`TorchJDWeighting.state_attributes`) is saved by ``state_dict`` as a flat mapping of tensors
  and JSON values (:func:`flatten`: the form of both the resume checkpoint and the weighting state kept beside the
  best model), no pickle, and restored by ``load_state_dict``, also before the aggregator exists: it is applied
  when it is built.

:class:`TwoSampleWeighting` is the variant for the methods whose weight update needs two independent estimates of
the Jacobian (MoDo, SDMGrad): see its docstring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mtl import GradientWeighting
from mtl.errors import MtlError

if TYPE_CHECKING:
    import torch


class TorchJDWeighting(GradientWeighting):
    """Base of the TorchJD-backed gradient weightings: a subclass says how to :meth:`build` its aggregator."""

    #: the registered name, for messages
    name: str = "torchjd"
    #: attributes of the aggregator's modules that hold state besides their buffers
    state_attributes: tuple[str, ...] = ("_state_key", "_n_steps")
    #: True where the aggregator treats row 0 as the primary objective: the target task's row goes first
    target_first: bool = False
    #: False where ``aggregator.weighting`` is not the weights of the rows in the update (ConFIG's preference)
    records_weights: bool = True

    def __init__(self) -> None:
        super().__init__()
        self.rng = None
        self.target: str | None = None
        self.aggregators: dict[tuple, Any] = {}  # the rows' task order -> aggregator
        self.pending: dict[tuple, dict] = {}  # state loaded before the aggregator of those tasks was built
        self.captured = None

    # ------------------------------------------------------------------ what a plugin provides
    def build(self, tasks: list[str]):
        """A new TorchJD aggregator for the Jacobian whose rows are ``tasks``' gradients, in this order."""
        raise NotImplementedError

    def check(self, tasks: list[str], target: str | None) -> None:
        """Raise :class:`mtl.errors.MtlError` where the method cannot combine these tasks (at setup)."""

    # ------------------------------------------------------------------ the contract
    def setup(self, run) -> None:
        super().setup(run)
        self.rng = run.rng
        self.target = getattr(run, "target", None)
        tasks = list(getattr(run, "tasks", None) or [])
        if tasks:
            self.check(tasks, self.target)

    def aggregate(self, jacobian: torch.Tensor, tasks: list[str], step) -> torch.Tensor:
        if len(tasks) == 1:  # nothing to combine
            step.record_weights({tasks[0]: 1.0})
            return jacobian[0]
        order = self.order(tasks)
        rows = jacobian[[tasks.index(task) for task in order]]
        direction, weights = self.run_aggregator(order, rows)
        if weights is not None:
            step.record_weights({task: weights[k] for k, task in enumerate(order)})
        return direction

    # ------------------------------------------------------------------ machinery
    def order(self, tasks: list[str]) -> tuple:
        """The order of the rows for a step with ``tasks``: that of the aggregator already built for the same tasks,
        else the step's order (with the target first where :attr:`target_first`)."""
        for key in (*self.aggregators, *self.pending):
            if len(key) == len(tasks) and set(key) == set(tasks):
                return key
        order = list(tasks)
        if self.target_first and self.target in order:
            order.remove(self.target)
            order.insert(0, self.target)
        return tuple(order)

    def aggregator(self, order: tuple):
        """The aggregator for rows in ``order``, built (and given any state loaded for it) on first use."""
        if order not in self.aggregators:
            aggregator = self.build(list(order))
            weighting = getattr(aggregator, "weighting", None) if self.records_weights else None
            if weighting is not None and hasattr(weighting, "register_forward_hook"):
                weighting.register_forward_hook(self._capture)
            self.aggregators[order] = aggregator
            if order in self.pending:
                self.restore(aggregator, self.pending.pop(order))
        return self.aggregators[order]

    def _capture(self, module, inputs, output) -> None:
        self.captured = output.detach().clone()

    def run_aggregator(self, order: tuple, matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The aggregator's output on ``matrix`` and the weights it applied (None where it has none), computed with
        the global generator forked and seeded from the run's generator."""
        import torch

        aggregator = self.aggregator(order)
        if self.rng is None:
            self.rng = torch.Generator().manual_seed(0)
        seed = int(torch.randint(0, 2**62, (1,), generator=self.rng))
        devices = [matrix.device] if matrix.device.type == "cuda" else []
        self.captured = None
        with torch.random.fork_rng(devices=devices):
            torch.random.default_generator.manual_seed(seed)
            for device in devices:
                with torch.cuda.device(device):
                    torch.cuda.manual_seed(seed)
            output = aggregator(matrix)
        weights, self.captured = self.captured, None
        return output, weights

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        entries = []
        for order, aggregator in self.aggregators.items():
            state = self.capture_state(aggregator)
            if state:
                entries.append({"tasks": list(order), "state": state})
        entries += [{"tasks": list(order), "state": state} for order, state in self.pending.items()]
        return flatten({"aggregators": entries}) if entries else {}

    def load_state_dict(self, state: dict) -> None:
        state = unflatten(state or {})
        for entry in state.get("aggregators", []):
            order = tuple(entry["tasks"])
            if order in self.aggregators:
                self.restore(self.aggregators[order], entry["state"])
            else:
                self.pending[order] = entry["state"]

    def capture_state(self, aggregator) -> dict:
        """The state of every module of ``aggregator``: its buffers and :attr:`state_attributes`, by module name."""
        state = {}
        for name, module in aggregator.named_modules():
            buffers = {key: encode(value) for key, value in module._buffers.items() if value is not None}
            values = {key: encode(module.__dict__[key]) for key in self.state_attributes if key in module.__dict__}
            if buffers or values:
                state[name or "."] = {"buffers": buffers, "values": values}
        return state

    def restore(self, aggregator, state: dict) -> None:
        """Put ``state`` (from :meth:`capture_state`) back into ``aggregator``."""
        modules = dict(aggregator.named_modules())
        for name, saved in state.items():
            module = modules[name if name != "." else ""]
            for key, value in saved.get("buffers", {}).items():
                setattr(module, key, decode(value))
            for key, value in saved.get("values", {}).items():
                setattr(module, key, decode(value))


class DualConeWeighting(TorchJDWeighting):
    """TorchJD's dual-cone aggregators (UPGrad, DualProj): a preference vector and the quadprog projector's
    ``norm_eps`` and ``reg_eps``; a subclass names its aggregator class in :attr:`torchjd_class`."""

    torchjd_class = ""  # the aggregator's class name in torchjd.aggregation

    def __init__(self, pref_vector: dict[str, float] | None = None, norm_eps: float = 1e-4, reg_eps: float = 1e-4):
        super().__init__()
        if norm_eps < 0 or reg_eps < 0:
            raise ValueError(f"norm_eps and reg_eps must be >= 0 (got {norm_eps}, {reg_eps})")
        self.pref_vector, self.norm_eps, self.reg_eps = pref_vector, norm_eps, reg_eps

    def check(self, tasks, target):
        check_preference(self.pref_vector, tasks, self.name)

    def build(self, tasks):
        import torchjd.aggregation
        from torchjd.linalg import QuadprogProjector

        return getattr(torchjd.aggregation, self.torchjd_class)(
            preference(self.pref_vector, tasks, self.name),
            projector=QuadprogProjector(norm_eps=self.norm_eps, reg_eps=self.reg_eps))


def rows_in_first_order(weighting, jacobian: torch.Tensor, tasks: list, plugin: str, what: str) -> torch.Tensor:
    """The Jacobian's rows in the order of the tasks of the first step (``weighting.tasks``, set here), for a method
    that keeps per-task state across steps; a step with other tasks is a one-line error (``what``: the state)."""
    if weighting.tasks is None:
        weighting.tasks = list(tasks)
    elif set(weighting.tasks) != set(tasks) or len(weighting.tasks) != len(tasks):
        raise MtlError(f"weighting {plugin!r} {what} of {', '.join(weighting.tasks)} but this step has "
                       f"{', '.join(tasks)}: use --sampler all")
    return jacobian[[tasks.index(task) for task in weighting.tasks]]


class TwoSampleWeighting(TorchJDWeighting):
    """A method whose task-weight update needs ``A = J₁ J₂ᵀ`` from two independent mini-batches (MoDo, SDMGrad).

    The two samples are the two halves of each task's batch: its even and its odd rows (disjoint draws of the same
    shuffled loader, so independent estimates; interleaved, so a batch ordered by length splits evenly). The contract's
    Jacobian is taken of 2T objectives, half-sums scaled so that each pair adds up to the task's mean loss
    (``Σ_even ℓ / n`` and ``Σ_odd ℓ / n``): the heads still get exactly their task's gradient, the rows rescaled by
    ``n / n_half`` are the halves' mean gradients J₁ and J₂, and their sum is the whole batch's. The weighting (built
    by :meth:`build`, called once per step) turns ``A`` into weights λ, and the update direction is ``λᵀ J`` with J
    the whole batch's Jacobian (ζ = ξ ∪ ξ′: the two-batch use that TorchJD documents for MoDo; LibMTL draws a third
    batch for the update instead). A step where a task has fewer than two instances cannot be split: it updates with
    the weights of the previous step (uniform before any), without a weight update.
    """

    def __init__(self) -> None:
        super().__init__()
        self.previous: dict[tuple, torch.Tensor] = {}  # the last weights, per task order

    def objectives(self, step) -> dict:
        """Each task's two half-sums, keyed ``(task, 0)`` and ``(task, 1)``; the tasks' means where a task has fewer
        than two instances (or the step one task)."""
        sizes = [int(losses.shape[0]) for losses in step.losses.values()]
        if len(sizes) < 2 or min(sizes) < 2:
            return super().objectives(step)
        halves = {}
        for task, losses in step.losses.items():
            n = losses.shape[0]
            for half, part in ((0, losses[0::2]), (1, losses[1::2])):
                halves[(task, half)] = part.sum() / n  # Σ_half ℓ / n: the two add up to the task's mean
        self.sizes = {task: (int(losses[0::2].shape[0]), int(losses[1::2].shape[0]), int(losses.shape[0]))
                      for task, losses in step.losses.items()}
        return halves

    def aggregate(self, jacobian: torch.Tensor, tasks: list, step) -> torch.Tensor:
        import torch

        if not tasks or not isinstance(tasks[0], tuple):  # not split: one task, or a batch of one instance
            if len(tasks) == 1:
                step.record_weights({tasks[0]: 1.0})
                return jacobian[0]
            order = self.order(tasks)
            rows = jacobian[[tasks.index(task) for task in order]]
            weights = self.previous.get(order)
            if weights is None:
                weights = torch.full((len(order),), 1.0 / len(order), dtype=rows.dtype, device=rows.device)
            step.record_weights({task: weights[k] for k, task in enumerate(order)})
            return weights.to(rows) @ rows
        real = [task for task, half in tasks if half == 0]
        order = self.order(real)
        first = jacobian[[tasks.index((task, 0)) for task in order]]
        second = jacobian[[tasks.index((task, 1)) for task in order]]
        scale_first = torch.tensor([self.sizes[t][2] / self.sizes[t][0] for t in order], dtype=first.dtype,
                                   device=first.device)
        scale_second = torch.tensor([self.sizes[t][2] / self.sizes[t][1] for t in order], dtype=first.dtype,
                                    device=first.device)
        two_sample = (first * scale_first[:, None]) @ (second * scale_second[:, None]).T  # J₁ J₂ᵀ
        weights, _ = self.run_aggregator(order, two_sample)
        self.previous[order] = weights.detach().clone()
        step.record_weights({task: weights[k] for k, task in enumerate(order)})
        return weights @ (first + second)

    def state_dict(self) -> dict:
        state = unflatten(super().state_dict())
        if self.previous:
            state["previous"] = [{"tasks": list(order), "weights": encode(weights)}
                                 for order, weights in self.previous.items()]
        return flatten(state) if state else {}

    def load_state_dict(self, state: dict) -> None:
        state = unflatten(state or {})
        super().load_state_dict(flatten({"aggregators": state.get("aggregators", [])}))
        self.previous = {tuple(entry["tasks"]): decode(entry["weights"]) for entry in state.get("previous", [])}


def preference(values: dict[str, float] | None, tasks: list[str], plugin: str, option: str = "pref_vector"):
    """A per-task option (``{task: weight}``, every task named) as a tensor in the rows' order, or None."""
    if values is None:
        return None
    import torch

    missing = [task for task in tasks if task not in values]
    unknown = [task for task in values if task not in tasks]
    if missing or unknown:
        raise MtlError(f"weighting {plugin!r}: option {option!r} needs one value per task of the step "
                       f"({', '.join(tasks)})" + (f"; missing {', '.join(missing)}" if missing else "")
                       + (f"; not in the step: {', '.join(unknown)}" if unknown else ""))
    return torch.tensor([float(values[task]) for task in tasks])


def check_preference(values: dict[str, float] | None, tasks: list[str], plugin: str,
                     option: str = "pref_vector") -> None:
    """At setup: a per-task option names exactly the run's tasks."""
    if values is not None:
        preference(values, tasks, plugin, option)


# ---------------------------------------------------------------------------------------------- state encoding
def flatten(tree: dict) -> dict:
    """A nested state as one flat mapping: its tensors at the top (``tensor.N``) and the rest as the JSON value
    ``layout`` that refers to them, the form a weighting's state takes beside the best model (top-level tensors and
    JSON values only) as well as in the resume checkpoint."""
    import torch

    tensors: dict[str, Any] = {}

    def walk(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            key = f"tensor.{len(tensors)}"
            tensors[key] = value.detach().cpu().contiguous()
            return {"__tensor__": key}
        if isinstance(value, dict):
            return {str(key): walk(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(item) for item in value]
        return value

    return {"layout": walk(tree), **tensors}


def unflatten(state: dict) -> dict:
    """The inverse of :func:`flatten` (an empty state stays empty)."""
    if "layout" not in state:
        return dict(state)

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"__tensor__"}:
                return state[value["__tensor__"]]
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return walk(state["layout"])


def encode(value: Any) -> Any:
    """A state value as tensors and JSON values (tuples, dtypes, devices and NumPy arrays tagged)."""
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        return {"tensor": value.detach().clone(), "device": str(value.device)}
    if isinstance(value, np.ndarray):
        return {"numpy": torch.from_numpy(value.copy())}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"device": str(value)}
    if isinstance(value, tuple):
        return {"tuple": [encode(item) for item in value]}
    if isinstance(value, list):
        return [encode(item) for item in value]
    return value


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`."""
    import torch

    if isinstance(value, dict):
        if "tensor" in value:
            return value["tensor"].to(on_device(value.get("device", "cpu"))).clone()
        if "numpy" in value:
            return value["numpy"].clone().numpy()
        if "dtype" in value:
            return getattr(torch, value["dtype"])
        if "device" in value:
            return torch.device(value["device"])
        if "tuple" in value:
            return tuple(decode(item) for item in value["tuple"])
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value


def on_device(name: str) -> str:
    """The device a saved tensor goes back to: where it was, or the CPU where that device is not available."""
    import torch

    return "cpu" if name.startswith("cuda") and not torch.cuda.is_available() else name
