"""Task embeddings (TEA-BERT / EmBERT, Maziarka & Danel, IJCNN 2021): the backbone option ``task_embedding``."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN, invoke_cli
from helpers.runs import DEMO
from typer.testing import CliRunner

import mtl
from mtl.cli import app
from mtl.errors import MtlError
from mtl.model.backbone import HFBackbone
from mtl.model.multitask import MultiTaskModel
from mtl.runs.config import RunConfig
from mtl.training.trainer import Trainer

OUTPUTS = {"t0": 2, "t1": 1, "t2": 3}  # three tasks
SMALL = dict(hidden_size=32, layers=3, heads=2, intermediate_size=64)
ATTENTION_SIDE = ["attention", "projected", "activation"]
MODES = ["input", *ATTENTION_SIDE]


def tiny_model(mode: str, seed: int = 0, **options) -> MultiTaskModel:
    torch.manual_seed(seed)
    backbone = mtl.create("backbone", "tiny", **{**SMALL, **options}, task_embedding=mode)
    return MultiTaskModel(backbone, OUTPUTS).eval()


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def texts_batch(backbone, texts=("the cat sat on the mat", "a much longer second sentence for padding", "ok")):
    return dict(backbone.tokenizer(list(texts), padding=True, return_tensors="pt"))


def randomise(model) -> None:
    """Give every task parameter a value far from its start, as training would."""
    embedding = model.backbone.task_embedding
    with torch.no_grad():
        embedding.vectors.normal_(std=0.5)
        if embedding.projection is not None:
            embedding.projection.normal_(std=0.2)
        if embedding.post is not None:
            embedding.post.add_(torch.randn_like(embedding.post), alpha=0.2)


def task_vector(embedding, task: int) -> torch.Tensor:
    """The parameters that belong to one task alone (a view): e_t, or q_t, k_t, v_t of every layer."""
    return embedding.vectors[:, :, task] if embedding.mode == "attention" else embedding.vectors[task]


def added_parameters(mode: str, tasks: int, layers: int, hidden: int) -> int:
    """The README's count of the parameters each mode adds (T tasks, L layers, width D)."""
    return {"input": tasks * hidden, "attention": 3 * layers * tasks * hidden,
            "projected": tasks * hidden + 3 * layers * hidden ** 2,
            "activation": tasks * hidden + 6 * layers * hidden ** 2}[mode]


def test_parameter_counts():
    base = count(tiny_model("none"))
    tasks, hidden, layers = len(OUTPUTS), SMALL["hidden_size"], SMALL["layers"]
    assert count(tiny_model("input")) - base == tasks * hidden
    assert count(tiny_model("attention")) - base == layers * 3 * tasks * hidden
    assert count(tiny_model("projected")) - base == tasks * hidden + 3 * layers * hidden * hidden
    assert count(tiny_model("activation")) - base == tasks * hidden + 6 * layers * hidden * hidden
    model = tiny_model("attention")
    assert model.backbone.task_embedding.vectors.shape == (layers, 3, tasks, hidden)
    assert model.backbone.uses_task_ids and not tiny_model("none").backbone.uses_task_ids
    embedding = tiny_model("activation").backbone.task_embedding
    assert embedding.vectors.shape == (tasks, hidden)  # one e_t per task, shared by the layers
    assert embedding.projection.shape == embedding.post.shape == (layers, 3, hidden, hidden)
    assert tiny_model("projected").backbone.task_embedding.post is None


def test_the_readme_states_the_counts_for_minilm():
    """README: the parameters each mode adds to minilm (L=6, D=384) with 2 tasks, counted on the real model."""
    from mtl.model.task_embedding import TaskEmbedding

    encoder = mtl.create("backbone", "minilm").encoder
    layers, hidden = encoder.config.num_hidden_layers, encoder.config.hidden_size
    assert (layers, hidden) == (6, 384)
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for mode in MODES:
        embedding = TaskEmbedding(encoder, mode, ["target", "aux"])
        number = sum(p.numel() for p in embedding.parameters())
        assert number == added_parameters(mode, 2, layers, hidden)
        assert f"{number:,}" in readme, (mode, number)
        for handle in getattr(embedding, "_handles", []):
            handle.remove()


@pytest.mark.parametrize("mode", ["input", "attention", "projected"])
def test_zero_vectors_give_exactly_the_plain_backbone(mode):
    plain, embedded = tiny_model("none"), tiny_model(mode)
    if mode == "projected":  # W is random (not zero), e_t zero: W·e_t = 0
        assert embedded.backbone.task_embedding.projection.abs().min() > 0
        assert not embedded.backbone.task_embedding.vectors.any()
    batch = texts_batch(plain.backbone)
    with torch.no_grad():
        pooled, hidden = plain.encode("t0", batch)
        for task in OUTPUTS:
            pooled_t, hidden_t = embedded.encode(task, batch)
            assert torch.equal(pooled, pooled_t)
            assert all(torch.equal(a, b) for a, b in zip(hidden, hidden_t, strict=True))


@pytest.mark.parametrize("mode", MODES)
def test_the_output_changes_only_through_the_task_id(mode):
    model = tiny_model(mode)
    randomise(model)
    embedding = model.backbone.task_embedding
    batch = texts_batch(model.backbone)
    with torch.no_grad():
        out = {task: model.encode(task, batch)[0] for task in OUTPUTS}
        assert torch.equal(out["t0"], model.encode("t0", batch)[0])  # same task id, same output
        assert (out["t0"] - out["t1"]).abs().max() > 1e-3 and (out["t1"] - out["t2"]).abs().max() > 1e-3
        # the vector of another task plays no part
        task_vector(embedding, 2).normal_()
        assert torch.equal(out["t0"], model.encode("t0", batch)[0])
        # one batch mixing tasks: each row gets its own task's vector
        mixed = {**batch, "task_ids": torch.tensor([1, 0, 1])}
        pooled = model.backbone(mixed)[0]
        assert torch.allclose(pooled[0], out["t1"][0], atol=1e-6)
        assert torch.allclose(pooled[1], out["t0"][1], atol=1e-6)
        assert torch.allclose(pooled[2], out["t1"][2], atol=1e-6)
        # two tasks with equal embeddings are one task to the encoder
        task_vector(embedding, 2).copy_(task_vector(embedding, 0))
        assert torch.equal(model.encode("t2", batch)[0], out["t0"])
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


@pytest.mark.parametrize("mode", ["projected", "activation"])
def test_e_t_learns_from_the_first_step_and_w_from_the_second(mode):
    """projected/activation start with e_t = 0 and W random: ∂L/∂e_t = Wᵀ·∂L/∂Q̂ ≠ 0 at once, ∂L/∂W = ∂L/∂Q̂·e_tᵀ is 0
    until e_t has moved (the docstring's claim), then every layer's and slot's W learns."""
    model = tiny_model(mode).train()
    embedding = model.backbone.task_embedding
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = texts_batch(model.backbone)
    for step in (1, 2):
        optimizer.zero_grad()
        model("t1", batch)[0].pow(2).sum().backward()
        grad = embedding.vectors.grad
        assert grad[1].abs().sum() > 0 and grad[0].abs().sum() == 0 and grad[2].abs().sum() == 0
        per_matrix = embedding.projection.grad.abs().sum(dim=(-1, -2))  # [layers, 3]
        if step == 1:
            assert (per_matrix == 0).all()
        else:
            assert (per_matrix > 0).all()
        if mode == "activation":
            assert (embedding.post.grad.abs().sum(dim=(-1, -2)) > 0).all()
        optimizer.step()


def erf_gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


HAND_ACTIVATIONS = {"gelu": erf_gelu, "relu": lambda x: torch.where(x > 0, x, torch.zeros_like(x)), "tanh": torch.tanh}


def hand_layer(layer, x, mask, shifts, post=None, activation=None):
    """One BERT layer (Devlin et al. 2019) written out from its weights, with TEA-BERT's Q̂ = Q + s
    (``post``: Q̂ = W'·act(Q + s)); ``shifts`` [3, B, D] is each row's s for query, key, value."""
    attention = layer.attention.self
    rows, length, width = x.shape
    heads = attention.num_attention_heads
    size = width // heads
    projected = []
    for j, linear in enumerate((attention.query, attention.key, attention.value)):
        y = x @ linear.weight.T + linear.bias + shifts[j][:, None, :]
        if post is not None:
            y = HAND_ACTIVATIONS[activation](y) @ post[j].T
        projected.append(y.reshape(rows, length, heads, size).transpose(1, 2))
    q, k, v = projected
    scores = q @ k.transpose(-1, -2) / math.sqrt(size) + (1.0 - mask[:, None, None, :].float()) * -1e9
    context = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(rows, length, width)

    def dense_norm(block, h, residual):
        norm = block.LayerNorm
        z = h @ block.dense.weight.T + block.dense.bias + residual
        mean, var = z.mean(-1, keepdim=True), z.var(-1, unbiased=False, keepdim=True)
        return (z - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias

    attended = dense_norm(layer.attention.output, context, x)
    inner = erf_gelu(attended @ layer.intermediate.dense.weight.T + layer.intermediate.dense.bias)
    return dense_norm(layer.output, inner, attended)


@pytest.mark.parametrize("mode,activation", [("projected", "tanh"), ("activation", "gelu"), ("activation", "relu"),
                                             ("activation", "tanh")])
@pytest.mark.parametrize("trained", [False, True])
def test_every_layer_computes_the_papers_formula(mode, activation, trained):
    """Q̂ = Q + W^l·e_t (projected), Q̂ = W'^l·act(Q + W^l·e_t) (activation), K and V alike, each row its own task:
    every layer's output equals the layer written out by hand from the hidden state before it."""
    model = tiny_model(mode, task_activation=activation)
    if trained:
        randomise(model)
    embedding = model.backbone.task_embedding
    batch = texts_batch(model.backbone)
    task_ids = torch.tensor([2, 0, 1])
    with torch.no_grad():
        hidden = model.backbone({**batch, "task_ids": task_ids})[1]
        e = embedding.vectors[task_ids]  # [B, D]
        for index, layer in enumerate(model.backbone.encoder.encoder.layer):
            shifts = torch.stack([e @ embedding.projection[index, j].T for j in range(3)])  # W·e_t of each row
            post = embedding.post[index] if mode == "activation" else None
            expected = hand_layer(layer, hidden[index], batch["attention_mask"], shifts, post, activation)
            gap = (hidden[index + 1] - expected).abs().max()
            assert torch.allclose(hidden[index + 1], expected, atol=1e-5), (index, gap)
    if mode == "activation" and not trained:  # act(Q) is not Q: it does not start exactly from the encoder
        with torch.no_grad():
            assert not torch.equal(hidden[-1], tiny_model("none").encode("t0", batch)[1][-1])


@pytest.mark.slow
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
    from mtl.runs.folder import RunFolder

    saved = RunFolder(tmp_path / "run").best()
    assert saved["backbone.task_embedding.vectors"].shape == vectors.shape
    assert json.loads((tmp_path / "run" / "config.json").read_text())["options"]["tiny"]["task_embedding"] == mode
    assert set(result["eval"]) == set(tasks)


def test_an_invalid_value_names_the_option(tmp_path):
    choices = "none, input, attention, projected, activation"
    message = f"backbone 'tiny': option 'task_embedding': expected one of {choices}"
    with pytest.raises(MtlError, match=message):
        mtl.create("backbone", "tiny", task_embedding="bogus")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--backbone", "tiny", "--max-steps", "2", "-q", "-o", str(out),
                                      "--set", "tiny.task_embedding=both"])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code != 0 and len(lines) == 1, result.stderr
    assert "option 'task_embedding'" in lines[0] and choices in lines[0]
    assert not out.exists()
    with pytest.raises(ValueError, match=f"task_embedding must be one of {choices}"):
        HFBackbone(mtl.create("backbone", "tiny", **SMALL).encoder, None, task_embedding="Input")
    with pytest.raises(MtlError, match="option 'task_activation': expected one of gelu, relu, tanh"):
        mtl.create("backbone", "tiny", task_embedding="activation", task_activation="sigmoid")
    with pytest.raises(ValueError, match="task_activation must be one of gelu, relu, tanh"):
        HFBackbone(mtl.create("backbone", "tiny", **SMALL).encoder, None, task_embedding="activation",
                   task_activation="swish")
    assert tiny_model("activation").backbone.task_embedding.activation == "tanh"  # the default
    assert tiny_model("activation", task_activation="relu").backbone.task_embedding.activation == "relu"


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
    for mode in ATTENTION_SIDE:
        with pytest.raises(MtlError, match=rf"backbone 'hf:.*': task_embedding='{mode}' needs a BERT-style encoder.*"
                                           r"DistilBertModel"):
            mtl.create("backbone", name, task_embedding=mode)
    encoder = mtl.create("backbone", name).encoder
    for mode in ("projected", "activation"):
        with pytest.raises(ValueError, match=rf"^task_embedding='{mode}' needs a BERT-style encoder "
                                             r"\(encoder.layer\[i\].attention.self.query/key/value\); DistilBertModel "
                                             r"has another architecture$"):
            HFBackbone(encoder, None, task_embedding=mode)
    # 'input' only needs a word-embedding table, which DistilBERT has; zero vectors change nothing
    plain = MultiTaskModel(mtl.create("backbone", name), OUTPUTS).eval()
    embedded = MultiTaskModel(mtl.create("backbone", name, task_embedding="input"), OUTPUTS).eval()
    assert count(embedded) - count(plain) == len(OUTPUTS) * 32
    embedded.backbone.pooler.load_state_dict(plain.backbone.pooler.state_dict())  # DistilBERT's, randomly initialised
    batch = texts_batch(plain.backbone)
    with torch.no_grad():
        assert torch.equal(plain.encode("t0", batch)[0], embedded.encode("t1", batch)[0])


# ------------------------------------------------------------------------------------------------ mtl run, export


PAIRS = [("The lawyer followed the man at the station.", "The attorney trailed the man at the train station."),
         ("A cat slept on the warm red sofa all afternoon.", "The dog barked."),
         ("He sold the old car.", "She bought a new house near the river last spring.")]
NEW_RUNS = {"projected": ["--set", "tiny.task_embedding=projected"],
            "activation": ["--set", "tiny.task_embedding=activation", "--set", "tiny.task_activation=gelu"]}


@pytest.fixture(scope="module")
def new_runs(tmp_path_factory):
    """`mtl run` on the demo suite with the tiny backbone for each new mode, then `mtl export`:
    mode -> (run folder, export folder, export stdout)."""
    root = tmp_path_factory.mktemp("tea")
    done = {}
    for mode, options in NEW_RUNS.items():
        run, out = root / f"run-{mode}", root / f"export-{mode}"
        result = invoke_cli("run", *TINY_RUN, "--sampler", "all", "--limit", "48", "--eval-limit", "40",
                            "--lr", "1e-2", "--warmup", "0", "--set", "tiny.hidden_size=32", *options, "-o", str(run))
        assert result.exit_code == 0, result.output
        exported = invoke_cli("export", str(run), "--output", str(out))
        assert exported.exit_code == 0, exported.output
        done[mode] = (run, out, exported.stdout)
    return done


def pair_batch(tokenizer):
    first, second = zip(*PAIRS, strict=True)
    return dict(tokenizer(list(first), list(second), padding=True, truncation=True, max_length=32,
                          return_tensors="pt"))


def run_model(run):
    from mtl.runs.restore import load_run

    config, model, _ = load_run(run)
    return config, model.eval()


@pytest.mark.parametrize("mode", ["projected", "activation"])
@pytest.mark.slow
def test_mtl_run_trains_the_new_modes(new_runs, mode):
    from mtl.runs.folder import RunFolder

    run = new_runs[mode][0]
    options = json.loads((run / "config.json").read_text())["options"]["tiny"]
    assert options["task_embedding"] == mode
    saved = RunFolder(run).best()
    vectors, projection = saved["backbone.task_embedding.vectors"], saved["backbone.task_embedding.projection"]
    assert vectors.shape == (3, 32) and projection.shape == (2, 3, 32, 32)  # tiny: 2 layers
    assert all(vectors[i].abs().sum() > 0 for i in range(3))  # every task's e_t has left 0
    if mode == "activation":
        assert options["task_activation"] == "gelu"
        post = saved["backbone.task_embedding.post"]
        assert not torch.equal(post, torch.eye(32).repeat(2, 3, 1, 1))  # W' has left the identity
    else:
        assert "backbone.task_embedding.post" not in saved
    evals = json.loads((run / "eval.json").read_text())
    assert set(evals) == {DEMO["target"], *DEMO["aux"]}


@pytest.mark.slow
def test_projected_exports_to_plain_transformers_with_the_trained_logits(new_runs):
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    run, out, stdout = new_runs["projected"]
    manifest = json.loads((out / "mtl_export.json").read_text())
    assert manifest["kind"] == "transformers" and manifest["loadable_with_transformers"] is True
    assert manifest["task_embedding"] == "projected" and "W·e_t" in manifest["folded"]
    assert "Task embedding 'projected' folded" in stdout
    _, model = run_model(run)
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert type(plain).__name__ == "BertForSequenceClassification"
    assert not [k for k in plain.state_dict() if "task_embedding" in k]
    batch = pair_batch(model.backbone.tokenizer)
    with torch.no_grad():
        expected = model(DEMO["target"], batch)[0]
        got = plain(**batch).logits
    assert torch.allclose(got, expected, atol=1e-5), (got, expected)
    # the fold is what makes them equal: every query/key/value bias carries the target's W^l·e_t, by hand
    embedding = model.backbone.task_embedding
    e = embedding.vectors.detach()[model.task_ids[DEMO["target"]]]
    saved = load_file(out / "model.safetensors")
    for index, layer in enumerate(model.backbone.encoder.encoder.layer):
        for j, slot in enumerate(("query", "key", "value")):
            shift = embedding.projection.detach()[index, j] @ e
            assert shift.abs().max() > 1e-5
            bias = getattr(layer.attention.self, slot).bias.detach()
            folded = saved[f"bert.encoder.layer.{index}.attention.self.{slot}.bias"]
            assert torch.allclose(folded, bias + shift, atol=1e-6)


@pytest.mark.slow
def test_activation_exports_and_predicts_as_the_trained_model(new_runs, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    from mtl.runs.predict import load_predictor

    run, out, stdout = new_runs["activation"]
    manifest = json.loads((out / "mtl_export.json").read_text())
    assert manifest["kind"] == "task-attention" and manifest["loadable_with_transformers"] is False
    assert manifest["task_attention"] == {"activation": "gelu", "file": "mtl_task_attention.safetensors",
                                          "encoder": "encoder", "head": "mtl_head.safetensors"}
    assert manifest["folded"] is None and "cannot compute it" in manifest["note"]
    assert "Not a plain transformers classifier" in stdout and "'activation'" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "encoder", "mtl_export.json", "mtl_head.safetensors",
                                                     "mtl_task_attention.safetensors", "tokenizer.json",
                                                     "tokenizer_config.json"]
    with pytest.raises((OSError, ValueError)):  # no config.json at the top: not mistaken for a plain classifier
        AutoModelForSequenceClassification.from_pretrained(out)
    # what is kept: the target's W^l·e_t per layer and slot (by hand from the checkpoint) and W'
    _, model = run_model(run)
    embedding = model.backbone.task_embedding
    kept = load_file(out / "mtl_task_attention.safetensors")
    e = embedding.vectors.detach()[model.task_ids[DEMO["target"]]]
    for index in range(2):
        for j in range(3):
            assert torch.allclose(kept["shift"][index, j], embedding.projection.detach()[index, j] @ e, atol=1e-6)
    assert torch.equal(kept["post"], embedding.post.detach())
    # predictions: the export's equal the run's
    texts = [tuple(pair) for pair in PAIRS]
    from_run, from_export = load_predictor(run), load_predictor(out)
    assert from_export.kind == "export"
    expected, got = from_run.logits(from_run.encode(texts)), from_export.logits(from_export.encode(texts))
    assert torch.allclose(got, expected, atol=1e-5), (got, expected)
    with torch.no_grad():  # and the trained model's own logits
        assert torch.allclose(got, model(DEMO["target"], pair_batch(model.backbone.tokenizer))[0], atol=1e-5)
    lines = "".join(json.dumps({"sentence1": a, "sentence2": b}) + "\n" for a, b in PAIRS)
    printed = [CliRunner().invoke(app, ["predict", str(folder)], input=lines) for folder in (run, out)]
    assert all(result.exit_code == 0 for result in printed), [r.output for r in printed]
    rows = [[json.loads(line) for line in result.stdout.splitlines()] for result in printed]
    assert [r["label"] for r in rows[0]] == [r["label"] for r in rows[1]]
    assert torch.allclose(torch.tensor([r["logits"] for r in rows[1]]), torch.tensor([r["logits"] for r in rows[0]]),
                          atol=1e-5)
    # without the kept tensors the export cannot predict, and says which file is missing
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "mtl_task_attention.safetensors").unlink()
    with pytest.raises(MtlError, match=r"mtl_task_attention.safetensors: missing \(the target's activation task "
                                       r"embedding\)"):
        load_predictor(broken)
