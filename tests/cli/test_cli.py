"""The command line through typer's CliRunner (and a subprocess where entry points matter)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_RUN as TINY
from conftest import assert_one_line_error, run_mtl
from conftest import invoke_cli as invoke


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == "mtl 0.1.0"


def test_run_demo_suite_prints_a_results_table(tmp_path):
    out = tmp_path / "run"
    result = invoke("run", *TINY, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "training the built-in demo suite" in result.stderr
    assert "demo-paraphrase (target)" in result.stdout and "f1" in result.stdout
    assert (out / "eval.json").exists()


def test_run_with_config_file_and_set(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("target: demo-sentiment\naux: [demo-similarity]\nbackbone: tiny\nmax-steps: 3\n"
                      "batch_size: 8\noptions:\n  tiny: {hidden_size: 16}\n")
    out = tmp_path / "run"
    result = invoke("run", "--config", str(config), "--set", "tiny.layers=1", "-o", str(out), "-q", "--seed", "3")
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["target"] == "demo-sentiment" and saved["seed"] == 3 and saved["max_steps"] == 3
    assert saved["options"] == {"tiny": {"hidden_size": 16, "layers": "1"}}


@pytest.mark.parametrize("args, fragments", [
    (["--target", "rtee"], ["unknown task 'rtee'", "Did you mean 'rte'"]),
    (["--weighting", "mamtt"], ["unknown weighting 'mamtt'"]),
    (["--sampler", "nope"], ["unknown sampler 'nope'", "proportional"]),
    (["--backbone", "tinyy"], ["unknown backbone 'tinyy'", "Did you mean 'tiny'"]),
    (["--set", "uniform.alpha=1"], ["weighting 'uniform': unknown option 'alpha'"]),
    (["--set", "mamt.psi=1"], ["options for 'mamt': not a plugin of this run"]),
    (["--set", "noequals"], ["--set 'noequals': expected NAME.KEY=VALUE"]),
    (["--lr", "-1"], ["--lr must be a positive number (got -1.0)"]),
    (["--epochs", "0"], ["--epochs must be >= 1"]),
    (["--target", "rte", "--data-dir", "/nonexistent/glue"], ["/nonexistent/glue"]),
    (["--aux", "demo-sentiment"], ["--aux needs a --target"]),
    (["--set", "tiny.hidden_size=abc"], ["backbone 'tiny': option 'hidden_size': expected an integer"]),
    (["--backbone", "hf:no-such-org/no-such-model"], ["backbone 'hf:no-such-org/no-such-model': could not load"]),
    (["--backbone", "hf:"], ["unknown backbone 'hf:'"]),
    # NAME:ARGUMENT only for a factory whose first parameter is required (hf:NAME); before, "foo" reached the
    # first option (minilm's task_embedding, smart's adversarial) or a factory that takes none (a TypeError)
    (["--backbone", "tiny:foo"], ["backbone 'tiny' takes no argument (got 'tiny:foo')", "--set tiny.KEY=VALUE"]),
    (["--weighting", "uniform:foo"], ["weighting 'uniform' takes no argument"]),
    (["--regularizer", "smart:foo"], ["regularizer 'smart' takes no argument"]),
    (["--nproc", "0"], ["--nproc must be >= 1 (got 0)"]),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, fragments):
    out = tmp_path / "run"
    result = invoke("run", *TINY, "-o", str(out), *args)
    assert_one_line_error(result, *fragments)
    assert not out.exists()


def test_ambiguous_plugin_name_in_set(tmp_path):
    result = invoke("run", *TINY, "-o", str(tmp_path / "r"), "--sampler", "uniform", "--set", "uniform.x=1")
    assert_one_line_error(result, "'uniform' is the weighting and the sampler", "weighting.KEY or sampler.KEY")


def test_bad_data_files_name_file_and_line(tmp_path):
    good = "sentence\tlabel\nnice day\t1\n"
    (tmp_path / "bad_label.tsv").write_text("sentence\tlabel\ngreat film\t1\nawful\tmaybe\n")
    (tmp_path / "no_label.tsv").write_text("sentence\tstars\nnice\t5\n")
    (tmp_path / "empty.tsv").write_text("sentence\tlabel\n")
    (tmp_path / "dev.tsv").write_text(good)
    cases = [
        ("bad_label.tsv", ["bad_label.tsv:3", "maybe"]),
        ("no_label.tsv", ["no_label.tsv", "label"]),
        ("empty.tsv", ["empty.tsv"]),
    ]
    for name, fragments in cases:
        out = tmp_path / f"run-{name}"
        result = invoke("run", *TINY, "-o", str(out), "--target", "sst2",
                        "--data", f"sst2.train={tmp_path / name}", "--data", f"sst2.dev={tmp_path / 'dev.tsv'}")
        assert_one_line_error(result, *fragments)
        assert not out.exists()


def test_bad_config_file(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("target: rte\naux: [mrpc\n")
    assert_one_line_error(invoke("run", "--config", str(config)), "bad.yaml:", "invalid YAML")
    config.write_text("targt: rte\n")
    assert_one_line_error(invoke("run", "--config", str(config)), "unknown option 'targt'", "Did you mean 'target'")
    assert_one_line_error(invoke("run", "--config", str(tmp_path / "missing.yaml")), "config file not found")


@pytest.mark.parametrize("line, fragments", [
    ("epochs: abc", ["epochs: expected an integer, got 'abc'"]),
    ("batch-size: 1.5", ["batch-size: expected an integer, got 1.5"]),  # before: a crash at the first step
    ("skip-nonfinite: maybe", ["skip-nonfinite: expected a boolean (true/false), got 'maybe'"]),  # before: accepted
    ("target: [rte]", ["target: expected text, got ['rte']"]),
    ("aux: {rte: 1}", ["aux: expected a list, got {'rte': 1}"]),
    ("data: 5", ["data: expected a mapping, got 5"]),
    ("max-steps: [1, 2]", ["max-steps: expected an integer, got [1, 2]"]),
    ("task-limits: {rte: many}", ["task-limits: expected an integer, got 'many'"]),
    ("weighting: [mamt, uniform]", ["weighting: expected text, got ['mamt', 'uniform']"]),
    ("precision: fp8", ["precision: expected one of fp32, bf16, fp16, got 'fp8'"]),
])
def test_config_file_values_of_the_wrong_type(tmp_path, line, fragments):
    config = tmp_path / "run.yaml"
    config.write_text(f"backbone: tiny\n{line}\n")
    out = tmp_path / "run"
    assert_one_line_error(invoke("run", "--config", str(config), "-o", str(out)), f"{config}: ", *fragments)
    assert not out.exists()


def test_config_file_numbers_yaml_reads_as_text(tmp_path):
    """YAML 1.1 reads 5e-5 (no dot) as a string: a number option takes it as the number it spells."""
    config = tmp_path / "run.yaml"
    config.write_text("lr: 5e-5\nwarmup: 0\n")
    out = tmp_path / "run"
    assert invoke("run", *TINY, "--config", str(config), "-o", str(out)).exit_code == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["lr"] == 5e-5 and isinstance(saved["warmup"], float)


def test_config_file_that_is_not_utf8(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_bytes(b"epochs: 1\n\xff\xfe: 2\n")
    assert_one_line_error(invoke("run", "--config", str(config)), f"{config}:2: not UTF-8 text (byte 0xff)")


def test_misspelled_split_in_data(tmp_path):
    data = tmp_path / "train.tsv"
    data.write_text("sentence\tlabel\nnice\t1\n")
    out = tmp_path / "run"
    result = invoke("run", *TINY, "-o", str(out), "--target", "demo-sentiment",
                    "--data", f"demo-sentiment.trian={data}")
    assert_one_line_error(result, "--data demo-sentiment.trian: a run of 'demo-sentiment' reads the splits train, dev",
                          "(got 'trian')")
    assert not out.exists()


@pytest.mark.slow
def test_overwrite_replaces_only_a_run_folder(tmp_path, monkeypatch):
    """--overwrite deletes a run's folder, never a folder of other files nor the current folder or one above it."""
    others = tmp_path / "thesis"
    others.mkdir()
    (others / "chapter1.txt").write_text("x")
    result = invoke("run", *TINY, "-o", str(others), "--overwrite")
    assert_one_line_error(result, f"--output {others} holds files that are not a run's; --overwrite replaces only "
                                  "a folder `mtl run` wrote (config.json and metrics.jsonl)")
    assert (others / "chapter1.txt").read_text() == "x"
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "config.json").write_text("{}")  # even a folder that looks like a run: it holds the current one
    (tmp_path / "metrics.jsonl").write_text("")
    monkeypatch.chdir(inner)
    assert_one_line_error(invoke("run", *TINY, "-o", "..", "--overwrite"), "would delete the current folder")
    assert inner.is_dir() and (others / "chapter1.txt").exists()
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert invoke("run", *TINY, "-o", str(run)).exit_code == 0
    (run / "stale.txt").write_text("old")
    assert invoke("run", *TINY, "-o", str(run), "--overwrite").exit_code == 0
    assert not (run / "stale.txt").exists() and (run / "eval.json").exists()


def test_output_folder_with_data_is_kept(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert_one_line_error(invoke("run", *TINY, "-o", str(out)), "already exists and is not empty")
    assert (out / "keep.txt").read_text() == "x"


def test_plugins_table_and_json():
    result = invoke("plugins")
    assert result.exit_code == 0
    for name in ("uniform", "proportional", "minilm", "tiny", "rte"):
        assert name in result.stdout
    data = json.loads(invoke("plugins", "--json").stdout)
    kinds = {(r["kind"], r["name"]) for r in data["plugins"]}
    assert ("weighting", "uniform") in kinds and ("sampler", "uniform") in kinds and ("task", "mnli") in kinds
    assert all(r["package"] and r["version"] and "description" in r for r in data["plugins"])
    only = json.loads(invoke("plugins", "--json", "--kind", "sampler").stdout)["plugins"]
    assert {r["kind"] for r in only} == {"sampler"}


def test_plugins_lists_weightings_grouped_by_family(register_plugin):
    from mtl import Weighting, hookimpl

    class Unlabelled(Weighting):  # a third-party weighting written before families: "other"
        pass

    class Plugin:
        @hookimpl
        def register_weightings(self, register):
            register("aaa-unlabelled", Unlabelled, description="test")

    register_plugin(Plugin())
    rows = json.loads(invoke("plugins", "--json", "--kind", "weighting").stdout)["plugins"]
    family = {r["name"]: r["family"] for r in rows}
    assert family["mamt"] == "instance" and family["uniform"] == "loss" and family["siwlm"] == "loss"
    assert family["mmoe"] == "architecture" and family["pcgrad"] == "gradient"
    assert family["aaa-unlabelled"] == "other"
    order = ["instance", "loss", "gradient", "architecture", "other"]
    ranks = [order.index(r["family"]) for r in rows]
    assert ranks == sorted(ranks)  # grouped in the documented order (the unlabelled "aaa-" name comes last)
    assert rows[-1]["name"] == "aaa-unlabelled"
    assert "gradient" in invoke("plugins", "--kind", "weighting").stdout
    (shown,) = json.loads(invoke("plugins", "show", "mmoe", "--kind", "weighting", "--json").stdout)
    assert shown["family"] == "architecture"


def test_plugins_show_lists_options_with_types_and_defaults():
    result = invoke("plugins", "show", "tiny", "--json")
    assert result.exit_code == 0
    (tiny,) = json.loads(result.stdout)
    options = {o["name"]: o for o in tiny["options"]}
    assert options["hidden_size"] == {"name": "hidden_size", "type": "int", "default": 64, "required": False}
    both = json.loads(invoke("plugins", "show", "uniform", "--json").stdout)
    assert {d["kind"] for d in both} == {"weighting", "sampler"}
    assert "hidden_size" in invoke("plugins", "show", "tiny").stdout


def test_plugins_show_unknown_suggests():
    assert_one_line_error(invoke("plugins", "show", "unifrm"), "unknown plugin 'unifrm'", "Did you mean 'uniform'")


def test_plugins_show_prints_bracketed_types_as_written():
    """`dict[str, float]` went through rich markup and lost its brackets: `dict`."""
    result = invoke("plugins", "show", "static", "--kind", "weighting")
    assert result.exit_code == 0 and "dict[str, float] | None" in result.stdout


def test_plugins_show_of_a_name_of_another_kind_says_which():
    assert_one_line_error(invoke("plugins", "show", "mamt", "--kind", "sampler"), "unknown sampler 'mamt'",
                          "'mamt' is a weighting: --kind weighting")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_that_cannot_be_written_is_a_one_line_error():
    """stdout on a full device (`mtl tasks --json > file` on a full disk): one line, exit 74, no traceback."""
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "mtl.cli", "tasks", "--json"], stdout=full,
                                stderr=subprocess.PIPE, text=True)
    assert result.returncode == 74
    assert result.stderr.strip() == "Error: cannot write the output: No space left on device"


@pytest.mark.parametrize("args, line, code", [
    (["run", "--lr", "abc"], "Error: Invalid value for '--lr': Input should be a valid number", 2),
    (["run", "--lrr", "1"], "Error: No such option: --lrr (Possible options: --lr) (`mtl run --help` lists the "
                            "options)", 2),
    (["rnu"], "Error: No such command 'rnu'. Did you mean 'run'? (`mtl --help` lists the commands)", 2),
    (["export"], "Error: Missing argument 'run'. (`mtl export --help` lists the options)", 2),
])
def test_a_command_line_that_does_not_parse_is_one_line(args, line, code):
    """The real entry point (not CliRunner): a usage mistake is one line naming the option, not typer's box."""
    result = run_mtl(*args)
    assert result.returncode == code and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(line), result.stderr


@pytest.mark.slow
def test_the_help_and_the_version_through_the_entry_point():
    assert run_mtl("--version").stdout == "mtl 0.1.0\n"
    help_ = run_mtl("run", "--help")
    assert help_.returncode == 0 and "--weighting" in help_.stdout
    bare = run_mtl()
    assert bare.returncode == 2 and "Commands" in bare.stdout + bare.stderr


def test_tasks_lists_every_glue_task():
    data = json.loads(invoke("tasks", "--json").stdout)
    names = {r["name"] for r in data}
    assert {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "snli"} <= names
    mnli = next(r for r in data if r["name"] == "mnli")
    assert mnli["eval_splits"] == ["dev_matched", "dev_mismatched"]
    assert mnli["labels"] == ["entailment", "neutral", "contradiction"]
    assert next(r for r in data if r["name"] == "stsb")["type"] == "regression"
    assert "cola" in invoke("tasks").stdout


@pytest.mark.slow
def test_third_party_plugin_trains_through_mtl_run(example_plugin_path, tmp_path):
    out = tmp_path / "run"
    result = run_mtl("run", *TINY, "-o", str(out), "--weighting", "target-boost", "--set", "target-boost.factor=3",
                     "--sampler", "target-every", env={"PYTHONPATH": str(example_plugin_path)})
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"tasks"' in line]
    assert records[0]["tasks"] == ["demo-paraphrase"] and records[0]["weight.demo-paraphrase"] == 3.0
    assert records[1]["tasks"] != ["demo-paraphrase"]
    config = json.loads((out / "config.json").read_text())
    assert config["plugins"]["weighting.target-boost"] == {"package": "mtl-example-plugin", "version": "0.1.0"}
    bad = run_mtl("run", *TINY, "-o", str(tmp_path / "bad"), "--weighting", "target-boost",
                  "--set", "target-boost.factor=-1", env={"PYTHONPATH": str(example_plugin_path)})
    assert bad.returncode == 1 and "weighting 'target-boost': factor must be > 0 (got -1.0)" in bad.stderr


def test_a_task_given_twice_is_an_error_naming_it(tmp_path):
    for aux, fragment in (("demo-paraphrase", "task 'demo-paraphrase' is given twice: as --target and in --aux"),
                          ("demo-similarity,demo-similarity", "task 'demo-similarity' is given twice")):
        result = invoke("run", "--target", "demo-paraphrase", "--aux", aux, *TINY, "-o", str(tmp_path / "run"))
        assert_one_line_error(result, fragment)
        assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_max_length_must_leave_room_for_one_token_of_each_text(tmp_path):
    # BERT's tokenizer: [CLS] a [SEP] b [SEP] for a pair task (5 tokens), [CLS] a [SEP] for one text (3)
    result = invoke("run", "--target", "demo-paraphrase", "--aux", "demo-sentiment", *TINY, "--max-length", "4",
                    "-o", str(tmp_path / "run"))
    assert_one_line_error(result, "--max-length 4 is too short for task 'demo-paraphrase'", "needs 5 tokens")
    assert not (tmp_path / "run").exists()
    result = invoke("run", "--target", "demo-sentiment", *TINY, "--max-length", "2", "-o", str(tmp_path / "run"))
    assert_one_line_error(result, "--max-length 2 is too short for task 'demo-sentiment'", "needs 3 tokens")
    ok = invoke("run", "--target", "demo-paraphrase", *TINY, "--max-length", "5", "-o", str(tmp_path / "ok"))
    assert ok.exit_code == 0, ok.output
