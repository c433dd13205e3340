"""Task embeddings (TEA-BERT / EmBERT, Maziarka & Danel, IJCNN 2021): the backbone option ``task_embedding``."""

from __future__ import annotations

import json

import pytest
import torch
from test_trainer import DEMO
from typer.testing import CliRunner

import mtl
from mtl.cli import app
from mtl.errors import MtlError
from mtl.model.backbone import HFBackbone
from mtl.model.multitask import MultiTaskModel
from mtl.runs.config import RunConfig
from mtl.train.trainer import Trainer

OUTPUTS = {"t0": 2, "t1": 1, "t2": 3}  # three tasks
SMALL = dict(hidden_size=32, layers=3, heads=2, intermediate_size=64)


def tiny_model(mode: str, seed: int = 0, **options) -> MultiTaskModel:
    torch.manual_seed(seed)
    backbone = mtl.create("backbone", "tiny", **{**SMALL, **options}, task_embedding=mode)
    return MultiTaskModel(backbone, OUTPUTS).eval()


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def texts_batch(backbone, texts=("the cat sat on the mat", "a much longer second sentence for padding", "ok")):
    return dict(backbone.tokenizer(list(texts), padding=True, return_tensors="pt"))


def randomise(model) -> None:
    with torch.no_grad():
        model.backbone.task_embedding.vectors.normal_(std=0.5)


def test_parameter_counts():
    base = count(tiny_model("none"))
    tasks, hidden, layers = len(OUTPUTS), SMALL["hidden_size"], SMALL["layers"]
    assert count(tiny_model("input")) - base == tasks * hidden
    assert count(tiny_model("attention")) - base == layers * 3 * tasks * hidden
    model = tiny_model("attention")
    assert model.backbone.task_embedding.vectors.shape == (layers, 3, tasks, hidden)
    assert model.backbone.uses_task_ids and not tiny_model("none").backbone.uses_task_ids


@pytest.mark.parametrize("mode", ["input", "attention"])
def test_zero_vectors_give_exactly_the_plain_backbone(mode):
    plain, embedded = tiny_model("none"), tiny_model(mode)
    batch = texts_batch(plain.backbone)
    with torch.no_grad():
        pooled, hidden = plain.encode("t0", batch)
        for task in OUTPUTS:
            pooled_t, hidden_t = embedded.encode(task, batch)
            assert torch.equal(pooled, pooled_t)
            assert all(torch.equal(a, b) for a, b in zip(hidden, hidden_t))


@pytest.mark.parametrize("mode", ["input", "attention"])
def test_the_output_changes_only_through_the_task_id(mode):
    model = tiny_model(mode)
    randomise(model)
    batch = texts_batch(model.backbone)
    with torch.no_grad():
        out = {task: model.encode(task, batch)[0] for task in OUTPUTS}
        assert torch.equal(out["t0"], model.encode("t0", batch)[0])  # same task id, same output
        assert (out["t0"] - out["t1"]).abs().max() > 1e-3 and (out["t1"] - out["t2"]).abs().max() > 1e-3
        # the vector of another task plays no part
        vectors = model.backbone.task_embedding.vectors
        if mode == "input":
            vectors[2].normal_()
        else:
            vectors[:, :, 2].normal_()
        assert torch.equal(out["t0"], model.encode("t0", batch)[0])
        # one batch mixing tasks: each row gets its own task's vector
        mixed = {**batch, "task_ids": torch.tensor([1, 0, 1])}
        pooled = model.backbone(mixed)[0]
        assert torch.allclose(pooled[0], out["t1"][0], atol=1e-6)
        assert torch.allclose(pooled[1], out["t0"][1], atol=1e-6)
    # with the task vectors inactive again, the encoder on its own is the plain encoder
    assert model.backbone.task_embedding.current is None


@pytest.mark.parametrize("mode", ["input", "attention"])
def test_gradients_reach_the_vectors_of_the_trained_task(mode):
    model = tiny_model(mode).train()
    batch = texts_batch(model.backbone)
    logits, _, _ = model("t1", batch)
    logits.pow(2).sum().backward()
    grad = model.backbone.task_embedding.vectors.grad
    grad = grad if mode == "input" else grad.transpose(0, 2)  # [tasks, ...]
    assert grad[1].abs().sum() > 0
    assert grad[0].abs().sum() == 0 and grad[2].abs().sum() == 0  # other tasks' vectors are untouched
    if mode == "attention":
        per_slot = grad[1].abs().sum(dim=-1)  # [3 (q, k, v), layers]
        assert (per_slot > 0).all()  # every layer's query, key and value vector


def test_a_failing_forward_leaves_no_task_ids_behind():
    model = tiny_model("attention")
    randomise(model)
    batch = texts_batch(model.backbone)
    bad = {**batch, "input_ids": batch["input_ids"] + 10**6, "task_ids": torch.tensor([1, 1, 1])}  # out of vocab
    with pytest.raises(IndexError):
        model.backbone(bad)
    assert model.backbone.task_embedding.current is None
    plain = tiny_model("none")
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():  # the hooks add nothing outside a task forward
        assert torch.equal(model.backbone.encoder(**inputs).last_hidden_state,
                           plain.backbone.encoder(**inputs).last_hidden_state)


def test_task_ids_are_required_and_checked():
    model = tiny_model("input")
    batch = texts_batch(model.backbone)
    with pytest.raises(ValueError, match="needs batch\\['task_ids'\\]"):
        model.backbone(batch)
    with pytest.raises(ValueError, match=r"task_ids must be in \[0, 3\)"):
        model.backbone({**batch, "task_ids": torch.tensor([0, 3, 1])})
    torch.manual_seed(0)
    unconfigured = mtl.create("backbone", "tiny", **SMALL, task_embedding="input")
    with pytest.raises(RuntimeError, match="configure_tasks"):
        unconfigured({**batch, "task_ids": torch.zeros(3, dtype=torch.long)})


def test_vectors_are_saved_and_loaded_with_the_model():
    model = tiny_model("attention")
    randomise(model)
    state = model.state_dict()
    assert "backbone.task_embedding.vectors" in state
    fresh = tiny_model("attention", seed=1)
    fresh.load_state_dict(state)
    batch = texts_batch(model.backbone)
    with torch.no_grad():
        assert torch.equal(fresh.encode("t2", batch)[0], model.encode("t2", batch)[0])


@pytest.mark.parametrize("mode", ["input", "attention"])
def test_trains_through_the_trainer(tmp_path, mode):
    config = RunConfig(**DEMO, backbone="tiny", options={"tiny": {**SMALL, "task_embedding": mode}}, batch_size=8,
                       max_length=32, lr=1e-2, warmup=0.0, log_every=1, max_steps=4, sampler="all",
                       output=str(tmp_path / "run"), seed=0)
    trainer = Trainer(config)
    result = trainer.train()
    vectors = trainer.model.backbone.task_embedding.vectors.detach()
    tasks = list(trainer.model.task_ids)
    assert tasks == [DEMO["target"], *DEMO["aux"]]
    per_task = vectors if mode == "input" else vectors.transpose(0, 2)
    assert all(per_task[i].abs().sum() > 0 for i in range(len(tasks)))  # every task's vector has moved from 0
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "run" / "checkpoint" / "best.safetensors")
    assert saved["backbone.task_embedding.vectors"].shape == vectors.shape
    assert json.loads((tmp_path / "run" / "config.json").read_text())["options"]["tiny"]["task_embedding"] == mode
    assert set(result["eval"]) == set(tasks)


def test_an_invalid_value_names_the_option(tmp_path):
    message = "backbone 'tiny': option 'task_embedding': expected one of none, input, attention"
    with pytest.raises(MtlError, match=message):
        mtl.create("backbone", "tiny", task_embedding="bogus")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--backbone", "tiny", "--max-steps", "2", "-q", "-o", str(out),
                                      "--set", "tiny.task_embedding=both"])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code != 0 and len(lines) == 1, result.stderr
    assert "option 'task_embedding'" in lines[0] and "none, input, attention" in lines[0]
    assert not out.exists()
    with pytest.raises(ValueError, match="task_embedding must be one of none, input, attention"):
        HFBackbone(mtl.create("backbone", "tiny", **SMALL).encoder, None, task_embedding="Input")


@pytest.fixture(scope="module")
def distilbert_folder(tmp_path_factory):
    """A small DistilBERT checkpoint (not BERT-style: no encoder.layer[i].attention.self) in a local folder."""
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    from mtl.plugins.backbones.minilm import model_path

    folder = tmp_path_factory.mktemp("distilbert")
    tokenizer = AutoTokenizer.from_pretrained(model_path())
    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=tokenizer.vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64)
    DistilBertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_hf_backbone_checks_the_architecture(distilbert_folder):
    name = f"hf:{distilbert_folder}"
    with pytest.raises(MtlError, match=r"backbone 'hf:.*': task_embedding='attention' needs a BERT-style encoder.*"
                                       r"DistilBertModel"):
        mtl.create("backbone", name, task_embedding="attention")
    # 'input' only needs a word-embedding table, which DistilBERT has; zero vectors change nothing
    plain = MultiTaskModel(mtl.create("backbone", name), OUTPUTS).eval()
    embedded = MultiTaskModel(mtl.create("backbone", name, task_embedding="input"), OUTPUTS).eval()
    assert count(embedded) - count(plain) == len(OUTPUTS) * 32
    batch = texts_batch(plain.backbone)
    with torch.no_grad():
        assert torch.equal(plain.encode("t0", batch)[0], embedded.encode("t1", batch)[0])
