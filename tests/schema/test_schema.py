"""The schema of run options (mtl.schema): every field exposed by every command that takes run options, one
converter for config files, --set-style text, config.json and Python keywords, and the README's table."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import click
import pytest
import typer.main
from conftest import invoke_cli as invoke
from conftest import run_mtl

from mtl.cli import affinity as affinity_cmd
from mtl.cli import app
from mtl.cli import bench as bench_cmd
from mtl.cli import finetune as finetune_cmd
from mtl.cli import run as run_cmd
from mtl.cli.run_options import make_config, run_values
from mtl.contract.options import convert_options
from mtl.errors import OptionError
from mtl.runs.config import read_config_file
from mtl.schema import BY_NAME, OPTIONS, RunConfig, markdown_table

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {"run": run_cmd.run, "bench": bench_cmd.bench, "affinity": affinity_cmd.affinity,
            "finetune": finetune_cmd.finetune}
CLICK = typer.main.get_command(app)


def help_record(command: str, name: str) -> tuple[str, str]:
    """(flags and metavar, help text with its default) of a parameter, as `mtl COMMAND --help` prints it."""
    cmd = CLICK.commands[command]
    param = next((p for p in cmd.params if p.name == name), None)
    assert param is not None, f"mtl {command} has no option for {name!r}"
    return param.get_help_record(click.Context(cmd, info_name=command))


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_field_is_an_option_of_the_command_with_its_help_default_and_choices(command):
    function = COMMANDS[command]
    documented = set(function.run_option_exclude)
    assert documented == {"run": set(), "affinity": set(), "bench": {"seed"},
                          "finetune": {"target", "aux", "weighting", "sampler", "backbone", "teachers",
                                       "teacher_temperature"}}[command]
    for opt in OPTIONS:
        if not opt.flag.cli or opt.name in documented:
            continue
        flags, text = help_record(command, opt.name)
        assert opt.flag_name in flags.replace(",", " ").split(), (command, opt.name, flags)
        if opt.flag.short:
            assert opt.flag.short in flags, (command, opt.name, flags)
        if opt.name in function.run_option_overrides:  # the command's own meaning (bench's list of weightings)
            continue
        assert text.startswith(opt.flag.help), (command, opt.name, text)
        assert f"[default: ({opt.shown_default})]" in text, (command, opt.name, text)
        if opt.choices:
            assert "<" + "|".join(opt.choices) + ">" in flags, (command, opt.name, flags)


def test_the_overrides_are_the_documented_ones():
    assert run_cmd.run.run_option_overrides == ()
    assert set(bench_cmd.bench.run_option_overrides) == {"weighting", "sampler", "output"}
    assert affinity_cmd.affinity.run_option_overrides == ("sampler",)
    assert set(finetune_cmd.finetune.run_option_overrides) == {"output", "seed"}


def test_the_choices_are_the_literal_types():
    assert {o.name: o.choices for o in OPTIONS if o.choices} == {
        "optimizer": ("adamw", "adamax"), "lr_schedule": ("linear", "cosine", "constant"),
        "precision": ("fp32", "bf16", "fp16"), "keep": ("all", "model", "none")}
    assert BY_NAME["teachers"].flag_name == "--teacher" and BY_NAME["callbacks"].flag_name == "--callback"
    assert BY_NAME["options"].flag_name == "--set"


def test_only_the_fields_set_by_other_flags_have_no_option_of_their_own():
    assert {o.name for o in OPTIONS if not o.flag.cli} == {"task_limits", "parent", "declared"}
    for o in OPTIONS:
        assert o.flag.help and o.flag.group and "default" not in o.flag.help.lower(), o.name


# (field, text, the value it spells): one of each kind of type
SPELLED = [
    ("epochs", "3", 3),  # int
    ("lr", "5e-5", 5e-5),  # float
    ("skip_nonfinite", "true", True),  # bool
    ("weighting", "mamt", "mamt"),  # str
    ("precision", "bf16", "bf16"),  # Literal
    ("aux", "mrpc, stsb", ["mrpc", "stsb"]),  # list
    ("task_limits", "mrpc:5,stsb:7", {"mrpc": 5, "stsb": 7}),  # dict
    ("max_steps", "7", 7),  # optional, a value
    ("max_steps", "none", None),  # optional, none
    ("teachers", '{"rte": "runs/a,runs/b"}', {"rte": ["runs/a", "runs/b"]}),  # dict of lists, as JSON text
]


def plugin_with(annotation: Any):
    """A plugin factory with one option of ``annotation``'s type (the path of `--set NAME.value=TEXT`)."""

    def factory(value=None):
        return value

    factory.__signature__ = inspect.Signature([inspect.Parameter("value", inspect.Parameter.KEYWORD_ONLY,
                                                                 default=None, annotation=annotation)])
    factory.__annotations__ = {"value": annotation}
    return factory


@pytest.mark.parametrize("name, text, expected", SPELLED)
def test_text_converts_alike_in_a_config_file_set_config_json_and_python_keywords(tmp_path, name, text, expected):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({name.replace("_", "-"): text}), encoding="utf-8")
    paths = {
        "config file": read_config_file(config)[name],
        "--set": convert_options("plugin", plugin_with(BY_NAME[name].type), {"value": text})["value"],
        "config.json": getattr(RunConfig.from_record({name: text}), name),
        "keyword": getattr(RunConfig(**{name: text}), name),
    }
    for path, value in paths.items():
        assert value == expected and type(value) is type(expected), (path, value)


def _json(text: str) -> str:
    return json.dumps(text)


@pytest.mark.parametrize("name, text, reason", [
    ("epochs", "abc", "expected an integer, got 'abc'"),
    ("epochs", "2.5", "expected an integer, got '2.5'"),
    ("skip_nonfinite", "maybe", "expected a boolean (true/false), got 'maybe'"),
    ("precision", "fp8", "expected one of fp32, bf16, fp16, got 'fp8'"),
    ("task_limits", "mrpc:x", "expected an integer, got 'x'"),
])
def test_a_bad_value_is_the_same_one_line_error_on_every_path(tmp_path, name, text, reason):
    config = tmp_path / "run.yaml"
    key = name.replace("_", "-")
    config.write_text(f"{key}: {_json(text)}\n", encoding="utf-8")
    flag = BY_NAME[name].flag_name
    with pytest.raises(OptionError) as in_file:
        read_config_file(config)
    assert str(in_file.value) == f"{config}: {key}: {reason}"
    with pytest.raises(OptionError) as in_keyword:
        RunConfig(**{name: text})
    assert str(in_keyword.value) == f"{flag}: {reason}"
    with pytest.raises(OptionError) as in_record:
        RunConfig.from_record({name: text})
    assert str(in_record.value) == f"{flag}: {reason}"
    with pytest.raises(OptionError) as in_plugin:
        convert_options("weighting 'x'", plugin_with(BY_NAME[name].type), {"value": text})
    assert str(in_plugin.value) == f"weighting 'x': option 'value': {reason}"


def test_the_command_line_gives_the_config_a_config_file_gives(tmp_path):
    """The same options as flags and as a config file make equal RunConfigs (repeatable flags parsed and merged)."""
    argv = ["--target", "rte", "--aux", "mrpc,stsb", "--epochs", "2", "--lr", "3e-5", "--precision", "bf16",
            "--skip-nonfinite", "--limit", "50", "--limit", "stsb=7", "--set", "mamt.psi=0.5", "--callback", "a",
            "--callback", "b,c", "--report-to", "none", "--data", "rte.train=x.tsv", "--teacher", "rte=r1,r2",
            "--max-steps", "9", "--keep", "model", "--lr-schedule", "cosine", "--grad-accum", "4"]
    ctx = CLICK.commands["run"].make_context("run", argv)
    own = {"overwrite", "resume", "nproc", "quiet"}
    flags = make_config(run_values({k: v for k, v in ctx.params.items() if k not in own}))
    config = tmp_path / "run.yaml"
    config.write_text("target: rte\naux: mrpc,stsb\nepochs: '2'\nlr: 3e-5\nprecision: bf16\nskip-nonfinite: 'yes'\n"
                      "limit: 50\ntask-limits: {stsb: '7'}\noptions: {mamt: {psi: '0.5'}}\ncallbacks: [a, b, c]\n"
                      "report-to: none\ndata: {rte.train: x.tsv}\nteachers: {rte: 'r1,r2'}\nmax-steps: 9\n"
                      "keep: model\nlr-schedule: cosine\ngrad-accum: 4\n", encoding="utf-8")
    from_file = make_config(run_values({"config": config}))
    assert flags == from_file
    assert (flags.aux, flags.task_limits, flags.callbacks, flags.report_to, flags.teachers, flags.grad_accum) == (
        ["mrpc", "stsb"], {"stsb": 7}, ["a", "b", "c"], [], {"rte": ["r1", "r2"]}, 4)


def test_the_readme_holds_the_rendered_option_table():
    table = markdown_table()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert table in readme
    rows = [line for line in table.splitlines()[2:]]
    assert len(rows) == sum(o.flag.cli for o in OPTIONS)
    assert "| `--precision fp32\\|bf16\\|fp16` | fp32 |" in table and "| `--epochs N` | 3 |" in table


@pytest.mark.parametrize("args, line", [
    (["run", "--task-limit", "rte=5"], "No such option: --task-limit"),
    (["export", "x", "--out", "y"], "No such option: --out"),
    (["plot", "x", "--out", "y"], "No such option: --out"),
    (["eval", "x", "--limit", "5"], "No such option: --limit"),
])
def test_removed_spellings_are_refused(args, line):
    result = invoke(*args)
    assert result.exit_code == 2 and line in result.output + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "bench", "affinity"])
def test_a_value_outside_the_choices_is_one_line_naming_the_option(command):
    """The real entry point: the choices of a Literal field are checked as the command line is parsed (exit 2)."""
    result = run_mtl(command, "--precision", "fp8")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("Error: Invalid value for '--precision'") and "'fp8'" in result.stderr
