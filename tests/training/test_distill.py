"""MT-DNN-KD distillation (Liu et al. 2019, arXiv 1904.09482): `mtl run --teacher TASK=RUN[,RUN...]`.

Soft targets are checked against the teachers run with plain transformers, the loss against hand-computed values,
and a student trained on shuffled labels must learn its teacher's predictions from the soft targets alone.
"""

from __future__ import annotations

import csv
import json
import math
import random
import shutil
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, invoke_cli
from helpers.teachers import make_teacher
from safetensors import safe_open

from mtl.errors import MtlError, OptionError
from mtl.runs.config import RunConfig
from mtl.training import distill
from mtl.training.trainer import Trainer

DEMO = Path(__file__).resolve().parents[2] / "core" / "data" / "demo"
LIMIT = 64
STUDENT = ["--backbone", "tiny", "--max-steps", "6", "--batch-size", "16", "--max-length", "32", "--limit",
           str(LIMIT), "--eval-limit", "32", "--seed", "4", "--quiet"]


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """Two teacher runs of demo-paraphrase (seeds 1, 2) and one of demo-similarity, 64 training examples each."""
    root = tmp_path_factory.mktemp("teachers")
    return {"a": make_teacher(root / "a", "demo-paraphrase", seed=1),
            "b": make_teacher(root / "b", "demo-paraphrase", seed=2),
            "sim": make_teacher(root / "sim", "demo-similarity", seed=1)}


@pytest.fixture(scope="module")
def student(teachers, tmp_path_factory):
    """`mtl run` on the demo suite, demo-paraphrase taught by run a and the export of run b, demo-similarity by sim."""
    out = tmp_path_factory.mktemp("student") / "run"
    result = invoke_cli("run", *STUDENT, "-o", str(out),
                        "--teacher", f"demo-paraphrase={teachers['a']},{teachers['b'] / 'model'}",
                        "--teacher", f"demo-similarity={teachers['sim']}")
    assert result.exit_code == 0, result.output
    return out


def stored(run: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(run / distill.SOFT_TARGETS), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def read_tsv(name: str, limit: int | None = None) -> list[dict[str, str]]:
    with open(DEMO / name, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[:limit] if limit is not None else rows


def transformers_logits(export_dir: Path, rows: list[dict[str, str]], columns: tuple[str, ...]) -> torch.Tensor:
    """The exported teacher run by plain transformers, one example at a time (no padding), in eval mode."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    manifest = json.loads((export_dir / "mtl_export.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(export_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(export_dir)).eval()
    out = []
    with torch.no_grad():
        for row in rows:
            enc = tokenizer(*[row[c] for c in columns], truncation=True, max_length=manifest["max_length"],
                            return_tensors="pt")
            out.append(model(**enc).logits[0])
    return torch.stack(out)


# ---------------------------------------------------------------------------------------------- soft targets
@pytest.mark.slow
def test_soft_targets_are_the_mean_of_the_teachers_probabilities(student, teachers):
    targets, metadata = stored(student)
    rows = read_tsv("paraphrase_train.tsv", LIMIT)
    a = transformers_logits(teachers["a"] / "model", rows, ("sentence1", "sentence2"))  # run a's own best model
    b = transformers_logits(teachers["b"] / "model", rows, ("sentence1", "sentence2"))
    expected = (a.softmax(-1) + b.softmax(-1)) / 2
    assert targets["demo-paraphrase"].shape == (LIMIT, 2)
    torch.testing.assert_close(targets["demo-paraphrase"], expected, atol=1e-5, rtol=0)
    assert not torch.allclose(a.softmax(-1), b.softmax(-1), atol=1e-4)  # two teachers that really differ
    # regression: the (one) teacher's prediction itself
    sim = transformers_logits(teachers["sim"] / "model", read_tsv("similarity_train.tsv", LIMIT),
                              ("sentence1", "sentence2"))
    torch.testing.assert_close(targets["demo-similarity"], sim[:, 0], atol=1e-5, rtol=0)
    assert set(targets) == {"demo-paraphrase", "demo-similarity"}  # demo-sentiment has no teacher
    config = json.loads((student / "config.json").read_text())
    assert config["teachers"] == {
        "demo-paraphrase": [str(teachers["a"].resolve()), str((teachers["b"] / "model").resolve())],
        "demo-similarity": [str(teachers["sim"].resolve())]}
    assert json.loads(metadata["teachers"]) == config["teachers"]
    assert json.loads((student / "eval.json").read_text()).keys() == {"demo-paraphrase", "demo-similarity",
                                                                       "demo-sentiment"}


def test_teachers_predict_in_eval_mode(tmp_path):
    """With dropout 0.9 in the teacher's heads, training mode would make each prediction random."""
    run = make_teacher(tmp_path / "t", "demo-paraphrase", seed=3, max_steps=2, dropout=0.9)
    teacher = distill.describe(run, "--teacher")
    examples = {"demo-paraphrase": _examples("demo-paraphrase")}
    tasks = {"demo-paraphrase": _task("demo-paraphrase")}
    first = distill.soft_targets({"demo-paraphrase": [teacher]}, tasks, examples)["demo-paraphrase"]
    again = distill.soft_targets({"demo-paraphrase": [teacher]}, tasks, examples)["demo-paraphrase"]
    assert torch.equal(first, again)
    expected = transformers_logits(run / "model", read_tsv("paraphrase_train.tsv", LIMIT),
                                   ("sentence1", "sentence2")).softmax(-1)
    torch.testing.assert_close(first, expected, atol=1e-5, rtol=0)


def _task(name):
    import mtl

    return mtl.create("task", name)


def _examples(name, limit=LIMIT):
    return _task(name).load("train", limit=limit)


# ---------------------------------------------------------------------------------------------- the loss
def test_kd_loss_is_the_average_of_the_two_terms_on_constructed_logits():
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    labels = torch.tensor([0, 0])
    soft = torch.tensor([[0.25, 0.75], [0.5, 0.5]])
    hard = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    # by hand: softmax([1, 0]) = (0.731059, 0.268941); softmax([0, 2]) = (0.119203, 0.880797)
    # hard: -ln 0.731059 = 0.313262, -ln 0.119203 = 2.126928
    # soft: -(0.25 ln 0.731059 + 0.75 ln 0.268941) = 1.063262; -(0.5 ln 0.119203 + 0.5 ln 0.880797) = 1.126928
    got = distill.kd_loss(hard, logits, soft, regression=False)
    torch.testing.assert_close(got, torch.tensor([(0.313262 + 1.063262) / 2, (2.126928 + 1.126928) / 2]),
                               atol=1e-5, rtol=0)
    # temperature 2 divides the student's logits in the soft term only: softmax([0.5, 0]) = (0.622459, 0.377541)
    # soft: -(0.25 ln 0.622459 + 0.75 ln 0.377541) = 0.849077
    got = distill.kd_loss(hard[:1], logits[:1], soft[:1], regression=False, temperature=2.0)
    torch.testing.assert_close(got, torch.tensor([(0.313262 + 0.849077) / 2]), atol=1e-5, rtol=0)
    # regression: prediction 2.5, label 3.0 (hard 0.25), mean teacher prediction 1.0 (soft 2.25)
    got = distill.kd_loss(torch.tensor([0.25]), torch.tensor([[2.5]]), torch.tensor([1.0]), regression=True)
    torch.testing.assert_close(got, torch.tensor([1.25]))


@pytest.mark.slow
def test_the_weighting_receives_the_combined_per_instance_losses(teachers, tmp_path):
    config = RunConfig(target="demo-paraphrase", aux=["demo-similarity", "demo-sentiment"], backbone="tiny",
                       batch_size=16, max_length=32, limit=LIMIT, eval_limit=32, max_steps=6, seed=0,
                       sampler="all", output=str(tmp_path / "run"), teacher_temperature=1.5,
                       teachers={"demo-paraphrase": [str(teachers["a"])], "demo-similarity": [str(teachers["sim"])]})
    trainer = Trainer(config).prepare()
    seen: dict = {}
    forward, backward = trainer.forward, trainer.weighting.backward

    def record_forward(batches):
        seen["outputs"] = forward(batches)
        seen["batches"] = batches
        return seen["outputs"]

    def record_backward(step):
        seen["losses"] = {n: v.detach().clone() for n, v in step.losses.items()}
        return backward(step)

    rows = {}
    for name, stream in trainer.streams.items():
        next_indices = stream.next_indices
        stream.next_indices = lambda _n=name, _f=next_indices: rows.setdefault(_n, _f())
    trainer.forward, trainer.weighting.backward = record_forward, record_backward
    optimizer, scheduler = trainer._optimizer()
    trainer.train_step(0, optimizer, scheduler)
    soft = trainer.distiller.targets  # checked against the teachers in test_soft_targets_are_the_mean_...
    assert set(seen["losses"]) == {"demo-paraphrase", "demo-similarity", "demo-sentiment"}
    for name, (logits, _, _) in seen["outputs"].items():
        logits, labels = logits.detach().float(), seen["batches"][name]["labels"]
        if name == "demo-paraphrase":  # by formula, written out here
            p = torch.log_softmax(logits / 1.5, dim=-1)
            hard = -torch.log_softmax(logits, dim=-1)[torch.arange(len(labels)), labels]
            expected = 0.5 * (hard - (soft[name][rows[name]] * p).sum(-1))
        elif name == "demo-similarity":  # squared errors; temperature does not apply
            expected = 0.5 * ((logits[:, 0] - labels) ** 2 + (logits[:, 0] - soft[name][rows[name]]) ** 2)
        else:  # no teacher: the task's own loss
            expected = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
        torch.testing.assert_close(seen["losses"][name], expected, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------- learning
@pytest.mark.slow
def test_a_student_on_shuffled_labels_learns_its_teachers_predictions(tmp_path):
    """The teacher learns a rule (label 1 iff the sentence has the word "not"); the student's labels are shuffled,
    so only the soft targets carry the rule. Its dev predictions must agree with the teacher's far above chance."""
    task = _task("demo-sentiment")
    train, dev = task.load("train"), task.load("dev")
    rule = lambda text: int("not" in text.lower().replace(".", " ").replace(",", " ").split())  # noqa: E731

    def write(path: Path, texts, labels) -> str:
        with open(path, "w", encoding="utf-8") as f:
            f.write("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for (t,), y in zip(texts, labels, strict=True)))
        return str(path)

    rule_train = write(tmp_path / "rule_train.tsv", train.texts, [rule(t) for (t,) in train.texts])
    rule_dev = write(tmp_path / "rule_dev.tsv", dev.texts, [rule(t) for (t,) in dev.texts])
    shuffled = [rule(t) for (t,) in train.texts]
    random.Random(0).shuffle(shuffled)
    shuffled_train = write(tmp_path / "shuffled.tsv", train.texts, shuffled)
    teacher = make_teacher(tmp_path / "teacher", "demo-sentiment", seed=1, limit=None, max_steps=60, batch_size=32,
                           lr=3e-3, data={"demo-sentiment.train": rule_train, "demo-sentiment.dev": rule_dev})
    Trainer(RunConfig(target="demo-sentiment", backbone="tiny", max_steps=120, batch_size=32, max_length=32, lr=3e-3,
                      eval_limit=32, log_every=50, seed=7, output=str(tmp_path / "student"),
                      data={"demo-sentiment.train": shuffled_train},
                      teachers={"demo-sentiment": [str(teacher)]})).train()

    from mtl.runs.predict import load_predictor

    def predictions(path):
        predictor = load_predictor(path)
        return predictor.logits(predictor.encode(dev.texts)).argmax(-1)

    t, s = predictions(teacher), predictions(tmp_path / "student")
    truth = torch.tensor([rule(text) for (text,) in dev.texts])
    assert (t == truth).float().mean() > 0.95  # the teacher knows the rule
    assert 0.2 < t.float().mean() < 0.8  # and does not predict one class
    observed = (s == t).float().mean().item()
    chance = (t.float().mean() * s.float().mean() + (1 - t.float().mean()) * (1 - s.float().mean())).item()
    kappa = (observed - chance) / (1 - chance)
    assert observed > 0.85 and kappa > 0.6, (observed, chance, kappa)


# ---------------------------------------------------------------------------------------------- errors
def test_parse_teachers_merges_repeats_and_refuses_malformed_values():
    assert distill.parse_teachers(["rte=a,b", "mrpc=c", "rte=d"]) == {"rte": ["a", "b", "d"], "mrpc": ["c"]}
    for bad in ["rte", "=a", "rte=", "rte=a,,b"]:
        with pytest.raises(OptionError, match="expected TASK=RUN"):
            distill.parse_teachers([bad])


@pytest.fixture(scope="module")
def odd_teachers(teachers, tmp_path_factory):
    """Teacher folders that must be refused: unfinished, an export claiming other labels or a regression."""
    root = tmp_path_factory.mktemp("odd")
    unfinished = shutil.copytree(teachers["a"], root / "unfinished")
    (unfinished / "summary.json").unlink()
    for name, labels in (("labels", ["no", "maybe", "yes"]), ("regression", None)):
        folder = shutil.copytree(teachers["a"] / "model", root / name)
        manifest = json.loads((folder / "mtl_export.json").read_text())
        manifest.update(labels=labels, num_labels=len(labels) if labels else 1)
        (folder / "mtl_export.json").write_text(json.dumps(manifest))
    (root / "plain").mkdir()
    (root / "plain" / "notes.txt").write_text("not a run")
    return root


ERRORS = [
    (["--teacher", "demo-paraphrase"], ["--teacher 'demo-paraphrase': expected TASK=RUN[,RUN...]"]),
    (["--teacher", "nope={a}"], ["task 'nope' is not in this run", "demo-paraphrase"]),
    (["--teacher", "demo-paraphrase={sim}"], ["is a model of task 'demo-similarity', not 'demo-paraphrase'"]),
    (["--teacher", "demo-paraphrase={odd}/labels"], ["labels no, maybe, yes", "labels not_paraphrase, paraphrase"]),
    (["--teacher", "demo-paraphrase={a},{odd}/regression"],
     ["the teacher is a regression", "labels not_paraphrase, paraphrase"]),
    (["--teacher", "demo-paraphrase={odd}/unfinished"], ["is not finished (no summary.json)"]),
    (["--teacher", "demo-paraphrase={odd}/plain"], ["is neither a run folder", "nor an `mtl export` folder"]),
    (["--teacher", "demo-paraphrase={odd}/missing"], ["does not exist"]),
    (["--teacher", "demo-paraphrase={a}", "--limit", "48"], ["trained on 64 examples", "this run trains on 48"]),
    (["--teacher", "demo-paraphrase={b}/model", "--limit", "48"], ["trained on 64 examples", "this run trains on 48"]),
    (["--teacher", "demo-paraphrase={a}", "--teacher-temperature", "0"], ["--teacher-temperature must be > 0"]),
]


@pytest.mark.parametrize("args,fragments", ERRORS, ids=[e[1][0][:40] for e in ERRORS])
@pytest.mark.slow
def test_each_teacher_mistake_is_one_line_and_writes_nothing(teachers, odd_teachers, tmp_path, args, fragments):
    paths = {k: str(v) for k, v in teachers.items()} | {"odd": str(odd_teachers)}
    args = [a.format(**paths) for a in args]
    base = [a for a in STUDENT if a != "--limit" and a != str(LIMIT)] if "--limit" in args else STUDENT
    result = invoke_cli("run", *base, *args, "-o", str(tmp_path / "run"))
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_python_api_errors_before_anything_is_written(teachers, tmp_path):
    config = RunConfig(target="demo-paraphrase", backbone="tiny", limit=LIMIT, output=str(tmp_path / "run"),
                       teachers={"demo-paraphrase": [str(teachers["sim"])]})
    with pytest.raises(MtlError, match="is a model of task 'demo-similarity'"):
        Trainer(config).train()
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------- mtl bench
@pytest.mark.slow
def test_bench_passes_teachers_to_its_runs(teachers, tmp_path):
    out = tmp_path / "bench"
    result = invoke_cli("bench", "--strategy", "single,uniform", "--seeds", "0", "--backbone", "tiny", "--max-steps",
                        "2", "--batch-size", "16", "--max-length", "32", "--limit", str(LIMIT), "--eval-limit", "16",
                        "--teacher", f"demo-paraphrase={teachers['a']}",
                        "--teacher", f"demo-similarity={teachers['sim']}", "-o", str(out), "-q")
    assert result.exit_code == 0, result.output
    a, sim = str(teachers["a"].resolve()), str(teachers["sim"].resolve())
    single = json.loads((out / "single" / "seed-0" / "config.json").read_text())
    uniform = json.loads((out / "uniform" / "seed-0" / "config.json").read_text())
    assert single["teachers"] == {"demo-paraphrase": [a]}  # the single-task run has no demo-similarity
    assert uniform["teachers"] == {"demo-paraphrase": [a], "demo-similarity": [sim]}
    assert set(stored(out / "single" / "seed-0")[0]) == {"demo-paraphrase"}
    assert set(stored(out / "uniform" / "seed-0")[0]) == {"demo-paraphrase", "demo-similarity"}
    assert math.isfinite(json.loads((out / "bench.json").read_text())["table"]["rows"][1]["metrics"]["f1"]["mean"])


@pytest.mark.slow
def test_bench_refuses_a_bad_teacher_before_running(teachers, tmp_path):
    result = invoke_cli("bench", "--strategy", "uniform", "--seeds", "0", "--backbone", "tiny",
                        "--teacher", f"demo-paraphrase={teachers['sim']}", "-o", str(tmp_path / "bench"))
    assert_one_line_error(result, "is a model of task 'demo-similarity'")
    assert not (tmp_path / "bench").exists()


@pytest.mark.parametrize("target", ["demo-entities", "demo-qa", "demo-choice"])
def test_a_teacher_of_a_task_without_one_logit_vector_per_example_is_refused(tmp_path, target):
    """Soft targets are one vector per training example: token tags, QA windows and choices are refused in one
    line, before any teacher is loaded or anything is written."""
    result = invoke_cli("run", "--target", target, "--backbone", "tiny", "--max-steps", "1",
                        "--teacher", f"{target}={tmp_path / 'teacher'}", "-o", str(tmp_path / "run"))
    assert_one_line_error(result, f"--teacher {target}=...", "distillation", "classification and regression")
    assert not (tmp_path / "run").exists()
