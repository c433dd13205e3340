"""The multi-task trainer: a shared backbone, per-task heads, a sampler choosing each step's task(s),
a weighting turning per-instance losses into gradients (Liu et al., MT-DNN, ACL 2019; DESIGN.md).

A façade over the run's parts: :class:`~mtl.training.plan.RunPlan` checks the options and builds the plugins,
:mod:`~mtl.training.assembly` loads the data and builds the model, :class:`~mtl.training.engine.Engine` owns device,
precision and distribution, :mod:`~mtl.training.step` makes one optimisation step, :mod:`~mtl.training.loop`
drives the steps and sends the callbacks (:class:`mtl.Callback`) their events; checkpointing, evaluation, early
stopping, the trackers and distillation are callbacks. ``Trainer(config).prepare()`` checks everything a user can
get wrong before anything is written; ``train()`` then creates the run folder (:class:`RunFolder`) and trains.
"""

from __future__ import annotations

import math
import platform
from pathlib import Path
from typing import Any

import torch

from mtl import locks
from mtl.contract import declared, loader
from mtl.errors import MtlError, OptionError
from mtl.runs import folder as run_files
from mtl.runs.config import RunConfig
from mtl.runs.folder import RunFolder
from mtl.training import assembly, distill, distributed, evaluation, failures, faults, loop, rng, step, tracking
from mtl.training import optimizer as optim
from mtl.training.checkpoint import Checkpointing
from mtl.training.engine import Engine
from mtl.training.events import Events
from mtl.training.plan import RunPlan
from mtl.training.state import LoopState
from mtl.version import __version__


class Trainer:
    COMMAND = "mtl run"  # the command that runs this trainer (named in the lock of its folder)
    RESUME_COMMAND = "mtl run --resume"  # the command that continues a stopped run of this trainer (config.json)
    TARGET_OPTIONAL = False  # whether tasks without a target are allowed (the best model is then not exported)

    def __init__(self, config: RunConfig, *, progress: bool = False, overwrite: bool = False,
                 resume: bool = False, callbacks: dict[str, Any] | None = None) -> None:
        if not isinstance(config, RunConfig):
            raise MtlError(f"Trainer(config): config must be a mtl.runs.config.RunConfig (got {type(config).__name__})")
        self.config = config
        self.progress = progress
        self.overwrite = overwrite
        self.resume = resume
        self.prepared = False
        self.extra_callbacks = dict(callbacks or {})  # callback objects given in Python, by name
        self.last_checkpoint: Path | None = None
        self.resumed_from: Path | None = None
        self.loop = LoopState()
        self.last_weights: dict[str, float] = {}  # weight.<task> of the last step, from Step.weights
        self.last_step = None  # the weighting's Step of the last micro-batch
        self.distiller: distill.Distiller | None = None  # --teacher: soft targets and the KD loss
        self.trackers = tracking.Trackers({})  # --report-to: built by prepare()
        self.events = Events({})
        self.lock: locks.FolderLock | None = None  # the run folder's, held by the main process while it trains

    @classmethod
    def resuming(cls, run_dir: str | Path, *, progress: bool = False) -> Trainer:
        """A trainer that continues the killed run in ``run_dir`` from its last good checkpoint."""
        folder = RunFolder(run_dir)
        locks.check_free(folder.path, "--resume")
        folder.require_started("--resume")
        wanted = folder.run_record().resume_command or Trainer.RESUME_COMMAND
        if wanted != cls.RESUME_COMMAND:
            raise MtlError(f"--resume {folder.path}: this run continues with `{wanted} {folder.path}`")
        if folder.finished():
            raise MtlError(f"--resume {folder.path}: the run is finished ({run_files.SUMMARY} exists); nothing to "
                           f"resume")
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

    @property
    def ctx(self) -> distributed.Context:
        """The torchrun context of the run (the engine's)."""
        return self.engine.ctx

    @property
    def device(self) -> torch.device:
        return self.engine.device

    # ------------------------------------------------------------------ preparation (no side effects)
    def _plugins(self) -> dict[str, tuple[str, Any]]:
        """The run's weighting, sampler, regularizer and backbone, built so far: kind -> (name, object)."""
        plan = getattr(self, "plan", None)
        built = plan.plugins() if plan is not None else {}
        backbone = getattr(getattr(self, "model", None), "backbone", None)
        return built | ({"backbone": (self.config.backbone, backbone)} if backbone is not None else {})

    def prepare(self) -> Trainer:
        """Check and build everything (plugins, data, model); writes nothing. A plugin whose own code raises is a
        one-line :class:`PluginError` naming it (:mod:`mtl.training.faults`)."""
        with faults.attributed(self._plugins):
            return self._prepare()

    def _prepare(self) -> Trainer:
        ctx = distributed.init()
        self.plan = plan = RunPlan.build(self.config, distributed=ctx.enabled, main=ctx.is_main,
                                         target_optional=self.TARGET_OPTIONAL)
        self.engine = Engine(self.config.precision, ctx)
        self.tasks, self.weighting, self.sampler = plan.tasks, plan.weighting, plan.sampler
        self.regularizer, self.trackers = plan.regularizer, plan.trackers
        self.output = self._choose_output()
        assembly.load_examples(self)
        self.distiller = distill.Distiller.prepare(self.config, self.tasks, self.train_examples,
                                                   resume_from=self.output if self.resume else None)
        rng.seed_everything(self.config.seed)
        assembly.build_model(self)
        assembly.encode_all(self)
        assembly.plan_steps(self)
        assembly.set_up_streams_and_plugins(self)
        self.forward = self.engine.wrap(self.model, self.weighting, self.config.seed)
        self.events = Events(self._callbacks())
        ctx.barrier()  # every rank has checked the output folder before rank 0 creates it
        self.prepared = True
        return self

    def _callbacks(self) -> dict[str, Any]:
        """The built-in callbacks (evaluation, early stopping, checkpoints, distillation, trackers), then those the
        config names, then those given in Python."""
        c = self.config
        built: dict[str, Any] = {"evaluation": evaluation.EvaluationSchedule(c.eval_every)}
        if c.patience:
            built["early-stopping"] = evaluation.EarlyStopping(c.patience)
        built["checkpointing"] = Checkpointing(c.checkpoint_every)
        if self.distiller is not None:
            built["distillation"] = self.distiller
        if self.trackers:
            built["trackers"] = tracking.Reporting(self.trackers, c.to_dict())
        return {**built, **self.plan.callbacks, **self.extra_callbacks}

    def _choose_output(self) -> Path:
        c = self.config
        if self.resume:
            locks.check_free(c.output, "--resume")
            return Path(c.output)
        if c.output:
            locks.check_free(c.output)
            RunFolder(c.output).check_writable(self.overwrite, self._reads())
            return Path(c.output)
        # the default name has the time in it: rank 0 chooses it for every rank
        name = run_files.default_name(c.target, c.weighting, c.sampler, c.seed)
        return self.engine.ctx.broadcast_object(run_files.unique(Path("runs") / name))

    def _reads(self) -> list[str]:
        """What this run reads from disk besides its packages: --overwrite must not delete it with the output."""
        c = self.config
        teachers = [path for paths in distill.normalise(c.teachers).values() for path in paths]
        files = [path for decl in c.declared for path in (decl.get("files") or {}).values()]
        return [p for p in (c.parent, c.data_dir, *c.data.values(), *teachers, *files) if p]

    def config_record(self) -> dict[str, Any]:
        registry = loader.registry()
        plugins = {}
        for kind, name in ([*self.config.plugins().items()] + [("task", t) for t in self.config.tasks]
                           + [("tracker", t) for t in self.config.report_to]
                           + [("callback", t) for t in dict.fromkeys(self.config.callbacks)]):
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
            "device": str(self.engine.device),
            "world_size": self.engine.ctx.world,
            "dropout_backend": self.engine.dropout_backend,
            "resume_command": self.RESUME_COMMAND,
            "declared": declared.record(self.config.declared, self.output),  # data given in memory: copied here
            **self.events.record(),
        }

    def train(self) -> dict[str, Any]:
        if not self.prepared:
            self.prepare()
        self.folder = RunFolder(self.output)
        created = False
        try:
            if self.engine.ctx.is_main:
                command = (self.RESUME_COMMAND if self.resume else "mtl finetune" if self.config.parent
                           else self.COMMAND)
                self.lock = locks.FolderLock(self.output, command, flag="--resume" if self.resume else "--output")
                self.lock.acquire()
            if self.engine.ctx.is_main and not self.resume:
                created = not self.output.exists()
                self.folder.create(self.overwrite, self._reads())
            with failures.explained(self, created), faults.attributed(self._plugins, self._kept):
                return self._tracked()
        finally:
            self.engine.ctx.close()
            if self.lock is not None:
                self.lock.release()

    def _kept(self) -> str:
        """What a run stopped by a plugin's fault keeps, for its message."""
        return "" if self.last_checkpoint is None else f"; {failures.resume_hint(self)}"

    # ------------------------------------------------------------------ training
    def _optimizer(self):
        c = self.config
        extra_lr = getattr(self.weighting, "parameters_lr", None)
        if extra_lr is not None and not (isinstance(extra_lr, (int, float)) and 0 < extra_lr < math.inf):
            raise OptionError(f"weighting {c.weighting!r}: the learning rate of its parameters (its option lr, "
                              f"parameters_lr) must be a positive number (got {extra_lr!r})")
        return optim.build(self.model, self.weighting.parameters(), lr=c.lr, weight_decay=c.weight_decay,
                           warmup=c.warmup, total_steps=self.total_steps, name=c.optimizer, extra_lr=extra_lr,
                           schedule=c.lr_schedule)

    def _tracked(self) -> dict[str, Any]:
        """The loop, then the trackers (--report-to) finished with the run's status."""
        try:
            result = loop.train(self)
        except BaseException as exc:
            self.trackers.finish(exc)
            raise
        self.trackers.finish()
        return result

    def train_step(self, index: int, optimizer, scheduler, scaler=None) -> step.StepResult:
        """One optimisation step (:func:`mtl.training.step.train_step`): ``(tasks, mean losses, lr, examples)``."""
        return step.train_step(self, index, optimizer, scheduler, scaler)

    def evaluate(self) -> dict[str, dict[str, dict[str, float]]]:
        """Metrics on every evaluation split (:func:`mtl.training.evaluation.evaluate`); the predictions behind
        them are left in ``self.last_predictions``."""
        engine = getattr(self, "engine", None)
        results, self.last_predictions = evaluation.evaluate(
            self.model, self.eval_data, self.tasks, self.config.eval_batch_size,
            engine.device if engine else torch.device("cpu"), engine.ctx if engine else None)
        return results
