"""--task-limit TASK=N: a limit for one task only (the full target with a limited auxiliary task)."""

from __future__ import annotations

import json

from conftest import assert_one_line_error, invoke_cli

TINY = ["--backbone", "tiny", "--max-steps", "2", "--batch-size", "8", "--max-length", "32", "--eval-limit", "8", "-q"]


def test_task_limit_limits_only_that_task(tmp_path):
    out = tmp_path / "run"
    result = invoke_cli("run", "--target", "demo-paraphrase", "--aux", "demo-similarity,demo-sentiment",
                        "--limit", "40", "--task-limit", "demo-similarity=12", *TINY, "-o", str(out))
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["task_limits"] == {"demo-similarity": 12}
    assert config["sizes"] == {"demo-paraphrase": 40, "demo-similarity": 12, "demo-sentiment": 40}


def test_task_limit_errors_are_one_line(tmp_path):
    for value, fragment in (("demo-similarity", "expected TASK=N"), ("demo-similarity=x", "expected TASK=N"),
                            ("rte=5", "task 'rte' is not in this run"), ("demo-similarity=0", "integer >= 1")):
        result = invoke_cli("run", "--target", "demo-paraphrase", "--aux", "demo-similarity", "--task-limit", value,
                            *TINY, "-o", str(tmp_path / "r"))
        assert_one_line_error(result, fragment)
        assert not (tmp_path / "r").exists()


def test_a_bench_gives_each_strategy_only_its_tasks_limits(tmp_path):
    from mtl.study.bench import Strategy, strategy_values

    base = {"target": "mrpc", "aux": ["stsb"], "task_limits": {"stsb": 2000}}
    assert strategy_values(base, Strategy("uniform", "uniform", "proportional"))["task_limits"] == {"stsb": 2000}
    single = strategy_values(base, Strategy("single", "uniform", "proportional", single=True))
    assert single["task_limits"] == {}


def test_a_bench_with_a_fine_tuning_stage_accepts_the_auxiliary_tasks_limit_and_data(tmp_path):
    """The stage trains the target alone: the auxiliary task's --task-limit and --data are not its options
    (a regression: planning the bench failed with "task 'demo-similarity' is not in this run")."""
    from pathlib import Path

    import mtl.data

    similarity = Path(mtl.data.__file__).parent / "demo" / "similarity_train.tsv"
    out = tmp_path / "bench"
    result = invoke_cli("bench", "--target", "demo-paraphrase", "--aux", "demo-similarity",
                        "--strategy", "single,uniform>finetune", "--seeds", "0", "--limit", "24",
                        "--task-limit", "demo-similarity=12", "--data", f"demo-similarity.train={similarity}",
                        *TINY, "-o", str(out))
    assert result.exit_code == 0, result.output
    stage = json.loads((out / "uniform_finetune" / "seed-0" / "config.json").read_text())
    assert stage["aux"] == [] and stage["task_limits"] == {} and stage["data"] == {}
    assert stage["sizes"] == {"demo-paraphrase": 24}
    multi = json.loads((out / "uniform" / "seed-0" / "config.json").read_text())
    assert multi["sizes"] == {"demo-paraphrase": 24, "demo-similarity": 12}
    single = json.loads((out / "single" / "seed-0" / "config.json").read_text())
    assert single["aux"] == [] and single["data"] == {}
