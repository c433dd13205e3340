"""`mtl export`, `mtl predict`, `mtl eval` and mtl.restore: the deployable target model of a run (DESIGN.md, "Runs";
MAMT "Plug-out"). Exports are loaded with plain transformers in a subprocess that never imports mtl."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import assert_one_line_error as one_line_error
from typer.testing import CliRunner

from mtl.cli import app
from mtl.errors import MtlError
from mtl.runs.config import RunConfig
from mtl.training.trainer import Trainer

runner = CliRunner()
DEMO = dict(target="demo-paraphrase", aux=["demo-similarity", "demo-sentiment"])
PAIRS = [("The lawyer followed the man at the station.", "The attorney trailed the man at the train station."),
         ("A cat slept on the warm red sofa all afternoon.", "The dog barked."),
         ("He sold the old car.", "She bought a new house near the river last spring.")]
RUNS = {  # name: RunConfig overrides
    "mamt": dict(weighting="mamt", sampler="adaptive", options={"tiny": {"hidden_size": 32}, "mamt": {"memory": 2}}),
    "input": dict(target="demo-similarity", aux=["demo-paraphrase", "demo-sentiment"],
                  options={"tiny": {"hidden_size": 32, "task_embedding": "input"}}),
    "attention": dict(options={"tiny": {"hidden_size": 32, "task_embedding": "attention"}}),
    "mmoe": dict(weighting="mmoe", options={"tiny": {"hidden_size": 32}, "mmoe": {"experts": 3}}),
}


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def assert_one_line_error(result, *fragments):
    """conftest's one-line error check; export commands also print nothing on stdout then."""
    one_line_error(result, *fragments)
    assert result.stdout == ""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Four short tiny-backbone runs on the demo suite, trained once for the module: name -> (run folder, trainer)."""
    root = tmp_path_factory.mktemp("runs")
    trained = {}
    for name, overrides in RUNS.items():
        values = dict(DEMO, backbone="tiny", batch_size=8, max_length=32, lr=1e-3, max_steps=8, eval_limit=60,
                      log_every=4, seed=1, output=str(root / name))
        values.update(overrides)
        trainer = Trainer(RunConfig(**values))
        trainer.train()
        trainer.model.eval()
        trained[name] = (root / name, trainer)
    return trained


@pytest.fixture(scope="module")
def exports(runs, tmp_path_factory):
    """Each run exported with `mtl export RUN --output DIR`: name -> (folder, stdout)."""
    root = tmp_path_factory.mktemp("exports")
    done = {}
    for name, (run, _) in runs.items():
        result = invoke("export", run, "--output", root / name)
        assert result.exit_code == 0, result.output
        done[name] = (root / name, result.stdout)
    return done


def trained_logits(trainer, texts=PAIRS):
    """The trained model's target logits on ``texts``, tokenised as one padded batch (eval mode)."""
    tokenizer = trainer.model.backbone.tokenizer
    columns = list(zip(*texts, strict=True))
    second = list(columns[1]) if len(trainer.tasks[trainer.config.target].text_columns) > 1 else None
    batch = tokenizer(list(columns[0]), second, padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        return trainer.model(trainer.config.target, dict(batch))[0]


PLAIN = r"""
import json, sys
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from safetensors import safe_open
pairs, folders, mmoe = json.loads(sys.argv[1])
out = {}
for name, folder in folders.items():
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    batch = tokenizer([a for a, b in pairs], [b for a, b in pairs], padding=True, truncation=True, max_length=32,
                      return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    with safe_open(folder + "/model.safetensors", framework="pt") as f:
        saved = sorted(f.keys())
    reference = type(model)(model.config)  # a fresh model of the same class: the standard parameter names
    out[name] = {"logits": logits.tolist(), "num_labels": model.config.num_labels, "class": type(model).__name__,
                 "problem_type": model.config.problem_type, "id2label": model.config.id2label,
                 "saved": saved, "standard": sorted(reference.state_dict())}
try:
    AutoModelForSequenceClassification.from_pretrained(mmoe)
    out["mmoe_loaded"] = True
except Exception:
    out["mmoe_loaded"] = False
out["mtl_imported"] = sorted(m for m in sys.modules if m == "mtl" or m.startswith("mtl."))
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def plain(exports):
    """What plain transformers makes of the exports, in a subprocess that does not import mtl."""
    folders = {name: str(exports[name][0]) for name in ("mamt", "input", "attention")}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    done = subprocess.run([sys.executable, "-c", PLAIN, json.dumps([PAIRS, folders, str(exports["mmoe"][0])])],
                          capture_output=True, text=True, env=env, cwd=exports["mamt"][0].parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


# ------------------------------------------------------------------------------------------------ export


@pytest.mark.slow
def test_plain_transformers_gives_the_trained_logits_without_mtl(runs, plain):
    assert plain["mtl_imported"] == []
    for name in ("mamt", "input", "attention"):
        _, trainer = runs[name]
        expected = trained_logits(trainer)
        got = torch.tensor(plain[name]["logits"])
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-5), (name, got, expected)
        assert plain[name]["class"] == "BertForSequenceClassification"


@pytest.mark.slow
def test_mamt_memory_and_auxiliary_heads_are_plugged_out(runs, exports, plain):
    state = plain["mamt"]
    # exactly the parameters of a standard BertForSequenceClassification, nothing of the memory or other heads
    assert state["saved"] == state["standard"]
    assert not [k for k in state["saved"] if "bank" in k or "heads" in k or "task_embedding" in k or "feature_map" in k]
    assert state["num_labels"] == 2 and state["problem_type"] == "single_label_classification"
    assert state["id2label"] == {"0": "not_paraphrase", "1": "paraphrase"}
    folder, stdout = exports["mamt"]
    manifest = json.loads((folder / "mtl_export.json").read_text())
    assert manifest["kind"] == "transformers" and manifest["loadable_with_transformers"] is True
    assert manifest["task"] == "demo-paraphrase" and manifest["labels"] == ["not_paraphrase", "paraphrase"]
    eval_json = json.loads((runs["mamt"][0] / "eval.json").read_text())
    assert manifest["metrics"] == eval_json["demo-paraphrase"]
    assert manifest["source"]["run"] == str(runs["mamt"][0].resolve()) and manifest["source"]["weighting"] == "mamt"
    plugged = " | ".join(manifest["plugged_out"])
    assert "demo-similarity, demo-sentiment" in plugged and "'mamt'" in plugged and "bank" in plugged
    assert "Plugged out:" in stdout and "bank" in stdout and "AutoModelForSequenceClassification" in stdout
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                        "mtl_export.json", "tokenizer.json", "tokenizer_config.json"]


@pytest.mark.slow
def test_task_embeddings_fold_into_plain_bert(runs, exports, plain):
    from safetensors.torch import load_file

    for mode in ("input", "attention"):
        embedding = runs[mode][1].model.backbone.task_embedding
        assert embedding.mode == mode and embedding.vectors.abs().sum() > 0  # trained, so folding matters
        assert plain[mode]["saved"] == plain[mode]["standard"]
        _, stdout = exports[mode]
        assert f"Task embedding '{mode}' folded" in stdout and "plain transformers" in stdout
    # input: every row of the word-embedding matrix carries the target's vector
    trainer = runs["input"][1]
    saved = load_file(exports["input"][0] / "model.safetensors")
    words = trainer.model.backbone.encoder.get_input_embeddings().weight.detach()
    vector = trainer.model.backbone.task_embedding.vectors.detach()[trainer.model.task_ids["demo-similarity"]]
    assert torch.allclose(saved["bert.embeddings.word_embeddings.weight"], words + vector, atol=1e-7)


@pytest.mark.slow
def test_regression_target_exports_one_output_and_problem_type_regression(plain, exports):
    assert plain["input"]["num_labels"] == 1 and plain["input"]["problem_type"] == "regression"
    manifest = json.loads((exports["input"][0] / "mtl_export.json").read_text())
    assert manifest["labels"] is None and manifest["problem_type"] == "regression" and manifest["num_labels"] == 1


@pytest.mark.slow
def test_mmoe_export_is_not_plain_loadable_but_mtl_predict_matches(runs, exports, plain, tmp_path):
    folder, stdout = exports["mmoe"]
    assert "Not a plain transformers classifier" in stdout and "mtl predict" in stdout
    assert plain["mmoe_loaded"] is False  # no config.json at the top: it cannot be mistaken for a classifier
    manifest = json.loads((folder / "mtl_export.json").read_text())
    assert manifest["kind"] == "feature-map" and manifest["loadable_with_transformers"] is False
    assert manifest["feature_map"] == {"weighting": "mmoe", "options": {"experts": 3}, "encoder": "encoder",
                                       "head": "mtl_head.safetensors"}
    plugged = " ".join(manifest["plugged_out"])  # the other tasks' gates
    assert "gates.demo-similarity" in plugged and "gates.demo-sentiment" in plugged and "experts" not in plugged
    from safetensors.torch import load_file

    head = load_file(folder / "mtl_head.safetensors")
    assert {k.split(".")[0] for k in head} == {"experts", "gates", "classifier"}
    assert {k for k in head if k.startswith("gates.")} == {"gates.demo-paraphrase.weight", "gates.demo-paraphrase.bias"}
    lines = "".join(json.dumps({"sentence1": a, "sentence2": b}) + "\n" for a, b in PAIRS)
    result = invoke("predict", folder, input=lines)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    expected = trained_logits(runs["mmoe"][1])
    assert torch.allclose(torch.tensor([r["logits"] for r in rows]), expected, atol=1e-5)


@pytest.mark.slow
def test_the_run_folder_restores_the_trained_model_bit_for_bit(runs):
    """A finished run stores its best model once (model/, and in best.safetensors what model/ lacks); load_run gives
    the trained weights exactly: plain export, task embeddings folded into model/ (input, attention), feature map."""
    from safetensors.torch import load_file

    from mtl.runs import best
    from mtl.runs.folder import RunFolder
    from mtl.runs.restore import load_run

    for name, (run, trainer) in runs.items():
        assert best.is_partial(RunFolder(run).best_path), name
        _, model, _ = load_run(run)
        mine, trained = model.state_dict(), trainer.model.state_dict()
        assert mine.keys() == trained.keys()
        assert all(torch.equal(mine[k], trained[k].cpu()) for k in mine), name
        kept = set(load_file(RunFolder(run).best_path))
        assert not any(k.startswith(f"heads.{trainer.config.target}.") for k in kept), name  # in model/
        assert any(k.startswith("backbone.task_embedding.") for k in kept) == (name in ("input", "attention"))


@pytest.mark.slow
def test_the_trainer_writes_the_model_folder_and_export_model_refuses_to_overwrite(runs, tmp_path):
    from mtl.runs.export import export_model

    run, trainer = runs["attention"]
    assert (run / "model" / "config.json").is_file()  # written by Trainer.train itself
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "model")
    result = export_model(trainer.model, trainer.tasks, trainer.config.target, copy / "model", run_dir=copy)
    assert result["path"] == str(copy / "model") and "model.safetensors" in result["files"]
    assert (copy / "model" / "config.json").is_file() and result["folded"]
    with pytest.raises(MtlError, match="not empty"):
        export_model(trainer.model, trainer.tasks, trainer.config.target, copy / "model")
    assert not [p for p in copy.iterdir() if p.name.startswith(".model.")]  # no temporary folder left behind


def test_an_architecture_that_does_not_map_is_a_clear_error(tmp_path):
    from transformers import AutoTokenizer, MPNetConfig, MPNetModel

    import mtl
    from mtl.model.backbone import HFBackbone
    from mtl.model.multitask import MultiTaskModel
    from mtl.plugins.backbones.minilm import model_path
    from mtl.runs.export import export_model

    # MPNet has a pooler, but its classifier is dense -> tanh -> out_proj on the first token, not a Linear on it
    encoder = MPNetModel(MPNetConfig(vocab_size=31000, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=16))
    backbone = HFBackbone(encoder, AutoTokenizer.from_pretrained(model_path()), name="mpnet")
    tasks = {"demo-sentiment": mtl.create("task", "demo-sentiment")}
    model = MultiTaskModel(backbone, {"demo-sentiment": 2})
    with pytest.raises(MtlError, match="cannot export backbone architecture 'mpnet'"):
        export_model(model, tasks, "demo-sentiment", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ predict, eval


@pytest.mark.slow
def test_predict_on_a_run_and_on_its_export_agree(runs, exports, tmp_path):
    run, trainer = runs["mamt"]
    lines = tmp_path / "in.txt"
    lines.write_text(json.dumps({"sentence1": PAIRS[0][0], "sentence2": PAIRS[0][1], "label": 1}) + "\n\n"
                     + "\t".join(PAIRS[1]) + "\n" + "\t".join(PAIRS[2]) + "\n")
    from_run = invoke("predict", run, "--input", lines)
    from_export = invoke("predict", exports["mamt"][0], "--input", "-", input=lines.read_text())
    assert from_run.exit_code == 0 and from_export.exit_code == 0, (from_run.output, from_export.output)
    a = [json.loads(line) for line in from_run.stdout.splitlines()]
    b = [json.loads(line) for line in from_export.stdout.splitlines()]
    assert len(a) == len(b) == 3  # the blank line is skipped
    for x, y in zip(a, b, strict=True):
        assert x["label"] == y["label"] and x["score"] == pytest.approx(y["score"], abs=1e-5)
        assert x["logits"] == pytest.approx(y["logits"], abs=1e-5)
        assert x["label"] in ("not_paraphrase", "paraphrase") and 0.5 <= x["score"] <= 1.0
    assert torch.allclose(torch.tensor([r["logits"] for r in a]), trained_logits(trainer), atol=1e-5)
    # regression target: {"score": value}; an auxiliary head of a run by --task
    reg = invoke("predict", exports["input"][0], input="\t".join(PAIRS[0]) + "\n")
    assert reg.exit_code == 0 and set(json.loads(reg.stdout)) == {"score"}
    aux = invoke("predict", run, "--task", "demo-sentiment", input="What a wonderful film.\n")
    assert aux.exit_code == 0 and json.loads(aux.stdout)["label"] in ("negative", "positive")


@pytest.mark.slow
def test_eval_on_the_run_and_the_export_equals_eval_json(runs, exports):
    for name in ("mamt", "input", "mmoe"):
        run, trainer = runs[name]
        target = trainer.config.target
        expected = json.loads((run / "eval.json").read_text())[target]["dev"]
        for where in (run, exports[name][0]):
            result = invoke("eval", where, "--json")
            assert result.exit_code == 0, result.output
            got = json.loads(result.stdout)
            assert got["task"] == target and got["split"] == "dev" and got["examples"] == 60  # the run's --eval-limit
            assert got["metrics"] == expected, (name, where)
    table = invoke("eval", runs["mamt"][0], "--task", "demo-sentiment", "--eval-limit", "20")
    assert table.exit_code == 0 and "demo-sentiment" in table.stdout and "accuracy" in table.stdout


@pytest.mark.slow
def test_eval_on_a_user_file(runs, tmp_path):
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"sentence1": a, "sentence2": b, "label": i % 2}) + "\n"
                            for i, (a, b) in enumerate(PAIRS)))
    result = invoke("eval", runs["mamt"][0], "--data", f"demo-paraphrase.dev={data}", "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["examples"] == 3 and got["source"] == str(data) and set(got["metrics"]) == {"f1", "accuracy"}


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.slow
def test_export_refuses_a_non_empty_out_without_overwrite(runs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = invoke("export", runs["mamt"][0], "--output", out)
    assert_one_line_error(result, "not empty", "--overwrite")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    again = invoke("export", runs["mamt"][0], "--output", out, "--overwrite")
    assert again.exit_code == 0, again.output
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()


def test_not_a_run_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    assert_one_line_error(invoke("export", empty, "--output", out), "not a run folder", str(empty))
    assert_one_line_error(invoke("predict", empty, input="x\n"), "neither a run folder")
    assert_one_line_error(invoke("eval", tmp_path / "missing"), "does not exist")
    assert not out.exists()


def _broken_copy(run, tmp_path, damage):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    damage(copy / "checkpoint" / "best.safetensors")
    return copy


@pytest.mark.slow
def test_truncated_or_mismatched_checkpoint(runs, tmp_path):
    run = runs["mamt"][0]
    broken = _broken_copy(run, tmp_path, lambda p: p.write_bytes(p.read_bytes()[:1000]))
    out = tmp_path / "out"
    assert_one_line_error(invoke("export", broken, "--output", out), "best.safetensors", "not a readable safetensors")
    assert_one_line_error(invoke("eval", broken), "best.safetensors")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    shutil.rmtree(broken)
    (tmp_path / "garbage").mkdir()
    garbage = _broken_copy(run, tmp_path / "garbage", lambda p: p.write_bytes(b"garbage" * 10))
    assert_one_line_error(invoke("export", garbage, "--output", out), "best.safetensors")

    from safetensors.torch import load_file, save_file

    def drop_a_key(path):  # best.safetensors of a finished run: what model/ lacks, and its references (metadata)
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata()
        state = load_file(path)
        save_file({k: v for k, v in state.items() if not k.startswith("heads.demo-sentiment")}, path, metadata)

    (tmp_path / "keys").mkdir()
    mismatched = _broken_copy(run, tmp_path / "keys", drop_a_key)
    assert_one_line_error(invoke("export", mismatched, "--output", out), "best.safetensors", "does not match",
                          "heads.demo-sentiment")
    assert not out.exists()


@pytest.mark.parametrize("text, fragments", [
    ('{"sentence1": "a", "sentence2": "b"}\n{"sentence1": "a",\n', ["<stdin>:2:", "invalid JSON"]),
    ('{"sentence1": "a"}\n', ["<stdin>:1:", "missing 'sentence2'"]),
    ('a\tb\njust one\n', ["<stdin>:2:", "needs 2 texts"]),
    ('{"sentence1": "a", "sentence2": 3}\n', ["<stdin>:1:", "'sentence2' must be a string"]),
])
@pytest.mark.slow
def test_predict_bad_lines_are_one_line_errors(runs, text, fragments):
    assert_one_line_error(invoke("predict", runs["mamt"][0], input=text), *fragments)


@pytest.mark.slow
def test_predict_an_unknown_task_or_missing_input(runs, exports):
    assert_one_line_error(invoke("predict", runs["mamt"][0], "--task", "demo-sentimen", input="x\n"),
                          "unknown task of this run 'demo-sentimen'", "demo-sentiment")
    assert_one_line_error(invoke("predict", exports["mamt"][0], "--task", "demo-sentiment", input="x\n"),
                          "demo-paraphrase")
    assert_one_line_error(invoke("predict", runs["mamt"][0], "--input", "/nonexistent/in.txt"), "/nonexistent/in.txt")


@pytest.mark.slow
def test_export_overwrite_never_deletes_the_run_it_reads(runs, tmp_path):
    """`--output RUN --overwrite` (or a folder above RUN) would replace the run by its export: refused, run intact."""
    holder = tmp_path / "holder"
    run = holder / "run"
    shutil.copytree(runs["mamt"][0], run)
    before = sorted(p.relative_to(holder) for p in holder.rglob("*"))
    for out in (run, holder):
        assert_one_line_error(invoke("export", run, "--output", out, "--overwrite"),
                              f"--output {out}: --overwrite would delete {run}, which this command reads")
    assert sorted(p.relative_to(holder) for p in holder.rglob("*")) == before


@pytest.mark.parametrize("change, fragment", [
    ({"version": 99}, "written by a newer mtl (format version 99; this mtl reads up to 3)"),
    ({"version": None}, "'version' must be an integer >= 1 (got None)"),
    ({"kind": "mmoe"}, "'kind' must be one of transformers, feature-map, task-attention (got 'mmoe')"),
    ({"eval_batch_size": -1}, "'eval_batch_size' must be an integer >= 1 (got -1)"),  # before: no output, exit 0
    ({"eval_batch_size": 0}, "'eval_batch_size' must be an integer >= 1 (got 0)"),
    ({"max_length": "big"}, "'max_length' must be an integer >= 1 (got 'big')"),
    ({"labels": 5}, "'labels' must be a list of label names"),
    ({"text_columns": ["a", "b", "c"]}, "'text_columns' must be a list of one or two column names"),
    ({"problem_type": "nosuch"},
     "'problem_type' must be regression, single_label_classification or multi_label_classification"),
    ({"task": 7}, "'task' must be a task name (got 7)"),
])
@pytest.mark.slow
def test_a_damaged_export_manifest_is_a_one_line_error(exports, tmp_path, change, fragment):
    copy = tmp_path / "export"
    shutil.copytree(exports["mamt"][0], copy)
    manifest = json.loads((copy / "mtl_export.json").read_text())
    manifest.update(change)
    (copy / "mtl_export.json").write_text(json.dumps(manifest))
    assert_one_line_error(invoke("predict", copy, input="a\tb\n"), f"{copy / 'mtl_export.json'}: {fragment}")


@pytest.mark.parametrize("file, damage, fragment", [
    ("model.safetensors", lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
     "not a readable safetensors file"),
    ("model.safetensors", lambda p: p.write_bytes(b"garbage" * 10), "not a readable safetensors file"),
    ("tokenizer.json", lambda p: p.write_text("{bad"), "invalid JSON"),
])
@pytest.mark.slow
def test_a_damaged_export_file_is_named(exports, tmp_path, file, damage, fragment):
    copy = tmp_path / "export"
    shutil.copytree(exports["mamt"][0], copy)
    damage(copy / file)
    assert_one_line_error(invoke("predict", copy, input="a\tb\n"), str(copy / file), fragment)
    assert_one_line_error(invoke("eval", copy), str(copy / file), fragment)


@pytest.mark.slow
def test_eval_with_a_data_dir_that_does_not_exist(runs, tmp_path):
    """A demo-suite task reads its packaged data without a folder; a --data-dir given must exist all the same."""
    assert_one_line_error(invoke("eval", runs["mamt"][0], "--data-dir", tmp_path / "nowhere"),
                          f"--data-dir {tmp_path / 'nowhere'}: no such folder")


@pytest.mark.slow
def test_eval_batch_size_below_one_in_a_runs_config_is_named(runs, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(runs["mamt"][0], copy)
    record = json.loads((copy / "config.json").read_text())
    record["eval_batch_size"] = 0
    (copy / "config.json").write_text(json.dumps(record))
    assert_one_line_error(invoke("eval", copy), f"{copy / 'config.json'}: --eval-batch-size must be >= 1 (got 0)")


@pytest.mark.slow
def test_a_run_never_overwrites_an_export(exports, tmp_path):
    """An export has a config.json too (transformers'): `mtl run -o EXPORT --overwrite` replaced it before."""
    copy = tmp_path / "export"
    shutil.copytree(exports["mamt"][0], copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    from conftest import TINY_RUN

    assert_one_line_error(invoke("run", *TINY_RUN, "-o", copy, "--overwrite"),
                          f"--output {copy} holds an export; --overwrite replaces only a folder `mtl run` wrote")
    assert_one_line_error(invoke("run", "--resume", copy), f"--resume {copy}: not a run folder (it holds an export)")
    assert_one_line_error(invoke("affinity", "--resume", copy), "not a run folder (it holds an export)")
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before
