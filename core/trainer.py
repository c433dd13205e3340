"""The multi-task trainer: a shared backbone, per-task heads, a sampler choosing each step's task(s),
a weighting turning per-instance losses into gradients (Liu et al., MT-DNN, ACL 2019; DESIGN.md).

``Trainer(config).prepare()`` checks everything a user can get wrong (names, options, data, values) before
anything is written; ``train()`` then creates the run folder and trains: AdamW with linear warm-up and
decay, gradient clipping, evaluation on dev at every epoch end, the best target checkpoint kept.
"""

from __future__ import annotations

import math
import platform
import random
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import mtl

from . import loader, rundir
from .batching import Encoded, TaskStream, encode, sorted_batches
from .config import RunConfig, plugin_options
from .errors import DataError, MtlError
from .model import MultiTaskModel
from .run import Run, cls_features
from .weighting import Step


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _split_file(config: RunConfig, task: str, split: str) -> tuple[str | None, str | None]:
    """(file, data_dir) for a task's split from ``--data``: ``task.split=FILE`` or ``task=FOLDER``."""
    if f"{task}.{split}" in config.data:
        return config.data[f"{task}.{split}"], None
    if task in config.data:
        return None, config.data[task]
    return None, config.data_dir


class Trainer:
    def __init__(self, config: RunConfig, *, progress: bool = False, overwrite: bool = False) -> None:
        self.config = config
        self.progress = progress
        self.overwrite = overwrite
        self.prepared = False

    # ------------------------------------------------------------------ preparation (no side effects)
    def prepare(self) -> "Trainer":
        c = self.config.validate()
        if not c.tasks:
            raise MtlError("no tasks: give --target (and --aux), or run without task options for the demo suite")
        for key in c.data:
            task = key.partition(".")[0]
            if task not in c.tasks:
                raise MtlError(f"--data {key}: task {task!r} is not in this run ({', '.join(c.tasks)})")
        registry_kinds = {"weighting": c.weighting, "sampler": c.sampler, "backbone": c.backbone}
        routed = plugin_options(c, registry_kinds)
        self.tasks = {name: mtl.create("task", name, **routed.get(("task", name), {})) for name in c.tasks}
        self.weighting = mtl.create("weighting", c.weighting, **routed.get(("weighting", c.weighting), {}))
        self.sampler = mtl.create("sampler", c.sampler, **routed.get(("sampler", c.sampler), {}))
        self.backbone_options = routed.get(("backbone", c.backbone), {})

        if c.output:
            self.output = Path(c.output)
            rundir.check_output(self.output, self.overwrite)
        else:
            self.output = rundir.unique(Path("runs") / rundir.default_name(c.target, c.weighting, c.sampler, c.seed))

        self.train_examples, self.eval_examples = {}, {}
        for name, task in self.tasks.items():
            file, data_dir = _split_file(c, name, task.train_split)
            examples = task.load(task.train_split, data_dir=data_dir, file=file, limit=c.limit)
            if not examples.labels:
                raise DataError(f"task {name!r}: the training data in {examples.source} has no labels")
            self.train_examples[name] = examples
            for split in task.eval_splits:
                file, data_dir = _split_file(c, name, split)
                self.eval_examples[(name, split)] = task.load(split, data_dir=data_dir, file=file, limit=c.eval_limit)

        seed_everything(c.seed)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        backbone = mtl.create("backbone", c.backbone, **self.backbone_options)
        self.model = MultiTaskModel(backbone, {n: t.num_outputs for n, t in self.tasks.items()}, c.dropout)
        tokenizer = backbone.tokenizer
        self.train_data: dict[str, Encoded] = {
            n: encode(ex, tokenizer, c.max_length, self.tasks[n].is_regression) for n, ex in self.train_examples.items()
        }
        self.eval_data: dict[tuple[str, str], Encoded] = {
            key: encode(ex, tokenizer, c.max_length, self.tasks[key[0]].is_regression)
            for key, ex in self.eval_examples.items()
        }
        sizes = {n: len(d) for n, d in self.train_data.items()}
        self.steps_per_epoch = sum(math.ceil(s / c.batch_size) for s in sizes.values())
        self.total_steps = c.max_steps or c.epochs * self.steps_per_epoch
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)

        seeds = torch.Generator().manual_seed(c.seed)
        draw = lambda: int(torch.randint(0, 2**62, (1,), generator=seeds))  # noqa: E731
        self.streams = {n: TaskStream(d, c.batch_size, torch.Generator().manual_seed(draw()))
                        for n, d in self.train_data.items()}
        self.sampler.setup(sizes, c.target, self.total_steps, torch.Generator().manual_seed(draw()))
        self.model.to(self.device)
        self.run = Run(c, self.model, self.tasks, c.target, self.train_data, self.device,
                       torch.Generator().manual_seed(draw()), self.total_steps, self.steps_per_epoch)
        self.weighting.setup(self.run)
        self.model.to(self.device)  # modules a weighting added
        self.prepared = True
        return self

    # ------------------------------------------------------------------ training
    def _optimizer(self):
        c = self.config
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                exempt = p.ndim < 2 or "norm" in name.lower() or "task_embedding" in name  # biases, norms, task vectors
                (no_decay if exempt else decay).append(p)
        extra = [p for p in self.weighting.parameters() if all(p is not q for q in decay + no_decay)]
        groups = [{"params": decay, "weight_decay": c.weight_decay},
                  {"params": no_decay + extra, "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=c.lr)
        warmup = int(c.warmup * self.total_steps)

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return max(0.0, (self.total_steps - step) / max(1, self.total_steps - warmup))

        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def _config_record(self) -> dict[str, Any]:
        registry = loader.registry()
        plugins = {}
        for kind, name in [("weighting", self.config.weighting), ("sampler", self.config.sampler),
                           ("backbone", self.config.backbone)] + [("task", t) for t in self.config.tasks]:
            entry, _ = registry.get(kind, name)
            plugins[f"{kind}.{name}"] = {"package": entry.package, "version": entry.version}
        import transformers

        return {
            **self.config.to_dict(),
            "output": str(self.output),
            "plugins": plugins,
            "sizes": {n: len(d) for n, d in self.train_data.items()},
            "sources": {n: ex.source for n, ex in self.train_examples.items()}
            | {f"{n}.{s}": ex.source for (n, s), ex in self.eval_examples.items()},
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "versions": {"mtl": mtl.__version__, "torch": torch.__version__,
                         "transformers": transformers.__version__, "python": platform.python_version()},
            "device": str(self.device),
        }

    def train(self) -> dict[str, Any]:
        if not self.prepared:
            self.prepare()
        created = not self.output.exists()
        rundir.create(self.output, self.overwrite)
        try:
            return self._train()
        except MtlError:
            if created:  # a run that failed on a user mistake leaves nothing half-written behind
                import shutil

                shutil.rmtree(self.output, ignore_errors=True)
            raise

    def _train(self) -> dict[str, Any]:
        c = self.config
        out = self.output
        rundir.write_json(out / "config.json", self._config_record())
        metrics_path = out / "metrics.jsonl"
        metrics_path.touch()
        optimizer, scheduler = self._optimizer()
        self.model.train()

        best_value, best_eval, best_epoch, best_step = -math.inf, None, -1, -1
        history = []
        train_seconds = eval_seconds = 0.0
        examples = 0
        pending: dict[str, list[float]] = {}
        bar = _Progress(self.total_steps, enabled=self.progress)
        started = time.perf_counter()
        with bar:
            for step in range(self.total_steps):
                tick = time.perf_counter()
                epoch = step // self.steps_per_epoch
                progress = step / self.total_steps
                names, losses, lr, count = self.train_step(step, optimizer, scheduler)
                examples += count
                for name, value in losses.items():
                    pending.setdefault(name, []).append(value)
                train_seconds += time.perf_counter() - tick
                bar.update(step + 1, {n: v[-1] for n, v in pending.items()})

                last = step + 1 == self.total_steps
                if step % c.log_every == 0 or last:
                    record: dict[str, Any] = {"step": step, "epoch": epoch, "tasks": names}
                    record.update({f"loss.{n}": sum(v) / len(v) for n, v in pending.items()})
                    record.update({f"p.{n}": p for n, p in self.sampler.probabilities(progress).items()})
                    record["lr"] = lr
                    record.update(self.weighting.log())
                    rundir.append_jsonl(out / "metrics.jsonl", record)
                    pending = {}

                if (step + 1) % self.steps_per_epoch == 0 or last:
                    tick = time.perf_counter()
                    results = self.evaluate()
                    eval_seconds += time.perf_counter() - tick
                    value = self._selection_value(results)
                    history.append({"epoch": epoch, "step": step, "value": value})
                    flat = {f"eval.{t}.{s}.{m}": v for t, splits in results.items()
                            for s, ms in splits.items() for m, v in ms.items()}
                    rundir.append_jsonl(out / "metrics.jsonl", {"step": step, "epoch": epoch, **flat})
                    bar.note(epoch, results, self.config.target)
                    if value > best_value or best_eval is None:
                        best_value, best_eval, best_epoch, best_step = value, results, epoch, step
                        self._save_best(out)
        total_seconds = time.perf_counter() - started
        self._restore_best(out)
        rundir.write_json(out / "eval.json", best_eval)
        summary = {
            "best_epoch": best_epoch,
            "best_step": best_step,
            "selection": self._selection_name(),
            "selection_value": best_value,
            "epochs": history,
            "steps": self.total_steps,
            "train_examples": examples,
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
            "total_seconds": total_seconds,
            "examples_per_second": examples / train_seconds if train_seconds > 0 else 0.0,
            "peak_memory_mb": _peak_memory_mb(self.device),
        }
        rundir.write_json(out / "summary.json", summary)
        self._export(out)
        return {"output": str(out), "eval": best_eval, "summary": summary}

    def _export(self, out: Path) -> None:
        """The deployable target model in ``model/``; a backbone that cannot be exported keeps the run."""
        from .export import export_model

        if self.config.target is None:
            return
        try:
            export_model(self.model, self.tasks, self.config.target, out / "model", run_dir=out)
        except MtlError as exc:  # the run itself is complete: warn, never delete it
            import sys

            print(f"mtl: warning: model/ not written: {exc}", file=sys.stderr)

    def train_step(self, step: int, optimizer, scheduler) -> tuple[list[str], dict[str, float], float, int]:
        """One optimisation step: the sampler's task(s), their batches, the weighting's backward, AdamW.

        Returns the tasks, their mean instance losses, the learning rate used and the number of examples.
        """
        c = self.config
        epoch = step // self.steps_per_epoch
        progress = step / self.total_steps
        names = self.sampler.tasks(step, progress)
        losses, features, hidden, batches = {}, {}, {}, {}
        for name in names:
            batch = {k: v.to(self.device) for k, v in next(self.streams[name]).items()}
            logits, _, hidden_states = self.model(name, batch)
            losses[name] = self.tasks[name].loss(logits, batch["labels"])
            features[name] = cls_features(hidden_states)
            hidden[name] = hidden_states
            batches[name] = batch
        means = {}
        for name, value in losses.items():
            if not torch.isfinite(value).all():
                raise MtlError(f"non-finite loss at step {step} on task {name!r}; lower --lr or check the data")
            means[name] = float(value.detach().mean())
        shared = [p for p in self.model.backbone.parameters() if p.requires_grad]
        self.weighting.backward(Step(losses=losses, features=features, target=c.target, index=step, epoch=epoch,
                                     progress=progress, shared_parameters=shared, hidden_states=hidden,
                                     batches=batches))
        if c.clip > 0:
            torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], c.clip)
        lr = optimizer.param_groups[0]["lr"]  # the rate this step used
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return names, means, lr, sum(len(b["labels"]) for b in batches.values())

    # ------------------------------------------------------------------ evaluation and checkpoints
    def _selection_name(self) -> str:
        if self.config.target:
            task = self.tasks[self.config.target]
            return f"{self.config.target}.{task.eval_splits[0]}.{task.primary_metric}"
        return "mean primary metric"

    def _selection_value(self, results: dict) -> float:
        def primary(name: str) -> float:
            task = self.tasks[name]
            return results.get(name, {}).get(task.eval_splits[0], {}).get(task.primary_metric, -math.inf)

        if self.config.target:
            return primary(self.config.target)
        return float(np.mean([primary(n) for n in self.tasks]))

    @torch.no_grad()
    def evaluate(self) -> dict[str, dict[str, dict[str, float]]]:
        was_training = self.model.training
        self.model.eval()
        results: dict[str, dict[str, dict[str, float]]] = {}
        try:
            for (name, split), data in self.eval_data.items():
                if data.labels is None or len(data) == 0:
                    continue
                task = self.tasks[name]
                predictions = torch.empty(len(data), dtype=torch.float32 if task.is_regression else torch.long)
                for positions in sorted_batches(data.lengths, self.config.eval_batch_size):
                    batch = {k: v.to(self.device) for k, v in data.collate(positions).items()}
                    logits, _, _ = self.model(name, batch)
                    predictions[positions] = task.predict(logits).cpu().to(predictions.dtype)
                results.setdefault(name, {})[split] = task.compute_metrics(predictions.numpy(), data.labels.numpy())
        finally:
            self.model.train(was_training)
        return results

    def _save_best(self, out: Path) -> None:
        state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        rundir.save_tensors(out / "checkpoint" / "best.safetensors", state, {"format": "pt", "kind": "mtl-best"})
        weighting_state = self.weighting.state_dict()
        if weighting_state:  # e.g. MAMT's memory: training-only, kept beside the model, never inside it
            rundir.save_state(out / "checkpoint" / "weighting.safetensors", weighting_state)

    def _restore_best(self, out: Path) -> None:
        from safetensors.torch import load_file

        state = load_file(out / "checkpoint" / "best.safetensors")
        self.model.load_state_dict(state)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if platform.system() != "Darwin" else peak / 2**20


class _Progress:
    """A rich progress bar with the running loss of each task and the ETA (stderr; off when not wanted)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.smoothed: dict[str, float] = {}

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.console = Console(stderr=True)
            self.bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
                                console=self.console, transient=False)
            self.bar.__enter__()
            self.task = self.bar.add_task("train", total=self.total, losses="")
        return self

    def update(self, completed: int, losses: dict[str, float]) -> None:
        if not self.enabled:
            return
        for name, value in losses.items():
            old = self.smoothed.get(name)
            self.smoothed[name] = value if old is None else 0.9 * old + 0.1 * value
        text = "  ".join(f"{n} {v:.3f}" for n, v in self.smoothed.items())
        self.bar.update(self.task, completed=completed, losses=text)

    def note(self, epoch: int, results: dict, target: str | None) -> None:
        if not self.enabled:
            return
        parts = []
        for task, splits in results.items():
            for split, metrics in splits.items():
                shown = ", ".join(f"{m} {v:.4f}" for m, v in metrics.items())
                parts.append(f"{task}/{split}: {shown}")
        self.bar.console.print(f"epoch {epoch}: " + " | ".join(parts))

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.__exit__(*exc)
        return False
