"""Every common encoder family exports: the pooled feature of BERT, RoBERTa, DeBERTa-v2, ELECTRA and DistilBERT is
what the family's own transformers heads apply their last Linear to, and each task kind exports to the family's
transformers class with the run's logits. All on small randomly initialised local models of each family."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import invoke_cli
from torch import nn
from transformers import (
    AutoModel,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    BertConfig,
    DebertaV2Config,
    DistilBertConfig,
    ElectraConfig,
    RobertaConfig,
)
from typer.testing import CliRunner

from mtl.cli import app
from mtl.errors import MtlError
from mtl.model.backbone import from_pretrained
from mtl.runs.families import build_exported

FAMILIES = ("bert", "roberta", "deberta-v2", "electra", "distilbert")
KINDS = {"sequence-classification": AutoModelForSequenceClassification,
         "multiple-choice": AutoModelForMultipleChoice,
         "token-classification": AutoModelForTokenClassification,
         "question-answering": AutoModelForQuestionAnswering}
SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
             max_position_embeddings=130)
SENTENCES = ["A short sentence.", "Another, somewhat longer example sentence, to make the batch need padding.",
             "The lawyer followed the man at the station."]


def _config(name: str, tokenizer):
    vocab = len(tokenizer)
    if name == "bert":
        return BertConfig(vocab_size=vocab, **SIZES)
    if name == "roberta":
        return RobertaConfig(vocab_size=vocab, pad_token_id=tokenizer.pad_token_id, type_vocab_size=2, **SIZES)
    if name == "deberta-v2":  # DeBERTa-v3-like: relative positions, shared keys, no absolute positions
        return DebertaV2Config(vocab_size=vocab, pooler_hidden_size=32, pooler_hidden_act="gelu",
                               relative_attention=True, pos_att_type=["p2c", "c2p"], position_biased_input=False,
                               position_buckets=16, norm_rel_ebd="layer_norm", share_att_key=True, **SIZES)
    if name == "electra":  # embeddings smaller than the hidden size, as ELECTRA's small models
        return ElectraConfig(vocab_size=vocab, embedding_size=16, **SIZES)
    return DistilBertConfig(vocab_size=vocab, dim=32, n_layers=2, n_heads=2, hidden_dim=37,
                            max_position_embeddings=130)


@pytest.fixture(scope="session")
def folders(tmp_path_factory):
    """A small randomly initialised local checkpoint of each family with the bundled MiniLM tokenizer."""
    from mtl.plugins.backbones.minilm import model_path

    root = tmp_path_factory.mktemp("families")
    made = {}
    for i, name in enumerate(FAMILIES):
        tokenizer = AutoTokenizer.from_pretrained(model_path())
        if name == "distilbert":  # as DistilBERT's own tokenizer: no token types
            tokenizer.model_input_names = ["input_ids", "attention_mask"]
        torch.manual_seed(i)
        folder = root / name
        AutoModel.from_config(_config(name, tokenizer)).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        made[name] = folder
    return made


def _backbone(folder):
    torch.manual_seed(7)
    return from_pretrained(str(folder), f"hf:{folder}").eval()


def _batch(tokenizer, first, second=None):
    batch = tokenizer(first, second, padding=True, truncation=True, max_length=40, return_tensors="pt")
    return dict(batch)


def _linear(hidden: int, outputs: int, seed: int) -> nn.Linear:
    torch.manual_seed(seed)
    linear = nn.Linear(hidden, outputs)
    nn.init.normal_(linear.weight, std=0.5)
    nn.init.normal_(linear.bias, std=0.5)
    return linear


def _pooler_state(backbone):
    return None if backbone.pooler is None else backbone.pooler.state_dict()


# ------------------------------------------------------------------------------------------------ pooled feature


def _family_pooled(name: str, model, batch):
    """What the family's own AutoModelForSequenceClassification applies its last Linear to, restated from its
    modules (eval mode: no dropout)."""
    inputs = {k: v for k, v in batch.items() if k != "token_type_ids" or name != "distilbert"}
    h0 = model.base_model(**inputs).last_hidden_state[:, 0]
    if name == "bert":
        return torch.tanh(model.bert.pooler.dense(h0))
    if name == "roberta":
        return torch.tanh(model.classifier.dense(h0))
    if name == "electra":
        return F.gelu(model.classifier.dense(h0))
    if name == "deberta-v2":
        return F.gelu(model.pooler.dense(h0))
    return F.relu(model.pre_classifier(h0))


def _family_dense(name: str, model) -> nn.Linear:
    return {"bert": lambda: model.bert.pooler.dense, "roberta": lambda: model.classifier.dense,
            "electra": lambda: model.classifier.dense, "deberta-v2": lambda: model.pooler.dense,
            "distilbert": lambda: model.pre_classifier}[name]()


@pytest.mark.parametrize("name", FAMILIES)
def test_the_pooled_feature_is_what_the_family_head_applies_its_last_linear_to(folders, name):
    backbone = _backbone(folders[name])
    model = AutoModelForSequenceClassification.from_pretrained(folders[name], num_labels=2).eval()
    dense = _family_dense(name, model)
    source = backbone.pooler.dense if backbone.pooler is not None else backbone.encoder.pooler.dense
    assert (backbone.pooler is None) == (name in ("bert", "roberta"))  # only families without a pooler get one
    with torch.no_grad():
        dense.weight.copy_(source.weight)
        dense.bias.copy_(source.bias)
        batch = _batch(backbone.tokenizer, SENTENCES)
        pooled, hidden = backbone(batch)
        expected = _family_pooled(name, model, batch)
    assert pooled.shape == (3, 32)
    assert torch.allclose(pooled, expected, atol=1e-6)
    assert not torch.allclose(pooled, hidden[-1][:, 0], atol=1e-3)  # not the first token's raw hidden state


def test_bert_backbone_state_keys_are_unchanged(folders):
    backbone = _backbone(folders["bert"])
    assert backbone.pooler is None
    assert set(backbone.state_dict()) == {f"encoder.{k}" for k in backbone.encoder.state_dict()}
    electra = _backbone(folders["electra"])
    assert {k for k in electra.state_dict() if not k.startswith("encoder.")} == {"pooler.dense.weight",
                                                                                  "pooler.dense.bias"}


# ------------------------------------------------------------------------------------------------ build_exported


def _mtl_logits(kind: str, backbone, linear, batch, choices: int):
    """The run's logits restated from the mtl side: pooled or per-token output through the head's Linear."""
    pooled, hidden = backbone(batch)
    if kind == "sequence-classification":
        return linear(pooled)
    if kind == "multiple-choice":
        return linear(pooled).view(-1, choices)
    return linear(hidden[-1])


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("name", FAMILIES)
def test_each_kind_exports_with_the_run_logits(folders, tmp_path, name, kind):
    backbone = _backbone(folders[name])
    tokenizer = backbone.tokenizer
    outputs = {"sequence-classification": 3, "multiple-choice": 1, "token-classification": 5,
               "question-answering": 2}[kind]
    linear = _linear(32, outputs, seed=len(name) + outputs)
    labels = {"sequence-classification": ["a", "b", "c"], "token-classification": list("OBIES")}.get(kind)
    exported = build_exported(kind, backbone.encoder, _pooler_state(backbone), linear, labels=labels)
    exported.save_pretrained(tmp_path / "out")
    loaded = KINDS[kind].from_pretrained(tmp_path / "out").eval()
    assert type(loaded).__name__.lower().startswith(name.replace("-", ""))
    choices = 3
    if kind == "multiple-choice":
        contexts = [s for s in SENTENCES[:2] for _ in range(choices)]
        endings = ["it rained.", "a dog barked at the moon all night.", "no."] * 2
        flat = _batch(tokenizer, contexts, endings)
        batch = {k: v.view(2, choices, -1) for k, v in flat.items()}
    else:
        flat = batch = _batch(tokenizer, SENTENCES[:2], SENTENCES[1:])
    with torch.no_grad():
        expected = _mtl_logits(kind, backbone, linear, flat, choices)
        out = loaded(**batch)
    if kind == "question-answering":
        got = torch.stack([out.start_logits, out.end_logits], dim=-1)
    else:
        got = out.logits
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    if labels is not None:
        assert loaded.config.id2label == dict(enumerate(labels))


@pytest.mark.parametrize("model_type", ["xlm-roberta", "camembert"])
def test_roberta_relatives_map_as_roberta(folders, model_type):
    from transformers import AutoConfig

    from mtl.model.backbone import HFBackbone

    roberta = _backbone(folders["roberta"])
    settings = {k: v for k, v in roberta.encoder.config.to_diff_dict().items() if k != "model_type"}
    config = AutoConfig.for_model(model_type, **settings)
    encoder = AutoModel.from_config(config).eval()
    encoder.load_state_dict(roberta.encoder.state_dict())
    backbone = HFBackbone(encoder, roberta.tokenizer).eval()
    batch = _batch(roberta.tokenizer, SENTENCES)
    for kind, outputs in (("sequence-classification", 2), ("multiple-choice", 1)):
        linear = _linear(32, outputs, seed=3)
        exported = build_exported(kind, encoder, None, linear)
        assert type(exported).__name__.lower().startswith(model_type.replace("-", ""))
        with torch.no_grad():
            expected = _mtl_logits(kind, backbone, linear, batch, 3)
            got = exported(**{k: v.view(1, 3, -1) if kind == "multiple-choice" else v for k, v in batch.items()})
        assert torch.allclose(got.logits, expected, atol=1e-5)


def test_one_logit_and_multi_label_problem_types(folders):
    backbone = _backbone(folders["roberta"])
    scorer = build_exported("sequence-classification", backbone.encoder, None, _linear(32, 1, 0),
                            problem_type="regression")
    assert scorer.config.num_labels == 1 and scorer.config.problem_type == "regression"
    tags = build_exported("sequence-classification", backbone.encoder, None, _linear(32, 4, 0),
                          labels=list("wxyz"), problem_type="multi_label_classification")
    assert tags.config.problem_type == "multi_label_classification" and tags.config.id2label[3] == "z"


def test_what_does_not_map_is_one_line(folders):
    from transformers import MPNetConfig, MPNetModel

    electra = _backbone(folders["electra"])
    with pytest.raises(MtlError, match="unknown export kind 'ranking'"):
        build_exported("ranking", electra.encoder, _pooler_state(electra), _linear(32, 1, 0))
    with pytest.raises(MtlError, match="pooler's weights are missing"):
        build_exported("sequence-classification", electra.encoder, None, _linear(32, 2, 0))
    # MPNet has a pooler, but its classifier is dense -> tanh -> out_proj: not a Linear on pooler_output
    mpnet = MPNetModel(MPNetConfig(vocab_size=100, **{**SIZES, "max_position_embeddings": 64}))
    with pytest.raises(MtlError, match=r"cannot export backbone architecture 'mpnet' .*DeBERTa-v2/v3, ELECTRA, "
                                       r"DistilBERT; `mtl predict RUN` still works \(weights that do not map"):
        build_exported("sequence-classification", mpnet, None, _linear(32, 2, 0))


def test_a_feature_map_export_of_a_family_with_an_added_pooler_is_refused(folders, tmp_path):
    import mtl
    from mtl.model.multitask import MultiTaskModel
    from mtl.runs.export import export_model

    tasks = {"demo-sentiment": mtl.create("task", "demo-sentiment")}
    model = MultiTaskModel(_backbone(folders["electra"]), {"demo-sentiment": 2})
    model.feature_map = nn.Identity()  # any module between backbone and heads
    with pytest.raises(MtlError, match=r"^cannot export the ElectraModel backbone as a feature-map model: the pooler "
                                       r"mtl adds to it is not part of that export format; `mtl predict RUN` still "
                                       r"works$"):
        export_model(model, tasks, "demo-sentiment", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ mtl run, export


@pytest.mark.slow
@pytest.mark.parametrize("name", ["roberta", "deberta-v2", "electra", "distilbert"])
def test_mtl_run_export_and_plain_transformers_agree(folders, tmp_path, name):
    run = tmp_path / "run"
    result = invoke_cli("run", "--target", "demo-paraphrase", "--aux", "demo-sentiment",
                        "--backbone", f"hf:{folders[name]}", "--max-steps", "3", "--batch-size", "8",
                        "--max-length", "32", "--limit", "24", "--eval-limit", "16", "--lr", "1e-3", "--quiet",
                        "-o", str(run))
    assert result.exit_code == 0, result.output
    result = invoke_cli("export", str(run), "--overwrite")
    assert result.exit_code == 0, result.output
    pairs = [("The lawyer followed the man.", "The attorney trailed the man."),
             ("A cat slept on the sofa all afternoon.", "The dog barked.")]
    lines = "\n".join("\t".join(pair) for pair in pairs) + "\n"
    predicted = CliRunner().invoke(app, ["predict", str(run), "--input", "-"], input=lines)
    assert predicted.exit_code == 0, predicted.output
    expected = torch.tensor([json.loads(line)["logits"] for line in predicted.stdout.splitlines()])
    model = AutoModelForSequenceClassification.from_pretrained(run / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    batch = tokenizer([p[0] for p in pairs], [p[1] for p in pairs], padding=True, truncation=True, max_length=32,
                      return_tensors="pt")
    with torch.no_grad():
        got = model(**batch).logits
    assert type(model).__name__.lower().startswith(name.replace("-", ""))
    assert torch.allclose(got, expected, atol=1e-5), (got, expected)
