"""`mtl finetune`: continue a finished multi-task run on its target alone (multi-task then fine-tune)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .common import user_errors
from .run import print_results
from .run_options import run_options, run_values

#: the run options a fine-tuning stage takes from its parent run (mtl.training.finetune.FIXED) or does not use
FROM_PARENT = ("target", "aux", "weighting", "sampler", "backbone", "teachers", "teacher_temperature")


@run_options(exclude=FROM_PARENT)
def finetune(
    run: Annotated[Path, typer.Argument(help="A finished `mtl run` folder (its target is fine-tuned).")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="The run folder.", show_default="RUN-finetune",
                                                  rich_help_panel="Output")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed; the same seed gives the same run.",
                                                show_default="RUN's", rich_help_panel="Training")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the run folder if it exists.",
                                            rich_help_panel="Output")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.", rich_help_panel="Output")] = False,
    **options: Any,
) -> None:
    """Fine-tune RUN's target alone, starting from RUN's shared backbone and target head (MT-DNN, SIWLM).

    The new run has RUN's options (backbone, data, schedule) without the auxiliary tasks, with the uniform
    weighting; options given here override RUN's (e.g. --regularizer smart, --epochs 2, --lr 2e-5). It is an
    ordinary run folder (config.json names RUN as its parent): `mtl run --resume`, `mtl export` work on it.
    """
    with user_errors():
        from mtl.runs import folder as run_files
        from mtl.training.finetune import finetune_config
        from mtl.training.trainer import Trainer

        cfg = finetune_config(run, run_values(options | {"seed": seed}))
        cfg.output = output or str(run_files.unique(Path(f"{str(run).rstrip('/')}-finetune")))
        result = Trainer(cfg, progress=not quiet, overwrite=overwrite).prepare().train()
        print_results(result, cfg.target)
