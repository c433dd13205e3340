"""The multi-task trainer: a shared backbone, per-task heads, a sampler choosing each step's task(s),
a weighting turning per-instance losses into gradients (Liu et al., MT-DNN, ACL 2019; DESIGN.md).

``Trainer(config).prepare()`` checks everything a user can get wrong (names, options, data, values) before
anything is written; ``train()`` then creates the run folder and trains: AdamW with linear warm-up and
decay, gradient clipping, evaluation on dev at every epoch end, the best target checkpoint kept, crash-safe
checkpoints (``--checkpoint-every``, ``Trainer.resuming(RUN)``), mixed precision, and data parallelism under
torchrun (:mod:`mtl.training.distributed`). Every file of the run folder goes through
:class:`mtl.runs.folder.RunFolder`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import platform
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtl.contract import loader
from mtl.contract.weighting import Step
from mtl.data.batching import Encoded, TaskStream, encode, sorted_batches
from mtl.errors import (DataError, Interrupted, MtlError, OptionError, PluginError, Stopped, StorageError,
                        TrainingError, warn)
from mtl.model import dropout as kernel_dropout
from mtl.model.attention import use_kernel_attention
from mtl.model.context import Run, cls_features
from mtl.model.multitask import MultiTaskModel
from mtl.runs import folder as run_files
from mtl.runs import signals
from mtl.runs.config import RunConfig
from mtl.runs.folder import RunFolder
from mtl.training import distributed, distill, faults, finetune, rng, tracking
from mtl.training import optimizer as optim
from mtl.training.progress import Progress
from mtl.training.scaling import scale_gradients
from mtl.training.state import LoopState
from mtl.version import __version__


def _split_file(config: RunConfig, task: str, split: str) -> tuple[str | None, str | None]:
    """(file, data_dir) for a task's split from ``--data``: ``task.split=FILE`` or ``task=FOLDER``."""
    if f"{task}.{split}" in config.data:
        return config.data[f"{task}.{split}"], None
    if task in config.data:
        return None, config.data[task]
    return None, config.data_dir


def _check_task(name: str, task) -> None:
    """What a task plugin must declare before a run trains it: known metrics, the first one primary, and labels
    (or None for a regression task)."""
    from mtl.data.metrics import METRICS

    metrics = tuple(task.metrics or ())
    if not metrics:
        raise PluginError(f"task {name!r} declares no metrics (the first one is the primary metric)")
    for metric in metrics:
        if metric not in METRICS:
            raise PluginError(f"task {name!r}: unknown metric {metric!r} (known: {', '.join(METRICS)})")
    if task.labels is not None and len(task.labels) < 2:
        raise PluginError(f"task {name!r} declares {len(task.labels)} labels; a classification task needs two or "
                          f"more (labels = None for a regression task)")


class Trainer:
    RESUME_COMMAND = "mtl run --resume"  # the command that continues a stopped run of this trainer (config.json)

    def __init__(self, config: RunConfig, *, progress: bool = False, overwrite: bool = False,
                 resume: bool = False) -> None:
        if not isinstance(config, RunConfig):
            raise MtlError(f"Trainer(config): config must be a mtl.runs.config.RunConfig (got {type(config).__name__})")
        self.config = config
        self.progress = progress
        self.overwrite = overwrite
        self.resume = resume
        self.prepared = False
        self.last_checkpoint: Path | None = None
        self.loop = LoopState()
        self.last_weights: dict[str, float] = {}  # weight.<task> of the last step, from Step.weights
        self.distiller: distill.Distiller | None = None  # --teacher: soft targets and the KD loss
        self.trackers = tracking.Trackers({})  # --report-to: built by prepare()

    @classmethod
    def resuming(cls, run_dir: str | Path, *, progress: bool = False) -> "Trainer":
        """A trainer that continues the killed run in ``run_dir`` from its last good checkpoint."""
        folder = RunFolder(run_dir)
        folder.require_started("--resume")
        wanted = folder.run_record().resume_command or Trainer.RESUME_COMMAND
        if wanted != cls.RESUME_COMMAND:
            raise MtlError(f"--resume {folder.path}: this run continues with `{wanted} {folder.path}`")
        if folder.finished():
            raise MtlError(f"--resume {folder.path}: the run is finished ({run_files.SUMMARY} exists); nothing to resume")
        if folder.latest_checkpoint() is None and any(folder.checkpoints.glob("step-*.safetensors")):
            raise MtlError(f"--resume {folder.path}: {run_files.CHECKPOINTS}/{run_files.MANIFEST}, the list that "
                           f"verifies the checkpoint files, is missing or empty, so their files cannot be trusted; "
                           f"restore it, or start again in another folder (--overwrite would delete them)")
        if folder.latest_checkpoint() is None:
            raise MtlError(f"--resume {folder.path}: no checkpoint was written before the run stopped; start it again "
                           f"(same options, --overwrite)")
        config, _ = folder.config()
        config.output = str(folder.path)
        return cls(config, progress=progress, resume=True)

    # ------------------------------------------------------------------ preparation (no side effects)
    def _plugins(self) -> dict[str, tuple[str, Any]]:
        """The run's weighting, sampler, regularizer and backbone, built so far: kind -> (name, object)."""
        c = self.config
        built = {"weighting": (c.weighting, getattr(self, "weighting", None)),
                 "sampler": (c.sampler, getattr(self, "sampler", None)),
                 "regularizer": (c.regularizer, getattr(self, "regularizer", None)),
                 "backbone": (c.backbone, getattr(getattr(self, "model", None), "backbone", None))}
        return {kind: (name, obj) for kind, (name, obj) in built.items() if obj is not None}

    def prepare(self) -> "Trainer":
        """Check and build everything (plugins, data, model); writes nothing. A plugin whose own code raises is a
        one-line :class:`PluginError` naming it (:mod:`mtl.training.faults`)."""
        with faults.attributed(self._plugins):
            return self._prepare()

    def _prepare(self) -> "Trainer":
        self._check_config()
        self.ctx = distributed.init()
        if self.config.precision == "fp16" and not torch.cuda.is_available():
            raise OptionError("--precision fp16 needs a CUDA device (its grad scaler); use bf16 on CPU")
        self._create_plugins()
        self.output = self._choose_output()
        self._load_examples()
        self.distiller = distill.Distiller.prepare(self.config, self.tasks, self.train_examples,
                                                   resume_from=self.output if self.resume else None)
        rng.seed_everything(self.config.seed)
        self.device = self.ctx.device if self.ctx.enabled else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self._build_model()
        self._encode()
        self._plan_steps()
        self._set_up_streams_and_plugins()
        self._wrap_for_distributed()
        self.ctx.barrier()  # every rank has checked the output folder before rank 0 creates it
        self.prepared = True
        return self

    def _check_config(self) -> None:
        c = self.config.validate()
        if not c.tasks:
            raise MtlError("no tasks: give --target (and --aux), or run without task options for the demo suite")
        for key in c.data:
            task = key.partition(".")[0]
            if task not in c.tasks:
                raise MtlError(f"--data {key}: task {task!r} is not in this run ({', '.join(c.tasks)})")

    def _create_plugins(self) -> None:
        c = self.config
        routed = c.plugin_options()
        self.tasks = {name: loader.create("task", name, **routed.get(("task", name), {})) for name in c.tasks}
        for name, task in self.tasks.items():
            _check_task(name, task)
        for key in c.data:
            name, _, split = key.partition(".")
            read = [self.tasks[name].train_split, *self.tasks[name].eval_splits]
            if split and split not in read:
                raise MtlError(f"--data {key}: a run of {name!r} reads the splits {', '.join(read)} (got {split!r})")
        self.weighting = loader.create("weighting", c.weighting, **routed.get(("weighting", c.weighting), {}))
        self.sampler = loader.create("sampler", c.sampler, **routed.get(("sampler", c.sampler), {}))
        self.backbone_options = routed.get(("backbone", c.backbone), {})
        self.regularizer = (loader.create("regularizer", c.regularizer, **routed.get(("regularizer", c.regularizer), {}))
                            if c.regularizer else None)
        # --report-to: built on every rank (a missing package is an error before anything is written), used on rank 0
        c.report_to = tracking.resolve(c.report_to)
        self.trackers = tracking.create(c.report_to, {name: routed.get(("tracker", name), {}) for name in c.report_to},
                                        enabled=self.ctx.is_main)
        if self.ctx.enabled and not getattr(self.weighting, "supports_distributed", True):
            raise MtlError(f"weighting {c.weighting!r} does not support distributed training (run it in one process)")
        if self.ctx.enabled and not getattr(self.regularizer, "supports_distributed", True):
            raise MtlError(f"regularizer {c.regularizer!r} does not support distributed training (run it in one process)")

    def _choose_output(self) -> Path:
        c = self.config
        if self.resume:
            return Path(c.output)
        if c.output:
            RunFolder(c.output).check_writable(self.overwrite, self._reads())
            return Path(c.output)
        # the default name has the time in it: rank 0 chooses it for every rank
        name = run_files.default_name(c.target, c.weighting, c.sampler, c.seed)
        return self.ctx.broadcast_object(run_files.unique(Path("runs") / name))

    def _reads(self) -> list[str]:
        """What this run reads from disk besides its packages: --overwrite must not delete it with the output."""
        c = self.config
        teachers = [path for paths in distill.normalise(c.teachers).values() for path in paths]
        return [p for p in (c.parent, c.data_dir, *c.data.values(), *teachers) if p]

    def _load_examples(self) -> None:
        c = self.config
        self.train_examples, self.eval_examples = {}, {}
        for name, task in self.tasks.items():
            file, data_dir = _split_file(c, name, task.train_split)
            examples = task.load(task.train_split, data_dir=data_dir, file=file, limit=c.task_limits.get(name, c.limit))
            if not examples.labels:
                raise DataError(f"task {name!r}: the training data in {examples.source} has no labels")
            self.train_examples[name] = examples
            for split in task.eval_splits:
                file, data_dir = _split_file(c, name, split)
                self.eval_examples[(name, split)] = task.load(split, data_dir=data_dir, file=file, limit=c.eval_limit)

    def _build_model(self) -> None:
        backbone = loader.create("backbone", self.config.backbone, **self.backbone_options)
        self.model = MultiTaskModel(backbone, {n: t.num_outputs for n, t in self.tasks.items()}, self.config.dropout)

    def _use_cpu_kernels(self) -> None:
        """On CPU: dropout and attention dropout by the C++ kernel (mtl.model.dropout, mtl.model.attention)."""
        self.dropout_backend = "torch"
        if self.device.type != "cpu" or kernel_dropout.BACKEND != "cpp":
            return
        kernel_dropout.use_kernel_dropout(self.model)
        for module in self.model.modules():
            if hasattr(getattr(module, "config", None), "_attn_implementation"):
                use_kernel_attention(module)
        self.dropout_backend = "cpp"

    def _encode(self) -> None:
        c, tokenizer = self.config, self.model.backbone.tokenizer
        for name, task in self.tasks.items():  # room for the special tokens and one token of each text
            texts = len(task.text_columns)
            needed = tokenizer.num_special_tokens_to_add(pair=texts == 2) + texts
            if c.max_length < needed:
                raise OptionError(f"--max-length {c.max_length} is too short for task {name!r}: the tokenizer needs "
                                  f"{needed} tokens for one token of each of its {texts} text(s) with "
                                  f"{needed - texts} special tokens")
        self.train_data: dict[str, Encoded] = {
            n: encode(ex, tokenizer, c.max_length, self.tasks[n].is_regression) for n, ex in self.train_examples.items()
        }
        self.eval_data: dict[tuple[str, str], Encoded] = {
            key: encode(ex, tokenizer, c.max_length, self.tasks[key[0]].is_regression)
            for key, ex in self.eval_examples.items()
        }

    def _plan_steps(self) -> None:
        c = self.config
        self.sizes = {n: len(d) for n, d in self.train_data.items()}  # training examples per task
        self.steps_per_epoch = sum(math.ceil(s / c.batch_size) for s in self.sizes.values())
        self.total_steps = c.max_steps or c.epochs * self.steps_per_epoch
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)

    def _set_up_streams_and_plugins(self) -> None:
        """The data streams, the sampler and the weighting, each with its own generator drawn from the seed."""
        c = self.config
        seeds = torch.Generator().manual_seed(c.seed)
        draw = lambda: int(torch.randint(0, 2**62, (1,), generator=seeds))  # noqa: E731
        self.streams = {n: TaskStream(d, c.batch_size, torch.Generator().manual_seed(draw()), c.group_by_length)
                        for n, d in self.train_data.items()}
        self.sampler.setup(self.sizes, c.target, self.total_steps, torch.Generator().manual_seed(draw()))
        self.model.to(self.device)
        self.run = Run(c, self.model, self.tasks, c.target, self.train_data, self.device,
                       torch.Generator().manual_seed(draw()), self.total_steps, self.steps_per_epoch)
        self.weighting.setup(self.run)
        self.model.to(self.device)  # modules a weighting added
        self._use_cpu_kernels()
        if c.parent:  # `mtl finetune`: start from the parent run's backbone and target head
            finetune.load_parent(self.model, c.parent, c.target)
        if self.regularizer is not None:  # after the weighting: the model is complete
            try:
                self.regularizer.setup(self.run)
            except ValueError as exc:
                raise OptionError(f"regularizer {c.regularizer!r}: {exc}") from None

    def _wrap_for_distributed(self) -> None:
        self.forward = distributed.StepModule(self.model)
        if not self.ctx.enabled:
            return
        # a weighting that sets the gradients itself (per-task Jacobians) trains without DDP: train_step averages
        # its gradients over the ranks (every rank starts from the same seed, so from the same weights)
        if not getattr(self.weighting, "computes_gradients", False):
            from torch.nn.parallel import DistributedDataParallel

            # one task per step leaves the other heads without gradients: find_unused_parameters
            self.forward = DistributedDataParallel(
                self.forward, device_ids=[self.ctx.local_rank] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        torch.manual_seed(self.config.seed + 1_000_003 * self.ctx.rank)  # a different dropout stream per rank

    # ------------------------------------------------------------------ training
    def _optimizer(self):
        c = self.config
        extra_lr = getattr(self.weighting, "parameters_lr", None)
        if extra_lr is not None and not (isinstance(extra_lr, (int, float)) and 0 < extra_lr < math.inf):
            raise OptionError(f"weighting {c.weighting!r}: the learning rate of its parameters (its option lr, "
                              f"parameters_lr) must be a positive number (got {extra_lr!r})")
        return optim.build(self.model, self.weighting.parameters(), lr=c.lr, weight_decay=c.weight_decay,
                           warmup=c.warmup, total_steps=self.total_steps, name=c.optimizer, extra_lr=extra_lr)

    def _scaler(self):
        """fp16's gradient scaler (CUDA only, checked in prepare), else None."""
        return torch.amp.GradScaler("cuda") if self.config.precision == "fp16" else None

    def _config_record(self) -> dict[str, Any]:
        registry = loader.registry()
        plugins = {}
        for kind, name in ([*self.config.plugins().items()] + [("task", t) for t in self.config.tasks]
                           + [("tracker", t) for t in self.config.report_to]):
            entry, _ = registry.get(kind, name)
            plugins[f"{kind}.{name}"] = {"package": entry.package, "version": entry.version}
        import transformers

        return {
            **self.config.to_dict(),
            "output": str(self.output),
            "plugins": plugins,
            "sizes": self.sizes,
            "sources": {n: ex.source for n, ex in self.train_examples.items()}
            | {f"{n}.{s}": ex.source for (n, s), ex in self.eval_examples.items()},
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "versions": {"mtl": __version__, "torch": torch.__version__,
                         "transformers": transformers.__version__, "python": platform.python_version()},
            "device": str(self.device),
            "world_size": self.ctx.world,
            "dropout_backend": self.dropout_backend,
            "resume_command": self.RESUME_COMMAND,
        }

    def train(self) -> dict[str, Any]:
        if not self.prepared:
            self.prepare()
        self.folder = RunFolder(self.output)
        created = False
        if self.ctx.is_main and not self.resume:
            created = not self.output.exists()
            self.folder.create(self.overwrite, self._reads())
        try:
            with faults.attributed(self._plugins, self._kept):
                return self._tracked()
        except TrainingError:
            raise  # stopped on purpose: the run folder and its checkpoints are kept for --resume
        except (KeyboardInterrupt, Stopped) as exc:  # SIGINT / SIGTERM: nothing half-written (atomic writes)
            signum = signals.stopping(exc)
            if self.folder.finished():  # stopped while writing model/ or freeing the checkpoints: nothing to resume
                where = (f"the run had finished ({run_files.EVAL} and {run_files.SUMMARY} are written)"
                         + ("" if self.folder.model_dir.is_dir() else
                            f"; {run_files.MODEL}/ was not written: `mtl export {self.output}` writes it"))
            elif self.last_checkpoint is not None:
                where = self._resume_hint()
            else:
                where = "no checkpoint was written yet: start the run again (same options, --overwrite)"
            raise Interrupted(f"stopped by {signals.name(signum)}; {where}", signum) from None
        except StorageError as exc:  # the folder could not be written: keep what is there, say how to go on
            if created and self.last_checkpoint is None:
                shutil.rmtree(self.output, ignore_errors=True)
                raise StorageError(f"{exc}; nothing was trained yet and {self.output} was removed: "
                                   f"remove the cause and start the run again") from None
            where = (f"the last checkpoint {self.last_checkpoint} is intact: remove the cause and continue with "
                     f"`{self.RESUME_COMMAND} {self.output}`" if self.last_checkpoint is not None else
                     "no checkpoint was written yet: remove the cause and start again with --overwrite")
            raise StorageError(f"{exc}; {where}") from None
        except MtlError:
            if created and self.last_checkpoint is None:  # a run that failed before anything was kept (a user
                shutil.rmtree(self.output, ignore_errors=True)  # mistake) leaves nothing half-written behind
            raise
        finally:
            self.ctx.close()

    def _resume_hint(self) -> str:
        """How a stopped run with a checkpoint goes on, for its message."""
        return (f"the last checkpoint {self.last_checkpoint} is intact: continue with "
                f"`{self.RESUME_COMMAND} {self.output}`")

    def _kept(self) -> str:
        """What a run stopped by a plugin's fault keeps, for its message."""
        return "" if self.last_checkpoint is None else f"; {self._resume_hint()}"

    def _tracked(self) -> dict[str, Any]:
        """:meth:`_train`, then the trackers (--report-to) finished with the run's status."""
        try:
            result = self._train()
        except BaseException as exc:
            self.trackers.finish(exc)
            raise
        self.trackers.finish()
        return result

    def _train(self) -> dict[str, Any]:
        optimizer, scheduler = self._optimizer()
        scaler = self._scaler()
        self.model.train()
        self._start(optimizer, scheduler, scaler)
        bar = Progress(self.total_steps, enabled=self.progress and self.ctx.is_main)
        started = time.perf_counter()
        with bar:
            bar.update(self.loop.step, {})
            for step in range(self.loop.step, self.total_steps):
                signals.check()  # a SIGTERM whose exception a finaliser swallowed
                self._train_and_log(step, optimizer, scheduler, scaler, bar)
                last = step + 1 == self.total_steps
                epoch_end = (step + 1) % self.steps_per_epoch == 0 or last
                if epoch_end:
                    self._end_epoch(step, bar)
                if epoch_end or (self.config.checkpoint_every and (step + 1) % self.config.checkpoint_every == 0):
                    self.loop.step = step + 1
                    self._checkpoint(optimizer, scheduler, scaler)
        return self._finish(time.perf_counter() - started)

    def _start(self, optimizer, scheduler, scaler) -> None:
        """A new run writes config.json and an empty metrics.jsonl; a resumed one loads its last checkpoint."""
        if self.resume:
            state, self.last_checkpoint = self.folder.load_checkpoint()
            self.resumed_from = self.last_checkpoint
            self.loop = self._load_state(state, optimizer, scheduler, scaler)
            if self.ctx.is_main:  # records written after that checkpoint are written again
                self.folder.truncate_metrics(self.loop.metrics_bytes)
        else:
            self.loop = LoopState()
            if self.ctx.is_main:
                self.folder.write_config(self._config_record())
                self.folder.start_metrics()
                if self.distiller is not None:
                    self.distiller.save(self.folder)
        self.trackers.start(self.output.name, self.config.to_dict(), self.output)  # rank 0's only (--report-to)

    def _train_and_log(self, step: int, optimizer, scheduler, scaler, bar: Progress) -> None:
        """One step, its time and losses added to the loop state, and a metrics record every --log-every steps."""
        loop, tick = self.loop, time.perf_counter()
        names, losses, lr, count = self.train_step(step, optimizer, scheduler, scaler)
        loop.examples += count
        loop.add_losses(losses)
        loop.train_seconds += time.perf_counter() - tick
        bar.update(step + 1, {n: v[-1] for n, v in loop.pending.items()})
        if step % self.config.log_every == 0 or step + 1 == self.total_steps:
            record: dict[str, Any] = {"step": step, "epoch": step // self.steps_per_epoch, "tasks": names}
            record.update({f"loss.{n}": v for n, v in loop.take_losses().items()})
            record.update({f"p.{n}": p for n, p in self.sampler.probabilities(step / self.total_steps).items()})
            record["lr"] = lr
            record.update({f"weight.{task}": value for task, value in self.last_weights.items()})
            record.update(self.weighting.log())
            if self.regularizer is not None:
                record.update(self.regularizer.log())
            if loop.skipped:
                record["nonfinite.skipped"] = loop.skipped
            if self.ctx.is_main:
                self.folder.append_metrics(record)
                self.trackers.log(step, record)  # --report-to: what metrics.jsonl records

    def _end_epoch(self, step: int, bar: Progress) -> None:
        """Evaluate, record the metrics, and keep the model when it is the best so far."""
        loop, epoch = self.loop, step // self.steps_per_epoch
        tick = time.perf_counter()
        results = self.evaluate()
        loop.eval_seconds += time.perf_counter() - tick
        value = self._selection_value(results)
        loop.history.append({"epoch": epoch, "step": step, "value": value})
        flat = {f"eval.{t}.{s}.{m}": v for t, splits in results.items() for s, ms in splits.items() for m, v in ms.items()}
        if self.ctx.is_main:
            self.folder.append_metrics({"step": step, "epoch": epoch, **flat})
            self.trackers.log(step, {"epoch": epoch, **flat})  # --report-to
        bar.note(epoch, results, self.config.target)
        if loop.is_best(value):
            loop.keep_best(value, results, epoch, step)
            if self.ctx.is_main:
                self.folder.save_best(self._model_state(), self.weighting.state_dict())
                # the predictions eval.json's metrics come from (kept, like best.safetensors, for --resume)
                self.folder.write_predictions(self.last_predictions, epoch=epoch, step=step)

    def _finish(self, total_seconds: float) -> dict[str, Any]:
        """Restore the best model; write eval.json, summary.json and model/; keep what --keep says."""
        loop = self.loop
        summary = {
            "best_epoch": loop.best_epoch,
            "best_step": loop.best_step,
            "selection": self._selection_name(),
            "selection_value": loop.best_value,
            "epochs": loop.history,
            "steps": self.total_steps,
            "skipped_steps": loop.skipped,
            "train_examples": loop.examples,
            "train_seconds": loop.train_seconds,
            "eval_seconds": loop.eval_seconds,
            "total_seconds": total_seconds,
            "examples_per_second": loop.examples / loop.train_seconds if loop.train_seconds > 0 else 0.0,
            "peak_memory_mb": _peak_memory_mb(self.device),
            "world_size": self.ctx.world,
            "resumed_from": str(self.resumed_from) if self.resume else None,
        }
        if self.ctx.is_main:
            self.model.load_state_dict(self.folder.best())
            self.folder.write_eval(loop.best_eval)
            self.folder.write_summary(summary)
            self._keep()
        self.ctx.barrier()
        return {"output": str(self.output), "eval": loop.best_eval, "summary": summary}

    def _keep(self) -> None:
        """What the finished run keeps (--keep): model/ and one copy of the best model (best.safetensors then holds
        what model/ lacks), unless ``none``; the resume checkpoints are freed (a finished run cannot be resumed)."""
        if self.config.keep != "none" and self._export():
            try:
                self.folder.deduplicate_best()
            except MtlError as exc:  # e.g. no space for the rewrite: the whole model stays, as before
                warn(f"{self.folder.best_path} kept whole (with model/ beside it): {exc}")
        self.folder.clear_checkpoints()
        self.folder.prune(self.config.keep)

    def _export(self) -> bool:
        """The deployable target model in ``model/``; a backbone that cannot be exported keeps the run. Whether
        model/ was written."""
        from mtl.runs.export import export_model

        if self.config.target is None:
            return False
        try:
            export_model(self.model, self.tasks, self.config.target, self.folder.model_dir, run_dir=self.output,
                         weighting=self.weighting)
        except MtlError as exc:  # the run itself is complete: warn, never delete it
            warn(f"{run_files.MODEL}/ not written: {exc}; `mtl export {self.output}` writes it later")
            return False
        return True

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
        batches, rows = {}, {}
        for name, indices in chosen.items():
            local = rows[name] = ctx.shard(indices)[0] if split else indices
            batches[name] = {k: v.to(self.device) for k, v in self.train_data[name].collate(local).items()}
        self.before_step(step, batches, optimizer)
        with self._autocast():
            outputs = self.forward(batches)
        losses, features, hidden, outputs_of = {}, {}, {}, {}
        for name, (logits, _, hidden_states) in outputs.items():
            outputs_of[name] = logits = logits.float()
            losses[name] = self.tasks[name].loss(logits, batches[name]["labels"])
            if self.distiller is not None:  # ½·(hard-label loss + soft-target loss) for a task with a teacher
                losses[name] = self.distiller.loss(name, losses[name], logits, rows[name])
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
        # fp16: the weighting sees the true losses and outputs; the gradients they pass on are scaled (scaling.py)
        grad_scale = float(scaler.scale(torch.ones((), device=self.device))) if scaler is not None else 1.0
        shared = [p for p in self.model.backbone.parameters() if p.requires_grad]
        weighting_step = Step(losses=scale_gradients(losses, grad_scale), features=features, target=c.target,
                              index=step, epoch=epoch, progress=progress, shared_parameters=shared,
                              hidden_states=scale_gradients(hidden, grad_scale), batches=batches,
                              logits=scale_gradients(outputs_of, grad_scale), global_means=means,
                              reduce_fn=ctx.mean if ctx.enabled else None, grad_scale=grad_scale)
        if self.regularizer is not None:  # its gradient first (graph kept), then the weighting's adds to it
            plain = dataclasses.replace(weighting_step, losses=losses, hidden_states=hidden, logits=outputs_of)
            with self._autocast():
                term = self.regularizer.loss(plain)  # a term of the plain outputs, scaled as a whole below
            if term is not None:
                if not bool(torch.isfinite(term)):
                    return self._nonfinite(step, "+".join(names), f"{c.regularizer} term", optimizer, scheduler, names,
                                           lr, examples)
                (scaler.scale(term) if scaler is not None else term).backward(retain_graph=True)
        self.run.gather_fn = ctx.gather if split else None
        try:
            self.weighting.backward(weighting_step)
        finally:
            self.run.gather_fn = None
        self.last_weights = weighting_step.weights
        if getattr(self.weighting, "computes_gradients", False):  # no DDP: average every gradient here
            ctx.average_gradients([*self.model.parameters(), *self.weighting.parameters()])
        else:
            ctx.average_gradients(self.weighting.parameters())
        if scaler is not None:
            for p in self.weighting.parameters():  # true gradients (scaling.py): scaled like the model's, then
                if p.grad is not None:  # the scaler divides every gradient of the optimizer
                    p.grad.mul_(grad_scale)
            scaler.unscale_(optimizer)
        if c.clip > 0:
            # the model's gradients only: a weighting's own parameters (GradNorm's weights, UW's log-variances) would
            # otherwise shrink the model's update by the size of their gradients
            norm = torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], c.clip)
            if scaler is None and not bool(torch.isfinite(norm)):
                return self._nonfinite(step, "+".join(names), "gradient", optimizer, scheduler, names, lr, examples)
        if scaler is not None:
            scaler.step(optimizer)  # skips the update when the scaled gradients overflowed
            scaler.update()
        else:
            optimizer.step()
        if self.regularizer is not None:
            self.regularizer.after_step()
        if hasattr(self.weighting, "after_step"):  # a duck-typed plugin without the base class may lack it
            weighting_step.recompute_fn = lambda: self._losses_after_update(batches, rows, split)
            self.weighting.after_step(weighting_step)
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return names, means, lr, examples

    def _losses_after_update(self, batches: dict[str, dict[str, torch.Tensor]], rows: dict[str, list[int]],
                             split: bool) -> dict[str, torch.Tensor]:
        """Each task's mean instance loss on this step's batches under the updated model (no graph; over every
        rank), for :meth:`Step.losses_after_update`."""
        with torch.no_grad(), self._autocast():
            outputs = self.forward(batches)
        names = list(outputs)
        sums, counts = [], []
        for name in names:
            losses = self.tasks[name].loss(outputs[name][0].float(), batches[name]["labels"])
            if self.distiller is not None:
                losses = self.distiller.loss(name, losses, outputs[name][0].float(), rows[name])
            sums.append(float(losses.double().sum()))
            counts.append(float(losses.numel()))
        share = 1.0 if split or not self.ctx.enabled else 1.0 / self.ctx.world  # replicated batches count once
        reduced = self.ctx.sum([x * share for x in sums + counts])
        k = len(names)
        return {n: torch.tensor(reduced[i] / reduced[k + i]) for i, n in enumerate(names)}

    def before_step(self, step: int, batches: dict[str, dict[str, torch.Tensor]], optimizer) -> None:
        """Called by :meth:`train_step` with the step's batches (on the device) before it trains on them, the model
        and ``optimizer`` (learning rate and state) as this step finds them. Does nothing here; a subclass may look
        (:mod:`mtl.study.affinity` measures task affinity) but leaves the model, the optimizer, the data streams
        and every random generator as it found them, so the run trains exactly as without it."""

    def _nonfinite(self, step: int, task: str, what: str, optimizer, scheduler, names, lr, examples):
        """Stop with an error naming the step, task and last checkpoint; or skip the step (--skip-nonfinite)."""
        optimizer.zero_grad(set_to_none=True)
        if not self.config.skip_nonfinite:
            where = (f"last checkpoint {self.last_checkpoint} (continue with `{self.RESUME_COMMAND} {self.output}`)"
                     if self.last_checkpoint else "no checkpoint written yet")
            raise TrainingError(f"non-finite {what} at step {step} on task {task!r} (weighting "
                                f"{self.config.weighting!r}); {where}; lower --lr, check the data and the weighting, "
                                f"or pass --skip-nonfinite")
        self.loop.skipped += 1
        scheduler.step()  # the schedule stays aligned with the step count
        return names, {}, lr, 0

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, optimizer, scheduler, scaler) -> None:
        """Everything :meth:`_load_state` needs to continue exactly here (rank 0 writes it)."""
        rng_states = self.ctx.objects(rng.capture())  # every rank's own generators (dropout differs per rank)
        if not self.ctx.is_main:
            self.last_checkpoint = self.folder.checkpoints  # for the error message only
            return
        self.loop.metrics_bytes = self.folder.metrics_size()
        state = {
            "format": 1,
            "world_size": self.ctx.world,
            "model": self._model_state(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "sampler": self.sampler.state_dict(),
            "weighting": self.weighting.state_dict(),
            "regularizer": self.regularizer.state_dict() if self.regularizer is not None else {},
            "weighting_parameters": [p.detach().cpu().clone() for p in self.weighting.parameters()],
            "streams": {name: stream.state_dict() for name, stream in self.streams.items()},
            "run_rng": self.run.rng.get_state(),
            "rng": rng_states,
            "loop": self.loop.to_dict(),
        }
        self.last_checkpoint = self.folder.save_checkpoint(self.loop.step, state)

    def _load_state(self, state: dict[str, Any], optimizer, scheduler, scaler) -> LoopState:
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
        if self.regularizer is not None:
            self.regularizer.load_state_dict(state.get("regularizer") or {})
        with torch.no_grad():
            for p, saved in zip(self.weighting.parameters(), state["weighting_parameters"]):
                p.copy_(saved)
        for name, stream in self.streams.items():
            stream.load_state_dict(state["streams"][name])
        self.run.rng.set_state(state["run_rng"])
        rng.restore(state["rng"][self.ctx.rank])
        return LoopState.from_dict(state["loop"])

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
        """Metrics on every evaluation split, in float32; under torchrun each rank predicts every world-th batch.

        The predictions and labels behind them (in the order of each split's file) are left in
        ``self.last_predictions`` (``"<task>.<split>" -> (predictions, labels)``) for predictions.safetensors."""
        was_training = self.model.training
        self.model.eval()
        ctx = getattr(self, "ctx", None) or distributed.Context()
        results: dict[str, dict[str, dict[str, float]]] = {}
        self.last_predictions: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
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
                self.last_predictions[f"{name}.{split}"] = (predictions, data.labels.to(predictions.dtype))
        finally:
            self.model.train(was_training)
        return results

    def _model_state(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the model's weights (safetensors refuses tensors that share memory)."""
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if platform.system() != "Darwin" else peak / 2**20
