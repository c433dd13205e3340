"""The options `mtl run` and `mtl bench` share, as `Annotated` aliases (one definition, one help text)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

TargetOpt = Annotated[Optional[str], typer.Option("--target", "-t", help="The task to improve (its dev metric picks the best checkpoint).")]
AuxOpt = Annotated[Optional[list[str]], typer.Option("--aux", "-a", help="Auxiliary task(s); repeat or comma-separate.")]
WeightingOpt = Annotated[Optional[str], typer.Option("--weighting", "-w", help="Weighting strategy (default: uniform); see `mtl plugins`.")]
SamplerOpt = Annotated[Optional[str], typer.Option("--sampler", "-s", help="Task sampler (default: proportional).")]
RegularizerOpt = Annotated[Optional[str], typer.Option("--regularizer", "-r", help="A term added to every step's loss, e.g. smart (options: --set smart.KEY=VALUE); default none.")]
BackboneOpt = Annotated[Optional[str], typer.Option("--backbone", "-b", help="minilm (default, offline), tiny, or hf:<name-or-path>.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Plugin option NAME.KEY=VALUE (NAME: plugin, task, or weighting/sampler/backbone); repeatable.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML or JSON file of run options; command-line options override it.")]
DataDirOpt = Annotated[Optional[str], typer.Option("--data-dir", help="A GLUE-format folder (glue_data/ layout: RTE/train.tsv, ...).")]
DataOpt = Annotated[Optional[list[str]], typer.Option("--data", help="A user file for a split, TASK.SPLIT=FILE (CSV/TSV/JSONL, named columns), or TASK=FOLDER.")]

EpochsOpt = Annotated[Optional[int], typer.Option(help="Epochs (one epoch = every task's data once) (default: 3).")]
MaxStepsOpt = Annotated[Optional[int], typer.Option(help="Stop after this many steps (overrides --epochs).")]
BatchSizeOpt = Annotated[Optional[int], typer.Option(help="Training batch size (default: 32).")]
EvalBatchSizeOpt = Annotated[Optional[int], typer.Option(help="Evaluation batch size (default: 128).")]
MaxLengthOpt = Annotated[Optional[int], typer.Option(help="Maximum tokens per example (default: 128).")]
OptimizerOpt = Annotated[Optional[str], typer.Option(help="adamw (default; decoupled weight decay) or adamax (MT-DNN, SIWLM; L2 weight decay).")]
LrOpt = Annotated[Optional[float], typer.Option(help="Peak learning rate (default: 5e-5).")]
WeightDecayOpt = Annotated[Optional[float], typer.Option(help="Weight decay (default: 0.01; biases, norms and task vectors exempt).")]
WarmupOpt = Annotated[Optional[float], typer.Option(help="Fraction of steps of linear warm-up (default: 0.1).")]
ClipOpt = Annotated[Optional[float], typer.Option(help="Gradient-norm clipping, 0 = off (default: 1.0).")]
DropoutOpt = Annotated[Optional[float], typer.Option(help="Dropout before each task head (default: 0.1).")]
LimitOpt = Annotated[Optional[list[str]], typer.Option("--limit", help="N: at most N training examples per task; TASK=N: at most N of TASK (overrides N for it); repeatable: --limit 500 --limit stsb=2000.")]
TaskLimitOpt = Annotated[Optional[list[str]], typer.Option("--task-limit", help="TASK=N: the same as --limit TASK=N; repeatable.")]
EvalLimitOpt = Annotated[Optional[int], typer.Option(help="Use at most N evaluation examples per task and split.")]
LogEveryOpt = Annotated[Optional[int], typer.Option(help="Write metrics.jsonl every N steps (default: 10).")]
CheckpointEveryOpt = Annotated[Optional[int], typer.Option(help="Also checkpoint every N steps (always at each epoch end); the last two are kept.")]
PrecisionOpt = Annotated[Optional[str], typer.Option(help="fp32 (default), bf16 (autocast; CPU or CUDA) or fp16 (autocast + grad scaler; CUDA).")]
GroupByLengthOpt = Annotated[Optional[bool], typer.Option("--group-by-length/--no-group-by-length", help="Training batches of similar lengths (less padding; transformers' group_by_length) instead of plain random batches (default: off).")]
SkipNonfiniteOpt = Annotated[Optional[bool], typer.Option("--skip-nonfinite", help="Skip (and count) a step whose loss or gradient is not finite instead of stopping.")]
ReportToOpt = Annotated[Optional[str], typer.Option("--report-to", help="Experiment trackers, comma-separated, as transformers.Trainer's report_to: tensorboard, mlflow, wandb, trackio (or any registered tracker; see `mtl plugins --kind tracker`), all (every installed one) or none (default). Options: --set NAME.KEY=VALUE.")]
KeepOpt = Annotated[str | None, typer.Option("--keep", help="What the finished run keeps: all (default: the best model once, in model/ and checkpoint/, and the training-only state), model (the best model, not the weighting's state or soft targets) or none (no weights: config, metrics, eval, predictions, summary).")]
