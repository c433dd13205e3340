"""The multi-task trainer: a shared backbone, per-task heads, a sampler choosing each step's task(s),
a weighting turning per-instance losses into gradients (Liu et al., MT-DNN, ACL 2019; DESIGN.md).

``Trainer(config).prepare()`` checks everything a user can get wrong (names, options, data, values) before
anything is written; ``train()`` then creates the run folder and trains: AdamW with linear warm-up and
decay, gradient clipping, evaluation on dev at every epoch end, the best target checkpoint kept, crash-safe
checkpoints (``--checkpoint-every``, ``Trainer.resuming(RUN)``), mixed precision, and data parallelism under
torchrun (:mod:`mtl.distributed`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import mtl

from . import checkpoint, distributed, loader, rng, rundir
from .batching import Encoded, TaskStream, encode, sorted_batches
from .config import FIELD_NAMES, RunConfig, plugin_options
from .errors import DataError, MtlError, OptionError, TrainingError, warn
from .model import MultiTaskModel
from .run import Run, cls_features
from .weighting import Step


def _split_file(config: RunConfig, task: str, split: str) -> tuple[str | None, str | None]:
    """(file, data_dir) for a task's split from ``--data``: ``task.split=FILE`` or ``task=FOLDER``."""
    if f"{task}.{split}" in config.data:
        return config.data[f"{task}.{split}"], None
    if task in config.data:
        return None, config.data[task]
    return None, config.data_dir


class Trainer:
    def __init__(self, config: RunConfig, *, progress: bool = False, overwrite: bool = False,
                 resume: bool = False) -> None:
        self.config = config
        self.progress = progress
        self.overwrite = overwrite
        self.resume = resume
        self.prepared = False
        self.last_checkpoint: Path | None = None

    @classmethod
    def resuming(cls, run_dir: str | Path, *, progress: bool = False) -> "Trainer":
        """A trainer that continues the killed run in ``run_dir`` from its last good checkpoint."""
        run_dir = Path(run_dir)
        record_path = run_dir / "config.json"
        if not record_path.is_file():
            raise MtlError(f"--resume {run_dir}: not a run folder (no config.json)")
        if (run_dir / "summary.json").exists():
            raise MtlError(f"--resume {run_dir}: the run is finished (summary.json exists); nothing to resume")
        if checkpoint.latest(run_dir / "checkpoint") is None:
            raise MtlError(f"--resume {run_dir}: no checkpoint was written before the run stopped; start it again "
                           f"(same options, --overwrite)")
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise MtlError(f"{record_path}: unreadable ({exc})") from None
        values = {k: v for k, v in record.items() if k in FIELD_NAMES}
        values["output"] = str(run_dir)
        return cls(RunConfig(**values), progress=progress, resume=True)

    # ------------------------------------------------------------------ preparation (no side effects)
    def prepare(self) -> "Trainer":
        c = self.config.validate()
        if not c.tasks:
            raise MtlError("no tasks: give --target (and --aux), or run without task options for the demo suite")
        for key in c.data:
            task = key.partition(".")[0]
            if task not in c.tasks:
                raise MtlError(f"--data {key}: task {task!r} is not in this run ({', '.join(c.tasks)})")
        self.ctx = distributed.init()
        if c.precision == "fp16" and not torch.cuda.is_available():
            raise OptionError("--precision fp16 needs a CUDA device (its grad scaler); use bf16 on CPU")
        registry_kinds = {"weighting": c.weighting, "sampler": c.sampler, "backbone": c.backbone}
        routed = plugin_options(c, registry_kinds)
        self.tasks = {name: mtl.create("task", name, **routed.get(("task", name), {})) for name in c.tasks}
        self.weighting = mtl.create("weighting", c.weighting, **routed.get(("weighting", c.weighting), {}))
        self.sampler = mtl.create("sampler", c.sampler, **routed.get(("sampler", c.sampler), {}))
        self.backbone_options = routed.get(("backbone", c.backbone), {})
        if self.ctx.enabled and not getattr(self.weighting, "supports_distributed", True):
            raise MtlError(f"weighting {c.weighting!r} does not support distributed training (run it in one process)")

        if self.resume:
            self.output = Path(c.output)
        elif c.output:
            self.output = Path(c.output)
            rundir.check_output(self.output, self.overwrite)
        else:  # the default name has the time in it: rank 0 chooses it for every rank
            self.output = self.ctx.broadcast_object(
                rundir.unique(Path("runs") / rundir.default_name(c.target, c.weighting, c.sampler, c.seed)))

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

        rng.seed_everything(c.seed)
        if self.ctx.enabled:
            self.device = self.ctx.device
        else:
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
        self.forward = distributed.StepModule(self.model)
        if self.ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            # one task per step leaves the other heads without gradients: find_unused_parameters
            self.forward = DistributedDataParallel(
                self.forward, device_ids=[self.ctx.local_rank] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
            torch.manual_seed(c.seed + 1_000_003 * self.ctx.rank)  # a different dropout stream per rank
        self.loop: dict[str, Any] = {"skipped": 0}  # the training loop's state (replaced in _train)
        self.ctx.barrier()  # every rank has checked the output folder before rank 0 creates it
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

    def _scaler(self):
        """fp16's gradient scaler (CUDA only, checked in prepare), else None."""
        return torch.amp.GradScaler("cuda") if self.config.precision == "fp16" else None

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
            "world_size": self.ctx.world,
        }

    def train(self) -> dict[str, Any]:
        if not self.prepared:
            self.prepare()
        created = False
        if self.ctx.is_main and not self.resume:
            created = not self.output.exists()
            rundir.create(self.output, self.overwrite)
        try:
            return self._train()
        except TrainingError:
            raise  # stopped on purpose: the run folder and its checkpoints are kept for --resume
        except MtlError:
            if created:  # a run that failed on a user mistake leaves nothing half-written behind
                import shutil

                shutil.rmtree(self.output, ignore_errors=True)
            raise
        finally:
            self.ctx.close()

    def _train(self) -> dict[str, Any]:
        c = self.config
        out = self.output
        main = self.ctx.is_main
        metrics_path = out / "metrics.jsonl"
        optimizer, scheduler = self._optimizer()
        scaler = self._scaler()
        self.model.train()
        loop: dict[str, Any] = {"step": 0, "best_value": -math.inf, "best_eval": None, "best_epoch": -1,
                                "best_step": -1, "history": [], "train_seconds": 0.0, "eval_seconds": 0.0,
                                "examples": 0, "skipped": 0, "pending": {}, "metrics_bytes": 0}
        if self.resume:
            state, self.last_checkpoint = checkpoint.load(out / "checkpoint")
            self.resumed_from = self.last_checkpoint
            loop = self._load_state(state, optimizer, scheduler, scaler)
            if main:  # records written after that checkpoint are written again below
                os.truncate(metrics_path, loop["metrics_bytes"])
        elif main:
            rundir.write_json(out / "config.json", self._config_record())
            metrics_path.touch()
        self.loop = loop
        bar = _Progress(self.total_steps, enabled=self.progress and main)
        started = time.perf_counter()
        with bar:
            bar.update(loop["step"], {})
            for step in range(loop["step"], self.total_steps):
                tick = time.perf_counter()
                epoch = step // self.steps_per_epoch
                progress = step / self.total_steps
                names, losses, lr, count = self.train_step(step, optimizer, scheduler, scaler)
                loop["examples"] += count
                for name, value in losses.items():
                    loop["pending"].setdefault(name, []).append(value)
                loop["train_seconds"] += time.perf_counter() - tick
                bar.update(step + 1, {n: v[-1] for n, v in loop["pending"].items()})

                last = step + 1 == self.total_steps
                if step % c.log_every == 0 or last:
                    record: dict[str, Any] = {"step": step, "epoch": epoch, "tasks": names}
                    record.update({f"loss.{n}": sum(v) / len(v) for n, v in loop["pending"].items()})
                    record.update({f"p.{n}": p for n, p in self.sampler.probabilities(progress).items()})
                    record["lr"] = lr
                    record.update(self.weighting.log())
                    if loop["skipped"]:
                        record["nonfinite.skipped"] = loop["skipped"]
                    if main:
                        rundir.append_jsonl(metrics_path, record)
                    loop["pending"] = {}

                epoch_end = (step + 1) % self.steps_per_epoch == 0 or last
                if epoch_end:
                    tick = time.perf_counter()
                    results = self.evaluate()
                    loop["eval_seconds"] += time.perf_counter() - tick
                    value = self._selection_value(results)
                    loop["history"].append({"epoch": epoch, "step": step, "value": value})
                    flat = {f"eval.{t}.{s}.{m}": v for t, splits in results.items()
                            for s, ms in splits.items() for m, v in ms.items()}
                    if main:
                        rundir.append_jsonl(metrics_path, {"step": step, "epoch": epoch, **flat})
                    bar.note(epoch, results, self.config.target)
                    if value > loop["best_value"] or loop["best_eval"] is None:
                        loop.update(best_value=value, best_eval=results, best_epoch=epoch, best_step=step)
                        if main:
                            self._save_best(out)
                if epoch_end or (c.checkpoint_every and (step + 1) % c.checkpoint_every == 0):
                    loop["step"] = step + 1
                    self._checkpoint(loop, optimizer, scheduler, scaler)
        total_seconds = time.perf_counter() - started
        summary = {
            "best_epoch": loop["best_epoch"],
            "best_step": loop["best_step"],
            "selection": self._selection_name(),
            "selection_value": loop["best_value"],
            "epochs": loop["history"],
            "steps": self.total_steps,
            "skipped_steps": loop["skipped"],
            "train_examples": loop["examples"],
            "train_seconds": loop["train_seconds"],
            "eval_seconds": loop["eval_seconds"],
            "total_seconds": total_seconds,
            "examples_per_second": loop["examples"] / loop["train_seconds"] if loop["train_seconds"] > 0 else 0.0,
            "peak_memory_mb": _peak_memory_mb(self.device),
            "world_size": self.ctx.world,
            "resumed_from": str(self.resumed_from) if self.resume else None,
        }
        if main:
            self._restore_best(out)
            rundir.write_json(out / "eval.json", loop["best_eval"])
            rundir.write_json(out / "summary.json", summary)
            self._export(out)
            checkpoint.clear(out / "checkpoint")  # a finished run cannot be resumed: free the training state
        self.ctx.barrier()
        return {"output": str(out), "eval": loop["best_eval"], "summary": summary}

    def _export(self, out: Path) -> None:
        """The deployable target model in ``model/``; a backbone that cannot be exported keeps the run."""
        from .export import export_model

        if self.config.target is None:
            return
        try:
            export_model(self.model, self.tasks, self.config.target, out / "model", run_dir=out)
        except MtlError as exc:  # the run itself is complete: warn, never delete it
            warn(f"model/ not written: {exc}")

    def _autocast(self):
        precision = self.config.precision
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def train_step(self, step: int, optimizer, scheduler, scaler=None) -> tuple[list[str], dict[str, float], float, int]:
        """One optimisation step: the sampler's task(s), their batches, the weighting's backward, AdamW.

        Under torchrun every rank trains rank 0's choice of task(s) on its shard of the global batch; the
        per-instance losses are scaled by world × (local / global instances), so the gradient DDP averages is
        the gradient of the global batch's mean loss. Returns the tasks, their mean instance losses (over the
        global batch), the learning rate used and the number of examples (global).
        """
        c, ctx = self.config, self.ctx
        epoch = step // self.steps_per_epoch
        progress = step / self.total_steps
        names = ctx.broadcast_choice(self.sampler.tasks(step, progress), list(self.tasks))
        chosen = {name: self.streams[name].next_indices() for name in names}
        split = ctx.enabled and all(len(ix) >= ctx.world for ix in chosen.values())
        batches = {}
        for name, indices in chosen.items():
            local = ctx.shard(indices)[0] if split else indices
            batches[name] = {k: v.to(self.device) for k, v in self.train_data[name].collate(local).items()}
        with self._autocast():
            outputs = self.forward(batches)
        losses, features, hidden = {}, {}, {}
        for name, (logits, _, hidden_states) in outputs.items():
            losses[name] = self.tasks[name].loss(logits.float(), batches[name]["labels"])
            features[name] = cls_features(hidden_states)
            hidden[name] = hidden_states

        # one collective for what every rank must agree on: non-finite flags, loss sums, instance counts
        flags = [0.0 if bool(torch.isfinite(losses[n]).all()) else 1.0 for n in names]
        sums = [float(losses[n].detach().double().sum()) if not flags[i] else 0.0 for i, n in enumerate(names)]
        counts = [float(losses[n].numel()) for n in names]
        share = 1.0 if split or not ctx.enabled else 1.0 / ctx.world  # replicated steps count once
        reduced = ctx.sum(flags + [x * share for x in sums + counts])
        k = len(names)
        bad = [n for i, n in enumerate(names) if reduced[i] > 0]
        means = {n: reduced[k + i] / reduced[2 * k + i] for i, n in enumerate(names)}
        lr = optimizer.param_groups[0]["lr"]  # the rate this step uses
        examples = sum(len(ix) for ix in chosen.values())
        if bad:
            return self._nonfinite(step, bad[0], "loss", optimizer, scheduler, names, lr, examples)

        if split:  # gradient of the global mean after DDP's average over ranks
            scale = ctx.world * sum(counts) / sum(reduced[2 * k:])
            losses = {n: value * scale for n, value in losses.items()}
        if scaler is not None:
            losses = {n: scaler.scale(value) for n, value in losses.items()}
        shared = [p for p in self.model.backbone.parameters() if p.requires_grad]
        self.run.gather_fn = ctx.gather if split else None
        try:
            self.weighting.backward(Step(losses=losses, features=features, target=c.target, index=step, epoch=epoch,
                                         progress=progress, shared_parameters=shared, hidden_states=hidden,
                                         batches=batches))
        finally:
            self.run.gather_fn = None
        ctx.average_gradients(self.weighting.parameters())
        if scaler is not None:
            scaler.unscale_(optimizer)
        if c.clip > 0:
            norm = torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], c.clip)
            if scaler is None and not bool(torch.isfinite(norm)):
                return self._nonfinite(step, "+".join(names), "gradient", optimizer, scheduler, names, lr, examples)
        if scaler is not None:
            scaler.step(optimizer)  # skips the update when the scaled gradients overflowed
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return names, means, lr, examples

    def _nonfinite(self, step: int, task: str, what: str, optimizer, scheduler, names, lr, examples):
        """Stop with an error naming the step, task and last checkpoint; or skip the step (--skip-nonfinite)."""
        optimizer.zero_grad(set_to_none=True)
        if not self.config.skip_nonfinite:
            where = (f"last checkpoint {self.last_checkpoint} (continue with `mtl run --resume {self.output}`)"
                     if self.last_checkpoint else "no checkpoint written yet")
            raise TrainingError(f"non-finite {what} at step {step} on task {task!r}; {where}; lower --lr, "
                                f"check the data, or pass --skip-nonfinite")
        self.loop["skipped"] += 1
        scheduler.step()  # the schedule stays aligned with the step count
        return names, {}, lr, 0

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, loop: dict[str, Any], optimizer, scheduler, scaler) -> None:
        """Everything :meth:`_load_state` needs to continue exactly here (rank 0 writes it)."""
        rng_states = self.ctx.objects(rng.capture())  # every rank's own generators (dropout differs per rank)
        if not self.ctx.is_main:
            self.last_checkpoint = self.output / "checkpoint"  # for the error message only
            return
        metrics_path = self.output / "metrics.jsonl"
        loop["metrics_bytes"] = metrics_path.stat().st_size
        state = {
            "format": 1,
            "world_size": self.ctx.world,
            "model": self._model_state(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "sampler": self.sampler.state_dict(),
            "weighting": self.weighting.state_dict(),
            "weighting_parameters": [p.detach().cpu().clone() for p in self.weighting.parameters()],
            "streams": {name: stream.state_dict() for name, stream in self.streams.items()},
            "run_rng": self.run.rng.get_state(),
            "rng": rng_states,
            "loop": loop,
        }
        self.last_checkpoint = checkpoint.save(self.output / "checkpoint", loop["step"], state)

    def _load_state(self, state: dict[str, Any], optimizer, scheduler, scaler) -> dict[str, Any]:
        if state.get("world_size", 1) != self.ctx.world:
            raise MtlError(f"{self.last_checkpoint}: written by {state.get('world_size')} process(es); resume it with "
                           f"the same number (this is {self.ctx.world})")
        self.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        self.weighting.load_state_dict(state["weighting"])
        with torch.no_grad():
            for p, saved in zip(self.weighting.parameters(), state["weighting_parameters"]):
                p.copy_(saved)
        for name, stream in self.streams.items():
            stream.load_state_dict(state["streams"][name])
        self.run.rng.set_state(state["run_rng"])
        rng.restore(state["rng"][self.ctx.rank])
        return state["loop"]

    # ------------------------------------------------------------------ evaluation and best model
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
        """Metrics on every evaluation split, in float32; under torchrun each rank predicts every world-th batch."""
        was_training = self.model.training
        self.model.eval()
        ctx = getattr(self, "ctx", None) or distributed.Context()
        results: dict[str, dict[str, dict[str, float]]] = {}
        try:
            for (name, split), data in self.eval_data.items():
                if data.labels is None or len(data) == 0:
                    continue
                task = self.tasks[name]
                predictions = torch.empty(len(data), dtype=torch.float32 if task.is_regression else torch.long)
                mine = []
                for positions in sorted_batches(data.lengths, self.config.eval_batch_size)[ctx.rank :: ctx.world]:
                    batch = {k: v.to(self.device) for k, v in data.collate(positions).items()}
                    logits, _, _ = self.model(name, batch)
                    mine.append((positions, task.predict(logits).cpu().to(predictions.dtype)))
                for part in ctx.objects(mine):
                    for positions, values in part:
                        predictions[positions] = values
                results.setdefault(name, {})[split] = task.compute_metrics(predictions.numpy(), data.labels.numpy())
        finally:
            self.model.train(was_training)
        return results

    def _model_state(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the model's weights (safetensors refuses tensors that share memory)."""
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def _save_best(self, out: Path) -> None:
        rundir.save_tensors(out / "checkpoint" / "best.safetensors", self._model_state(),
                            {"format": "pt", "kind": "mtl-best"})
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
