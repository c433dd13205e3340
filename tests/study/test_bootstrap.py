"""The paired bootstrap interval of `mtl bench` (mtl.study.statistics.paired_bootstrap) and the predictions every run
stores for it (predictions.safetensors): the interval against independent resampling loops and a case whose true
difference is known, and the stored predictions against `mtl predict`, `mtl eval` and eval.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import invoke_cli
from scipy import stats as scipy_stats
from sklearn.metrics import f1_score, matthews_corrcoef

from mtl.study.statistics import metric_scores, paired_bootstrap


# ---------------------------------------------------------------------------------------------- the interval
def direct_interval(score, mine, reference, labels, resamples, seed=0):
    """The interval written out: one resample at a time (rng.integers(0, n, n)), every seed on it."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    diffs = []
    for _ in range(resamples):
        index = rng.integers(0, n, n)
        y = labels[index]
        diffs.append(np.mean([score(a[index], y) - score(b[index], y) for a, b in zip(mine, reference, strict=True)]))
    observed = np.mean([score(a, labels) - score(b, labels) for a, b in zip(mine, reference, strict=True)])
    low, high = np.percentile(diffs, [2.5, 97.5])
    return observed, low, high


def accuracy(p, y):
    return float(np.mean(p == y))


def pearson(p, y):  # in float64, as mtl.data.metrics computes it (scipy keeps float32 inputs in float32)
    p, y = np.float64(p), np.float64(y)
    return 0.0 if np.ptp(p) == 0 or np.ptp(y) == 0 else float(scipy_stats.pearsonr(p, y)[0])


def spearman(p, y):
    p, y = np.float64(p), np.float64(y)
    return 0.0 if np.ptp(p) == 0 or np.ptp(y) == 0 else float(scipy_stats.spearmanr(p, y)[0])


def noisy(labels, flip, rng, classes=2):
    """``labels`` with a fraction ``flip`` of them replaced by another class."""
    out = labels.copy()
    where = rng.random(len(labels)) < flip
    out[where] = (out[where] + rng.integers(1, classes, where.sum())) % classes
    return out


def test_accuracy_interval_is_the_written_out_resampling_loop_with_2000_resamples():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 150)
    mine = [noisy(labels, 0.2, rng) for _ in range(3)]
    reference = [noisy(labels, 0.3, rng) for _ in range(3)]
    got = paired_bootstrap("accuracy", mine, reference, labels)
    observed, low, high = direct_interval(accuracy, mine, reference, labels, 2000)
    assert got["resamples"] == 2000 and got["seed"] == 0 and got["examples"] == 150 and got["seeds"] == 3
    assert got["delta"] == pytest.approx(observed, abs=1e-12)
    assert (got["low"], got["high"]) == pytest.approx((low, high), abs=1e-12)
    assert got["low"] < got["delta"] < got["high"]
    assert got["excludes_zero"] == (low > 0 or high < 0)
    assert paired_bootstrap("accuracy", mine, reference, labels) == got  # a fixed seed: the same interval again


@pytest.mark.parametrize("metric, score, classes", [
    ("f1", lambda p, y: f1_score(y, p, zero_division=0.0), 2),
    ("mcc", matthews_corrcoef, 2),
    ("mcc", matthews_corrcoef, 3),
    ("pearson", pearson, None),
    ("spearman", spearman, None),
])
@pytest.mark.slow
def test_every_metric_matches_scikit_learn_and_scipy_resample_by_resample(metric, score, classes):
    rng = np.random.default_rng(3)
    if classes:
        labels = rng.integers(0, classes, 80)
        mine = [noisy(labels, 0.25, rng, classes) for _ in range(2)]
        reference = [noisy(labels, 0.35, rng, classes) for _ in range(2)]
    else:  # STS-B-like: scores 0..5, predictions rounded so that ranks tie
        labels = rng.integers(0, 6, 80).astype(np.float32)
        mine = [np.round(labels + rng.normal(0, 1.5, 80), 1).astype(np.float32) for _ in range(2)]
        reference = [np.round(labels + rng.normal(0, 2.5, 80), 1).astype(np.float32) for _ in range(2)]
    got = paired_bootstrap(metric, mine, reference, labels, resamples=120, seed=11)  # scikit-learn is slow: fewer
    observed, low, high = direct_interval(score, mine, reference, labels, 120, seed=11)
    assert got["delta"] == pytest.approx(observed, abs=1e-9)
    assert (got["low"], got["high"]) == pytest.approx((low, high), abs=1e-9)


def test_the_vectorised_metrics_are_the_tasks_own_metrics_including_the_undefined_cases():
    from mtl.data.metrics import compute

    rng = np.random.default_rng(5)
    rows = rng.integers(0, 2, (40, 12))
    labels = rng.integers(0, 2, (40, 12))
    rows[0], labels[1] = 0, 0  # no positive prediction; no positive label
    rows[2], labels[2] = 0, 0  # nothing positive at all: F1 and MCC undefined, 0
    scores = rng.normal(size=(40, 12))
    scores[3] = 1.5  # a constant row: the correlations are undefined, 0
    for metric, p, y in (("accuracy", rows, labels), ("f1", rows, labels), ("mcc", rows, labels),
                         ("pearson", scores, labels), ("spearman", scores, labels)):
        expected = [compute([metric], a, b)[metric] for a, b in zip(p, y, strict=True)]
        assert metric_scores(metric, p, y) == pytest.approx(expected, abs=1e-12), metric
    custom = metric_scores(lambda a, b: float((a != b).sum()), rows, labels)  # any other metric: per resample
    assert custom.tolist() == (rows != labels).sum(axis=1).tolist()


def test_known_differences_give_known_intervals():
    labels = np.array([0, 1] * 50)
    wrong = 1 - labels
    same = paired_bootstrap("accuracy", [labels], [labels], labels)
    assert (same["delta"], same["low"], same["high"], same["excludes_zero"]) == (0.0, 0.0, 0.0, False)
    perfect = paired_bootstrap("accuracy", [labels, labels], [wrong, wrong], labels)
    assert (perfect["delta"], perfect["low"], perfect["high"], perfect["excludes_zero"]) == (1.0, 1.0, 1.0, True)
    # better on 10 examples and never worse: every resample's difference is >= 0, the observed one 0.1
    better = labels.copy()
    reference = labels.copy()
    reference[:10] = 1 - reference[:10]
    interval = paired_bootstrap("accuracy", [better], [reference], labels)
    assert interval["delta"] == pytest.approx(0.1) and 0 < interval["low"] < 0.1 < interval["high"] < 0.2
    assert interval["excludes_zero"]
    flipped = paired_bootstrap("accuracy", [reference], [better], labels)  # the other way round: the mirror image
    assert (flipped["low"], flipped["high"]) == pytest.approx((-interval["high"], -interval["low"]))


def test_the_interval_covers_a_known_true_difference_about_95_percent_of_the_time():
    """Dev sets drawn from a population where the strategy is right 80 % and the reference 70 % of the time (true
    accuracy difference exactly 0.1): about 95 % of the intervals hold 0.1, and the pairing narrows them."""
    rng = np.random.default_rng(2024)
    n, trials, covered, widths, unpaired_widths = 200, 200, 0, [], []
    for _ in range(trials):
        labels = rng.integers(0, 2, n)
        u = rng.random(n)  # one draw per example: the two models' errors are correlated, as on a real dev set
        mine = np.where(u < 0.8, labels, 1 - labels)
        reference = np.where(u < 0.7, labels, 1 - labels)
        interval = paired_bootstrap("accuracy", [mine], [reference], labels, resamples=500, seed=1)
        covered += interval["low"] <= 0.1 <= interval["high"]
        widths.append(interval["high"] - interval["low"])
        # unpaired: the two accuracies' own intervals, half-widths added in quadrature
        se = np.sqrt(0.8 * 0.2 / n + 0.7 * 0.3 / n)
        unpaired_widths.append(2 * 1.96 * se)
    assert 0.91 <= covered / trials <= 0.99
    assert np.mean(widths) < 0.7 * np.mean(unpaired_widths)


@pytest.mark.parametrize("mine, reference, labels, fragment", [
    ([[0, 1]], [[0, 1], [1, 1]], [0, 1], "prediction arrays"),
    ([[0, 1, 1]], [[0, 1]], [0, 1], "same (non-zero) number"),
    ([[0, 1]], [[0, 1]], [[0, 1], [1, 0]], "labels: give one array"),
])
def test_mismatched_inputs_are_errors(mine, reference, labels, fragment):
    with pytest.raises(ValueError) as error:
        paired_bootstrap("accuracy", mine, reference, labels)
    assert fragment in str(error.value)


# ---------------------------------------------------------------------------------------------- predictions
TINY = dict(backbone="tiny", batch_size=8, max_length=32, lr=1e-3, limit=16, eval_limit=12, log_every=1, seed=5)
DEMO = dict(target="demo-paraphrase", aux=["demo-similarity"])


def first_epoch_best(monkeypatch):
    """Make the first evaluation the best one, so the kept predictions are not simply the last ones."""
    import itertools

    from mtl.training import evaluation

    count = itertools.count()
    monkeypatch.setattr(evaluation, "selection_value", lambda config, tasks, results: -float(next(count)))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two epochs of a tiny run whose best evaluation is the first."""
    from mtl.runs.config import RunConfig
    from mtl.training.trainer import Trainer

    monkeypatch = pytest.MonkeyPatch()
    first_epoch_best(monkeypatch)
    out = tmp_path_factory.mktemp("predictions") / "run"
    try:
        Trainer(RunConfig(**DEMO, **TINY, epochs=2, output=str(out))).train()
    finally:
        monkeypatch.undo()
    return out


def test_predictions_are_those_of_the_best_evaluation_as_eval_json_reports_them(tiny_run):
    from mtl.contract import loader
    from mtl.runs.folder import RunFolder

    run = RunFolder(tiny_run)
    summary, evaluation = run.summary(), run.eval()
    assert summary["best_epoch"] == 0 and len(summary["epochs"]) == 2
    stored = run.predictions()
    assert (stored["epoch"], stored["step"]) == (0, summary["best_step"])
    assert set(stored["splits"]) == {f"{t}.{s}" for t, splits in evaluation.items() for s in splits}
    for key, pair in stored["splits"].items():
        name, _, split = key.rpartition(".")
        task = loader.create("task", name)
        examples = task.load(split, limit=TINY["eval_limit"])
        assert len(pair["predictions"]) == len(examples) == TINY["eval_limit"]
        assert pair["labels"].tolist() == pytest.approx(examples.labels)  # the dev file's order
        assert pair["predictions"].dtype == (np.float32 if task.is_regression else np.int64)
        assert task.compute_metrics(pair["predictions"], pair["labels"]) == pytest.approx(evaluation[name][split])
    raw = (tiny_run / "predictions.safetensors").read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])  # safetensors: a JSON header, no pickle
    assert header["__metadata__"]["kind"] == "mtl-predictions"


def test_predictions_are_what_mtl_predict_and_mtl_eval_give_on_the_dev_set(tiny_run, tmp_path):
    from mtl.contract import loader
    from mtl.runs.folder import RunFolder

    stored = RunFolder(tiny_run).predictions()["splits"]
    for name in ("demo-paraphrase", "demo-similarity"):
        task = loader.create("task", name)
        examples = task.load("dev", limit=TINY["eval_limit"])
        lines = tmp_path / f"{name}.jsonl"
        lines.write_text("".join(json.dumps(dict(zip(task.text_columns, texts, strict=True))) + "\n"
                                 for texts in examples.texts))
        result = invoke_cli("predict", str(tiny_run), "--task", name, "--input", str(lines))
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        if task.is_regression:
            assert stored[f"{name}.dev"]["predictions"].tolist() == pytest.approx([r["score"] for r in rows], abs=1e-5)
        else:
            assert stored[f"{name}.dev"]["predictions"].tolist() == [task.labels.index(r["label"]) for r in rows]
        evaluated = invoke_cli("eval", str(tiny_run), "--task", name, "--json")
        assert evaluated.exit_code == 0, evaluated.output
        assert json.loads(evaluated.stdout)["metrics"] == pytest.approx(
            task.compute_metrics(stored[f"{name}.dev"]["predictions"], stored[f"{name}.dev"]["labels"]))


def test_a_finetune_run_stores_its_targets_predictions(tiny_run, tmp_path):
    from mtl.runs.folder import RunFolder
    from mtl.training.finetune import finetune_config
    from mtl.training.trainer import Trainer

    config = finetune_config(tiny_run, {"max_steps": 1})
    config.output = str(tmp_path / "stage")
    Trainer(config).train()
    stage = RunFolder(tmp_path / "stage")
    stored = stage.predictions()
    assert list(stored["splits"]) == ["demo-paraphrase.dev"]
    pair = stored["splits"]["demo-paraphrase.dev"]
    from mtl.contract import loader

    task = loader.create("task", "demo-paraphrase")
    assert task.compute_metrics(pair["predictions"], pair["labels"]) == pytest.approx(
        stage.eval()["demo-paraphrase"]["dev"])


class Crash(Exception):
    """Stands in for a crash in the middle of training (the process goes on only to run the test)."""


@pytest.mark.slow
def test_a_resumed_run_keeps_the_predictions_of_its_best_evaluation(tmp_path, monkeypatch):
    """Killed after its best (first) evaluation and resumed: the same predictions.safetensors as the whole run."""
    from mtl.runs.config import RunConfig
    from mtl.runs.folder import RunFolder
    from mtl.training.trainer import Trainer

    first_epoch_best(monkeypatch)
    options = dict(target="demo-paraphrase", **TINY, epochs=2, checkpoint_every=2)  # 2 steps per epoch
    Trainer(RunConfig(**options, output=str(tmp_path / "whole"))).train()
    original = Trainer.train_step

    def crash(self, step, *args, **kwargs):
        if step == 3:
            raise Crash(f"crash at step {step}")
        return original(self, step, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_step", crash)
    with pytest.raises(Crash):
        Trainer(RunConfig(**options, output=str(tmp_path / "crashed"))).train()
    monkeypatch.setattr(Trainer, "train_step", original)
    crashed = RunFolder(tmp_path / "crashed")
    assert crashed.predictions() is not None and not crashed.evaluated()  # written at the best evaluation
    Trainer.resuming(tmp_path / "crashed").prepare().train()
    whole = RunFolder(tmp_path / "whole")
    assert crashed.eval() == whole.eval()
    a, b = crashed.predictions(), whole.predictions()
    assert (a["epoch"], a["step"]) == (b["epoch"], b["step"]) == (0, 1)
    assert set(a["splits"]) == set(b["splits"]) == {"demo-paraphrase.dev"}
    for key in b["splits"]:
        assert a["splits"][key]["predictions"].tolist() == b["splits"][key]["predictions"].tolist()
        assert a["splits"][key]["labels"].tolist() == b["splits"][key]["labels"].tolist()
