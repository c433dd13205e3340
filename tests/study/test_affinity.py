"""`mtl affinity` (TAG's lookahead inter-task affinity, Fifty et al. NeurIPS 2021): Z against lookahead steps written
out by hand, a task's affinity onto itself on a run that learns it, the run trained exactly as without the
measurements, affinity.json / affinity.png, --resume, and the one-line errors."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, invoke_cli

from mtl.errors import MtlError
from mtl.runs.config import RunConfig
from mtl.runs.folder import RunFolder
from mtl.study.affinity import AffinityTrainer, fixed_dropout, lookahead_affinity, ranking, read
from mtl.training.trainer import Trainer

DEMO = dict(target="demo-paraphrase", aux=["demo-similarity", "demo-sentiment"])
TASKS = [DEMO["target"], *DEMO["aux"]]
PNG = b"\x89PNG\r\n\x1a\n"


def config(path, **overrides) -> RunConfig:
    values = dict(DEMO, backbone="tiny", batch_size=16, max_length=32, lr=2e-3, log_every=1, limit=64, eval_limit=32,
                  max_steps=24, checkpoint_every=4, sampler="all", output=str(path), seed=2)
    values.update(overrides)
    return RunConfig(**values)


def without_seconds(result: dict) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "seconds"} for m in result["measurements"]]


# ------------------------------------------------------------------------------------------------ by hand
B1, B2 = 0.9, 0.999


def hand_step(name: str, w: np.ndarray, g: np.ndarray, state: dict, lr: float, wd: float) -> np.ndarray:
    """The optimizer's update of ``w`` given gradient ``g`` and its state, written out from the papers."""
    if name == "sgd":  # weight decay as an L2 term of the gradient
        return w - lr * (g + wd * w)
    t = state["step"] + 1
    if name == "adamw":  # Loshchilov & Hutter 2019, Alg. 2: decoupled decay, then Adam with bias correction
        m = B1 * state["exp_avg"] + (1 - B1) * g
        v = B2 * state["exp_avg_sq"] + (1 - B2) * g * g
        m_hat, v_hat = m / (1 - B1 ** t), v / (1 - B2 ** t)
        return w * (1 - lr * wd) - lr * m_hat / (np.sqrt(v_hat) + 1e-8)
    # adamax (Kingma & Ba 2015, Alg. 2), weight decay as an L2 term of the gradient; torch's eps inside the max
    g = g + wd * w
    m = B1 * state["exp_avg"] + (1 - B1) * g
    u = np.maximum(B2 * state["exp_inf"], np.abs(g) + 1e-8)
    return w - (lr / (1 - B1 ** t)) * m / u


def two_task_problem(name: str):
    """Shared w ∈ R³, heads a_t; L_t = mean((a_t · X_t w − y_t)²); the optimizer has taken one step already."""
    rng = np.random.default_rng(7)
    data = {t: (rng.normal(size=(5, 3)), rng.normal(size=5)) for t in ("t1", "t2")}
    w = torch.nn.Parameter(torch.tensor([0.5, -0.3, 0.8], dtype=torch.float64))
    heads = {"t1": torch.nn.Parameter(torch.tensor(1.5, dtype=torch.float64)),
             "t2": torch.nn.Parameter(torch.tensor(-0.7, dtype=torch.float64))}
    groups = [{"params": [w], "weight_decay": 0.01}, {"params": list(heads.values()), "weight_decay": 0.0}]
    optimizer = {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax}[name](groups, lr=0.1)

    def loss_of(task: str) -> torch.Tensor:
        x, y = (torch.tensor(a) for a in data[task])
        return ((heads[task] * (x @ w) - y) ** 2).mean()

    (loss_of("t1") + loss_of("t2")).backward()
    optimizer.step()  # a state that is not the initial one
    optimizer.zero_grad(set_to_none=True)
    for group in optimizer.param_groups:
        group["lr"] = 0.05  # as a schedule would have set it for this step
    return data, w, heads, optimizer, loss_of


def hand_loss(data, task: str, w: np.ndarray, a: float) -> float:
    x, y = data[task]
    return float(np.mean((a * (x @ w) - y) ** 2))


@pytest.mark.parametrize("name", ["sgd", "adamw", "adamax"])
@pytest.mark.parametrize("clip", [0.0, 0.5])
def test_z_is_one_minus_the_loss_ratio_after_the_optimizers_step_written_out_by_hand(name, clip):
    data, w, heads, optimizer, loss_of = two_task_problem(name)
    state = {k: (v.numpy().copy() if v.ndim else float(v)) for k, v in optimizer.state[w].items()}
    before_params = [p.detach().clone() for p in [w, *heads.values()]]
    before_state = {k: v.clone() for k, v in optimizer.state[w].items()}
    rng_state = torch.get_rng_state()

    matrix, losses = lookahead_affinity(loss_of, ["t1", "t2"], [w], optimizer, own=list(heads.values()), clip=clip)

    w0, a = w.detach().numpy().copy(), {t: float(h.detach()) for t, h in heads.items()}
    for i in ("t1", "t2"):
        x, y = data[i]
        r = a[i] * (x @ w0) - y
        g_w = 2 / len(y) * (r * a[i]) @ x  # ∂L_i/∂w
        g_a = 2 / len(y) * float(r @ (x @ w0))  # ∂L_i/∂a_i: counts in the clipped norm, the head does not move
        if clip > 0:
            norm = math.sqrt(float(g_w @ g_w) + g_a ** 2)
            g_w = g_w * min(1.0, clip / (norm + 1e-6))
        w_after = hand_step(name, w0, g_w, state, lr=0.05, wd=0.01)
        for j in ("t1", "t2"):
            expected = 1 - hand_loss(data, j, w_after, a[j]) / hand_loss(data, j, w0, a[j])
            assert matrix[i][j] == pytest.approx(expected, rel=1e-9, abs=1e-12), (i, j)
    assert losses == {t: pytest.approx(hand_loss(data, t, w0, a[t]), rel=1e-12) for t in ("t1", "t2")}
    assert matrix["t1"]["t1"] > 0 and matrix["t2"]["t2"] > 0  # a step on a task's own loss lowers it
    # nothing of the run is touched: parameters, their gradients, the optimizer's state, the random generator
    for p, saved in zip([w, *heads.values()], before_params, strict=True):
        assert torch.equal(p.detach(), saved) and p.grad is None
    assert all(torch.equal(optimizer.state[w][k], v) for k, v in before_state.items())
    assert torch.equal(torch.get_rng_state(), rng_state)


def test_the_same_dropout_masks_before_and_after_so_a_zero_step_gives_zero():
    torch.manual_seed(0)
    shared = torch.nn.Linear(6, 6)
    head = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(6, 1))
    x, y = torch.randn(8, 6), torch.randn(8)
    loss_of = lambda task: ((head(torch.relu(shared(x))).squeeze(-1) - y) ** 2).mean()  # noqa: E731
    optimizer = torch.optim.SGD([*shared.parameters(), *head.parameters()], lr=0.0)
    matrix, _ = lookahead_affinity(loss_of, ["a", "b"], list(shared.parameters()), optimizer,
                                   own=list(head.parameters()), seeds={"a": 1, "b": 2})
    assert matrix == {"a": {"a": 0.0, "b": 0.0}, "b": {"a": 0.0, "b": 0.0}}  # exactly: the same masks
    with fixed_dropout(1):
        first = loss_of("a")
    with fixed_dropout(3):
        other = loss_of("a")
    assert first != other  # and the masks do differ between seeds


# ------------------------------------------------------------------------------------------------ a run
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An affinity run and the same run without measurements (every 4 steps: 6 measurements in 24 steps)."""
    root = tmp_path_factory.mktemp("affinity")
    measured = AffinityTrainer(config(root / "measured"), every=4).train()
    plain = Trainer(config(root / "plain")).train()
    return root, measured, plain


@pytest.mark.slow
def test_a_tasks_affinity_onto_itself_is_positive_where_its_loss_falls(runs):
    _, measured, _ = runs
    result = measured["affinity"]
    losses = [m["loss"]["demo-similarity"] for m in result["measurements"]]
    assert losses[-1] < 0.8 * losses[0], losses  # the similarity task learns in this run
    assert result["matrix"]["demo-similarity"]["demo-similarity"] > 0.01
    # wherever the loss falls on to the next measurement; once it is at its floor, a lookahead step is noise
    measurements = result["measurements"]
    falling = [m for m, later in itertools.pairwise(measurements)
               if later["loss"]["demo-similarity"] < m["loss"]["demo-similarity"]]
    assert len(falling) >= 2, losses
    assert all(m["matrix"]["demo-similarity"]["demo-similarity"] > 0 for m in falling)


@pytest.mark.slow
def test_affinity_json_has_the_matrix_every_measurement_the_options_and_the_overhead(runs):
    root, measured, _ = runs
    result = json.loads((root / "measured" / "affinity.json").read_text())
    assert result == json.loads(json.dumps(measured["affinity"])) == read(root / "measured")
    matrix = result["matrix"]
    assert list(matrix) == TASKS and all(list(row) == TASKS for row in matrix.values())
    assert all(isinstance(matrix[i][j], float) for i in TASKS for j in TASKS)
    assert result["tasks"] == TASKS and result["target"] == "demo-paraphrase"
    assert result["measured_steps"] == [0, 4, 8, 12, 16, 20]
    for m in result["measurements"]:
        assert set(m) == {"step", "lr", "trained", "loss", "matrix", "seconds"}
        assert m["trained"] == TASKS  # the `all` sampler: every measured batch is the one the step trains on
    for i in TASKS:
        for j in TASKS:
            values = [m["matrix"][i][j] for m in result["measurements"]]
            assert matrix[i][j] == pytest.approx(sum(values) / len(values))
    assert result["options"]["every"] == 4 and result["options"]["sampler"] == "all"
    cost = result["overhead"]
    assert cost["measurements"] == 6 and cost["seconds_per_measurement"] > 0 and cost["seconds_per_step"] > 0
    assert cost["first_measurement_seconds"] == result["measurements"][0]["seconds"]
    assert cost["measurement_vs_step"] == pytest.approx(cost["seconds_per_measurement"] / cost["seconds_per_step"])
    assert cost["forwards_per_measurement"] == 3 + 9 and cost["gradients_per_measurement"] == 3
    assert json.loads((root / "measured" / "config.json").read_text())["affinity"] == {"every": 4}
    assert not (root / "measured" / "checkpoint" / "affinity-state.json").exists()  # finished: state removed
    names = [task for task, _, _ in ranking(result, "demo-paraphrase")]
    assert sorted(names) == sorted(DEMO["aux"])
    assert [matrix[t]["demo-paraphrase"] for t in names] == sorted((matrix[t]["demo-paraphrase"] for t in names),
                                                                  reverse=True)


@pytest.mark.slow
def test_affinity_png_is_written(runs):
    root, _, _ = runs
    data = (root / "measured" / "affinity.png").read_bytes()
    assert data[:8] == PNG and len(data) > 10_000


@pytest.mark.slow
def test_the_run_trains_exactly_as_without_the_measurements(runs):
    root, measured, plain = runs
    assert measured["eval"] == plain["eval"]
    assert (root / "measured" / "metrics.jsonl").read_text() == (root / "plain" / "metrics.jsonl").read_text()
    assert (root / "measured" / "eval.json").read_text() == (root / "plain" / "eval.json").read_text()


@pytest.mark.slow
def test_another_sampler_measures_on_separate_batches_and_still_trains_as_without(tmp_path):
    options = dict(sampler="proportional", max_steps=6, checkpoint_every=None)
    measured = AffinityTrainer(config(tmp_path / "measured", **options), every=2).train()
    plain = Trainer(config(tmp_path / "plain", **options)).train()
    assert (tmp_path / "measured" / "metrics.jsonl").read_text() == (tmp_path / "plain" / "metrics.jsonl").read_text()
    assert measured["eval"] == plain["eval"]
    records = {r["step"]: r["tasks"] for r in map(json.loads, (tmp_path / "plain" / "metrics.jsonl").open())
               if "tasks" in r}
    for m in measured["affinity"]["measurements"]:
        assert m["trained"] == records[m["step"]]  # one task's batch is the step's own, the others drawn apart
        assert all(m["matrix"][i][j] is not None for i in TASKS for j in TASKS)


@pytest.mark.slow
def test_resume_continues_the_measurements_to_the_uninterrupted_result(runs, tmp_path, monkeypatch):
    root, measured, _ = runs
    original = AffinityTrainer.train_step

    def crash(self, step, *args, **kwargs):
        if step == 10:
            raise KeyboardInterrupt  # stands in for a kill between the checkpoints of steps 8 and 12
        return original(self, step, *args, **kwargs)

    monkeypatch.setattr(AffinityTrainer, "train_step", crash)
    out = tmp_path / "crashed"
    result = invoke_cli("affinity", "--target", DEMO["target"], "--aux", ",".join(DEMO["aux"]), "--every", "4",
                        "--backbone", "tiny", "--batch-size", "16", "--max-length", "32", "--lr", "2e-3",
                        "--log-every", "1", "--limit", "64", "--eval-limit", "32", "--max-steps", "24",
                        "--checkpoint-every", "4", "--seed", "2", "-o", str(out), "--quiet")
    assert result.exit_code == 130 and RunFolder(out).latest_checkpoint() is not None  # measurements inside
    assert f"continue with `mtl affinity --resume {out}`" in result.stderr  # before: `mtl run --resume`
    monkeypatch.undo()
    # `mtl run --resume` would finish it as a plain run and lose the measurements: refused, pointing to the command
    assert_one_line_error(invoke_cli("run", "--resume", str(out)),
                          f"this run continues with `mtl affinity --resume {out}`")
    result = invoke_cli("affinity", "--resume", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    assert "Affinity onto demo-paraphrase" in result.stdout and "affinity.png" in result.stdout
    resumed = read(out)
    assert resumed["matrix"] == measured["affinity"]["matrix"]
    assert without_seconds(resumed) == without_seconds(measured["affinity"])
    assert (out / "eval.json").read_text() == (root / "measured" / "eval.json").read_text()


# ------------------------------------------------------------------------------------------------ the command
def test_the_command_without_a_target_prints_the_matrix(tmp_path):
    out = tmp_path / "run"
    result = invoke_cli("affinity", "--tasks", "demo-similarity,demo-sentiment", "--backbone", "tiny",
                        "--max-steps", "3", "--every", "2", "--batch-size", "8", "--max-length", "32", "--limit", "24",
                        "--limit", "demo-sentiment=16", "--eval-limit", "16", "-o", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    assert "rows: source i, columns: target j" in result.stdout and "s per measurement" in result.stdout
    record = read(out)
    assert record["target"] is None and record["tasks"] == ["demo-similarity", "demo-sentiment"]
    assert record["measured_steps"] == [0, 2] and (out / "affinity.png").read_bytes()[:8] == PNG
    options = json.loads((out / "config.json").read_text())
    assert options["sampler"] == "all"  # the default of `mtl affinity`
    assert options["target"] is None and options["task_limits"] == {"demo-sentiment": 16}
    assert not (out / "model").exists()  # no target: nothing to export


def test_every_run_option_is_an_affinity_option():
    import typer.main

    from mtl.cli import app

    commands = typer.main.get_command(app).commands
    options = {name: {o for p in commands[name].params for o in p.opts} for name in ("run", "affinity")}
    assert options["run"] - options["affinity"] == {"--nproc"}  # one process: the lookahead is not distributed
    assert options["affinity"] - options["run"] == {"--tasks", "--every"}


@pytest.mark.parametrize("args,fragments", [
    (["--target", "demo-sentiment"], ["at least two tasks", "'demo-sentiment'"]),
    (["--tasks", "demo-sentiment"], ["at least two tasks"]),
    (["--target", "demo-sentiment", "--aux", "demo-similarty"], ["unknown task 'demo-similarty'",
                                                                 "Did you mean 'demo-similarity'"]),
    (["--tasks", "demo-sentiment,nope"], ["unknown task 'nope'"]),
    (["--every", "0"], ["--every must be", ">= 1", "got 0"]),
    (["--every", "-3", "--target", "demo-sentiment", "--aux", "demo-similarity"], ["--every must be", "got -3"]),
    (["--tasks", "demo-sentiment,demo-similarity", "--target", "demo-sentiment"], ["not both"]),
    (["--tasks", "demo-sentiment,demo-sentiment"], ["--tasks demo-sentiment,demo-sentiment: task 'demo-sentiment' "
                                                    "is given twice"]),
    (["--tasks", ","], ["--tasks ',' names no task"]),  # before: the demo suite, silently
])
def test_mistakes_are_one_line_errors_and_write_nothing(tmp_path, args, fragments):
    out = tmp_path / "run"
    result = invoke_cli("affinity", *args, "--backbone", "tiny", "--max-steps", "2", "-o", str(out), "--quiet")
    assert_one_line_error(result, *fragments)
    assert not out.exists()


def test_resume_mistakes_are_one_line_errors(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({**DEMO, "backbone": "tiny"}))
    (plain / "metrics.jsonl").write_text("")
    assert_one_line_error(invoke_cli("affinity", "--resume", str(plain)), "not an `mtl affinity` run",
                          "mtl run --resume")
    assert_one_line_error(invoke_cli("affinity", "--resume", str(plain), "--every", "3"), "drop --every")
    assert_one_line_error(invoke_cli("affinity", "--resume", str(tmp_path / "nothing")), "not a run folder")


def test_every_is_checked_by_the_python_api_too(tmp_path):
    with pytest.raises(MtlError, match="--every must be"):
        AffinityTrainer(config(tmp_path / "run"), every=0)
