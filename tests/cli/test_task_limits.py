"""--limit TASK=N: a limit for one task only (the full target with a limited auxiliary task), beside --limit N for
every task, on mtl run, bench, finetune and affinity."""

from __future__ import annotations

import json

import pytest
from conftest import assert_one_line_error, invoke_cli

TINY = ["--backbone", "tiny", "--max-steps", "2", "--batch-size", "8", "--max-length", "32", "--eval-limit", "8", "-q"]


def test_task_limit_errors_are_one_line(tmp_path):
    for value, fragment in (("demo-similarity=x", "expected N or TASK=N"), ("=5", "expected N or TASK=N"),
                            ("rte=5", "task 'rte' is not in this run"), ("demo-similarity=0", "integer >= 1")):
        result = invoke_cli("run", "--target", "demo-paraphrase", "--aux", "demo-similarity", "--limit", value,
                            *TINY, "-o", str(tmp_path / "r"))
        assert_one_line_error(result, fragment)
        assert not (tmp_path / "r").exists()


def test_the_removed_task_limit_flag_is_refused(tmp_path):
    result = invoke_cli("run", "--task-limit", "demo-similarity=12", "-o", str(tmp_path / "r"))
    assert result.exit_code == 2 and "No such option: --task-limit" in result.output + result.stderr


def test_a_bench_gives_each_strategy_only_its_tasks_limits(tmp_path):
    from mtl.study.bench import Strategy, strategy_values

    base = {"target": "mrpc", "aux": ["stsb"], "task_limits": {"stsb": 2000}}
    assert strategy_values(base, Strategy("uniform", "uniform", "proportional"))["task_limits"] == {"stsb": 2000}
    single = strategy_values(base, Strategy("single", "uniform", "proportional", single=True))
    assert single["task_limits"] == {}


@pytest.mark.slow
def test_a_bench_with_a_fine_tuning_stage_accepts_the_auxiliary_tasks_limit_and_data(tmp_path):
    """The stage trains the target alone: the auxiliary task's --limit TASK=N and --data are not its options
    (a regression: planning the bench failed with "task 'demo-similarity' is not in this run")."""
    from pathlib import Path

    import mtl.data

    similarity = Path(mtl.data.__file__).parent / "demo" / "similarity_train.tsv"
    out = tmp_path / "bench"
    result = invoke_cli("bench", "--target", "demo-paraphrase", "--aux", "demo-similarity",
                        "--strategy", "single,uniform>finetune", "--seeds", "0", "--limit", "24",
                        "--limit", "demo-similarity=12", "--data", f"demo-similarity.train={similarity}",
                        *TINY, "-o", str(out))
    assert result.exit_code == 0, result.output
    stage = json.loads((out / "uniform_finetune" / "seed-0" / "config.json").read_text())
    assert stage["aux"] == [] and stage["task_limits"] == {} and stage["data"] == {}
    assert stage["sizes"] == {"demo-paraphrase": 24}
    multi = json.loads((out / "uniform" / "seed-0" / "config.json").read_text())
    assert multi["sizes"] == {"demo-paraphrase": 24, "demo-similarity": 12}
    single = json.loads((out / "single" / "seed-0" / "config.json").read_text())
    assert single["aux"] == [] and single["data"] == {}


@pytest.fixture(scope="module")
def limited_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("limits") / "run"
    result = invoke_cli("run", "--target", "demo-paraphrase", "--aux", "demo-similarity,demo-sentiment",
                        "--limit", "40", "--limit", "demo-similarity=12", *TINY, "-o", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_limit_task_n_limits_only_that_task_beside_limit_n(limited_run):
    config = json.loads((limited_run / "config.json").read_text())
    assert config["limit"] == 40 and config["task_limits"] == {"demo-similarity": 12}
    assert config["sizes"] == {"demo-paraphrase": 40, "demo-similarity": 12, "demo-sentiment": 40}


def test_limits_and_a_config_file_merge(tmp_path):
    """--limit N and --limit TASK=N together, over a config file (the last N wins; a task's limit from either)."""
    from mtl.cli.run_options import run_values

    options = tmp_path / "options.yaml"
    options.write_text("limit: 100\ntask_limits: {demo-sentiment: 30}\n")
    values = run_values({"config": options, "limit": ["500", "demo-similarity=2000", "300", "demo-paraphrase=7"]})
    assert values["limit"] == 300
    assert values["task_limits"] == {"demo-sentiment": 30, "demo-similarity": 2000, "demo-paraphrase": 7}
    assert run_values({"config": options, "limit": ["demo-similarity=5"]})["limit"] == 100  # the file's N stays


def test_finetune_takes_a_limit_for_its_target(limited_run, tmp_path):
    out = tmp_path / "stage"
    result = invoke_cli("finetune", str(limited_run), "--limit", "demo-paraphrase=10", "--max-steps", "1", "-q",
                        "-o", str(out))
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["sizes"] == {"demo-paraphrase": 10} and config["task_limits"] == {"demo-paraphrase": 10}
    refused = invoke_cli("finetune", str(limited_run), "--limit", "demo-similarity=5", "-q", "-o", str(tmp_path / "x"))
    assert_one_line_error(refused, "--limit demo-similarity=5", "task 'demo-similarity' is not in this run")
    assert not (tmp_path / "x").exists()


TASKS = ["--target", "demo-paraphrase", "--aux", "demo-similarity"]
COMMANDS = {  # each command with what it needs besides --limit; RUN: a folder that does not exist (finetune's parent)
    "run": ["run", *TASKS, *TINY],
    "bench": ["bench", "--strategy", "uniform", "--seeds", "0", *TASKS, *TINY],
    "affinity": ["affinity", *TASKS, *TINY],
    "finetune": ["finetune", "RUN", "-q"],
}


BAD = [  # (value, what the one line says, whether it is found before the run's tasks are known)
    ("x", "--limit 'x': expected N or TASK=N", True),
    ("demo-similarity=x", "--limit 'demo-similarity=x': expected N or TASK=N", True),
    ("=5", "--limit '=5': expected N or TASK=N", True),
    ("rte=5", "--limit rte=5: task 'rte' is not in this run", False),
    ("demo-similarity=0", "--limit demo-similarity=0: the limit must be an integer >= 1", False),
    ("0", "--limit must be >= 1 (got 0)", False),
]


@pytest.mark.parametrize("command, value, fragment", [
    (command, value, fragment) for command in sorted(COMMANDS) for value, fragment, parsed in BAD
    if parsed or command != "finetune"])  # finetune's tasks are its parent's: test_finetune_takes_a_limit_...
def test_bad_limits_are_one_line_errors_naming_the_option(tmp_path, command, value, fragment):
    args = [str(tmp_path / "parent") if a == "RUN" else a for a in COMMANDS[command]]
    result = invoke_cli(*args, "--limit", value, "-o", str(tmp_path / "out"))
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "out").exists()
