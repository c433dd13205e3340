"""The end of a run: the best model restored, eval.json, summary.json and model/ written, and what ``--keep``
says kept."""

from __future__ import annotations

import platform
import resource
from typing import Any

import torch

from mtl.errors import MtlError, warn
from mtl.runs import folder as run_files
from mtl.training import evaluation


def finish(t, total_seconds: float) -> dict[str, Any]:
    """Send ``on_train_end`` (callbacks may add to the summary), restore the best model, write the results."""
    loop, ctx = t.loop, t.engine.ctx
    summary = {
        "best_epoch": loop.best_epoch,
        "best_step": loop.best_step,
        "selection": evaluation.selection_name(t.config, t.tasks),
        "selection_value": loop.best_value,
        "epochs": loop.history,
        "steps": t.total_steps,
        "steps_done": loop.step,
        "skipped_steps": loop.skipped,
        "non_finite_logged": loop.non_finite_logged(),
        "train_examples": loop.examples,
        "train_seconds": loop.train_seconds,
        "eval_seconds": loop.eval_seconds,
        "total_seconds": total_seconds,
        "examples_per_second": loop.examples / loop.train_seconds if loop.train_seconds > 0 else 0.0,
        "peak_memory_mb": peak_memory_mb(t.engine.device),
        "world_size": ctx.world,
        "resumed_from": str(t.resumed_from) if t.resume else None,
    }
    extra: dict[str, Any] = {}
    t.events.fire("on_train_end", summary=summary, result=extra)
    if ctx.is_main:
        t.model.load_state_dict(t.folder.best())
        t.folder.write_eval(loop.best_eval)
        t.folder.write_summary(summary)
        keep(t)
        warn_non_finite(loop.non_finite)
    ctx.barrier()
    return {"output": str(t.output), "eval": loop.best_eval, "summary": summary, **extra}


def warn_non_finite(non_finite: dict[str, dict[str, int]]) -> None:
    """One warning per plugin (or the run itself) that logged values written as null in metrics.jsonl."""
    for who, counts in non_finite.items():
        n, keys = sum(counts.values()), ", ".join(list(counts)[:5]) + (", ..." if len(counts) > 5 else "")
        what = "1 value that is" if n == 1 else f"{n} values that are"
        warn(f"{who} logged {what} not finite (NaN or infinity) as null in {run_files.METRICS} (keys: {keys})")


def keep(t) -> None:
    """What the finished run keeps (--keep): model/ and one copy of the best model (best.safetensors then holds
    what model/ lacks), unless ``none``; the resume checkpoints are freed (a finished run cannot be resumed)."""
    if t.config.keep != "none" and export(t):
        try:
            t.folder.deduplicate_best()
        except MtlError as exc:  # e.g. no space for the rewrite: the whole model stays, as before
            warn(f"{t.folder.best_path} kept whole (with model/ beside it): {exc}")
    t.folder.clear_checkpoints()
    t.folder.prune(t.config.keep)


def export(t) -> bool:
    """The deployable target model in ``model/``; a backbone that cannot be exported keeps the run. Whether
    model/ was written."""
    from mtl.runs.export import export_model

    if t.config.target is None:
        return False
    try:
        export_model(t.model, t.tasks, t.config.target, t.folder.model_dir, run_dir=t.output, weighting=t.weighting)
    except MtlError as exc:  # the run itself is complete: warn, never delete it
        warn(f"{run_files.MODEL}/ not written: {exc}; `mtl export {t.output}` writes it later")
        return False
    return True


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if platform.system() != "Darwin" else peak / 2**20
