"""`mtl export`, `mtl predict`, `mtl eval`: the deployable target model of a run, predictions, re-evaluation."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from mtl.schema import BY_NAME

from .common import console, user_errors

ModelArg = Annotated[Path, typer.Argument(help="A run folder (written by `mtl run`) or an exported model folder.",
                                          show_default=False)]
TaskOpt = Annotated[str | None, typer.Option("--task", help="The task (default: the run's target); a run folder "
                                                              "has every task's head, an export only its own.")]


def export(
    run: Annotated[Path, typer.Argument(help="The run folder (written by `mtl run`).", show_default=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder to write.",
                                                   show_default="RUN/model")] = None,
    task: TaskOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --output if it is not empty.")] = False,
) -> None:
    """Write the deployable target model: backbone + target head, training-only parts (MAMT's memory,
    auxiliary heads) plugged out. BERT, RoBERTa, DeBERTa-v2, ELECTRA and DistilBERT backbones load with plain
    transformers (AutoModelForSequenceClassification.from_pretrained(OUT)); models with a module between backbone and
    heads (MMoE's experts and gates) load with `mtl predict OUT`."""
    with user_errors():
        from mtl.locks import check_free
        from mtl.runs.export import export_model
        from mtl.runs.folder import check_empty
        from mtl.runs.restore import load_run, read_config

        out = output if output is not None else run / "model"
        read_config(run)  # a one-line error for a folder that is not a run, before anything is loaded
        check_free(out)
        check_empty(out, overwrite, "--output", reads=[run])
        config, model, tasks = load_run(run)
        name = task or config.target
        if name not in tasks:
            from mtl.errors import MtlError, unknown

            raise MtlError(unknown("task of this run", name, list(tasks)))
        result = export_model(model, tasks, name, out, run_dir=run, overwrite=overwrite)
        _describe(result)


def _describe(result: dict) -> None:
    out = result["path"]
    target = "regression, 1 output" if result["labels"] is None else f"labels {', '.join(result['labels'])}"
    typer.echo(f"Exported task {result['task']} ({target}) to {out}")
    if result["loadable_with_transformers"]:
        typer.echo(f"Loads with plain transformers: AutoModelForSequenceClassification.from_pretrained({out!r}) "
                   f"and AutoTokenizer.from_pretrained({out!r}); `mtl predict {out}` works too.")
    elif result.get("feature_map"):
        feature_map = result["feature_map"]
        typer.echo(f"Not a plain transformers classifier: weighting {feature_map['weighting']!r} puts a module "
                   f"between the pooler and the classifier, so AutoModelForSequenceClassification cannot load it "
                   f"(the encoder alone is in {out}/{feature_map['encoder']}). Use `mtl predict {out}` or "
                   f"`mtl eval {out}`.")
    else:
        attention = result["task_attention"]
        typer.echo(f"Not a plain transformers classifier: the 'activation' task embedding changes every "
                   f"self-attention layer, which plain BERT cannot compute (the encoder alone is in "
                   f"{out}/{attention['encoder']}). Use `mtl predict {out}` or `mtl eval {out}`.")
    if result.get("task_attention"):
        typer.echo(f"Task embedding 'activation' (act = {result['task_attention']['activation']}) kept beside the "
                   f"encoder: the target's W·e_t per layer and W' in {out}/{result['task_attention']['file']}.")
    if result.get("folded"):
        typer.echo(f"Task embedding {result['task_embedding']!r} folded into plain weights: {result['folded']}.")
    for item in result["plugged_out"]:
        typer.echo(f"Plugged out: {item}")
    typer.echo(f"Manifest: {out}/mtl_export.json")


def predict(
    model: ModelArg,
    source: Annotated[str, typer.Option("--input", "-i", help="A file of input lines, or - for stdin. Each line: a "
                                       "JSON object with the task's text columns, or one text (two for a pair "
                                       "task, separated by a tab).")] = "-",
    task: TaskOpt = None,
) -> None:
    """Predict: one JSON line per input line, {"label", "score", "logits"} ({"score"} for regression)."""
    with user_errors():
        from mtl.errors import MtlError
        from mtl.runs.predict import load_predictor, parse_lines

        if source == "-":
            lines, where = sys.stdin.read().splitlines(), "<stdin>"
        else:
            try:
                lines, where = Path(source).read_text(encoding="utf-8").splitlines(), source
            except FileNotFoundError:
                raise MtlError(f"--input {source}: file not found") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise MtlError(f"--input {source}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
        predictor = load_predictor(model, task)
        texts = parse_lines(lines, predictor.task, where)  # every line is checked before anything is printed
        for row in predictor.predict(texts):
            typer.echo(json.dumps(row))


def evaluate(
    model: ModelArg,
    task: TaskOpt = None,
    split: Annotated[str | None, typer.Option(
        "--split", help="The split (default: the task's first evaluation split, dev).")] = None,
    data_dir: Annotated[str | None, typer.Option("--data-dir", help=BY_NAME["data_dir"].flag.help,
                                                    show_default="the run's")] = None,
    data: Annotated[list[str] | None, typer.Option("--data", metavar=BY_NAME["data"].flag.metavar,
                                                      help=BY_NAME["data"].flag.help, show_default="the run's")] = None,
    eval_limit: Annotated[int | None, typer.Option("--eval-limit", help="At most N examples.",
                                                      show_default="the run's --eval-limit")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Re-evaluate a run's (or an export's) task on a split with the task's metrics."""
    with user_errors():
        from mtl.errors import OptionError
        from mtl.runs.config import parse_data
        from mtl.runs.predict import load_predictor

        if eval_limit is not None and eval_limit < 1:
            raise OptionError(f"--eval-limit must be >= 1 (got {eval_limit})")
        files = parse_data(data or [])
        predictor = load_predictor(model, task)
        for key in files:
            if key.partition(".")[0] != predictor.task.name:
                raise OptionError(f"--data {key}: the task evaluated is {predictor.task.name!r}")
        result = predictor.evaluate(split or predictor.task.eval_splits[0], data_dir=data_dir, data=files,
                                    limit=eval_limit)
        if as_json:
            typer.echo(json.dumps(result, indent=2))
            return
        from rich.table import Table

        table = Table(title=f"{result['task']} on {result['split']} ({result['examples']} examples, "
                            f"{result['source']})")
        for column in ("task", "split", "metric", "value"):
            table.add_column(column, justify="right" if column == "value" else "left")
        for metric, value in result["metrics"].items():
            table.add_row(result["task"], result["split"], metric, f"{value:.4f}")
        console().print(table)


def register(app) -> None:
    """Add this module's commands to the `mtl` application."""
    app.command("export")(export)
    app.command("predict")(predict)
    app.command("eval")(evaluate)
