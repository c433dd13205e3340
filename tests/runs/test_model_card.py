"""The model card (README.md) of every export and of every run's model/ folder: the Hub's format (YAML metadata with
a model-index from eval.json, then text), read back with huggingface_hub's own ModelCard."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import pytest
from conftest import invoke_cli
from huggingface_hub import ModelCard

import mtl
from mtl.runs import card
from mtl.runs.config import RunConfig

DEMO = dict(target="demo-paraphrase", aux=["demo-similarity", "demo-sentiment"])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny finished run (its model/ written by the trainer) and its `mtl export --output` folder."""
    from mtl.training.trainer import Trainer

    root = tmp_path_factory.mktemp("card")
    config = RunConfig(**DEMO, weighting="uniform", sampler="temperature", backbone="tiny", batch_size=8,
                       max_length=32, max_steps=2, eval_limit=8, seed=7, lr=1e-3, output=str(root / "run"),
                       options={"tiny": {"hidden_size": 32}, "temperature": {"T": 2.0}})
    Trainer(config).train()
    exported = root / "my-model"
    result = invoke_cli("export", str(root / "run"), "--output", str(exported))
    assert result.exit_code == 0, result.output
    return root / "run", exported


def eval_results(data) -> dict[tuple[str, str], float]:
    return {(r.dataset_split, r.metric_name): r.metric_value for r in data.eval_results}


def test_the_runs_model_folder_has_a_hub_model_card(run):
    folder, _ = run
    parsed = ModelCard.load(folder / "model" / "README.md")
    data = parsed.data
    target_metrics = json.loads((folder / "eval.json").read_text())["demo-paraphrase"]
    assert target_metrics and eval_results(data) == {("dev", m): v for m, v in target_metrics["dev"].items()}
    assert {r.metric_type for r in data.eval_results} == {"f1", "accuracy"}
    assert {r.dataset_type for r in data.eval_results} == {"demo-paraphrase"}
    assert {r.task_type for r in data.eval_results} == {"text-classification"}
    assert data.library_name == "transformers" and data.pipeline_tag == "text-classification"
    assert {"multi-task", "mtl", "weighting-uniform", "sampler-temperature"} <= set(data.tags)
    assert data.base_model is None and data.license is None  # tiny: random weights, nothing to name
    assert data.model_name == str(folder / "model")
    assert data.to_dict()["mtl"] == {"task": "demo-paraphrase", "labels": ["not_paraphrase", "paraphrase"],
                                     "auxiliary_tasks": ["demo-similarity", "demo-sentiment"], "weighting": "uniform",
                                     "sampler": "temperature", "seed": 7}
    text = parsed.text
    for fragment in ("| Target task | `demo-paraphrase` |", "`demo-similarity`, `demo-sentiment`",
                     "| Weighting | `uniform` |", "| Sampler | `temperature` (T=2.0) |", "| Seed | 7 |",
                     "| Peak learning rate | 0.001 |", "| Steps | 2 |", "| Backbone | `tiny` (hidden_size=32) |",
                     "AutoModelForSequenceClassification.from_pretrained(", "```python",
                     f"| dev | f1 | {target_metrics['dev']['f1']:.4f} |",
                     "auxiliary heads: demo-similarity, demo-sentiment",
                     "`not_paraphrase`, `paraphrase`"):
        assert fragment in text, fragment


def test_mtl_export_writes_the_card_named_after_its_folder(run):
    folder, exported = run
    text = (exported / "README.md").read_text()
    parsed = ModelCard(text)  # the text itself parses as a Hub card
    assert parsed.data.model_name == str(exported)
    assert f'AutoTokenizer.from_pretrained("{exported}")' in parsed.text
    assert eval_results(parsed.data) == eval_results(ModelCard.load(folder / "model" / "README.md").data)
    manifest = json.loads((exported / "mtl_export.json").read_text())
    assert manifest["card"]["training"]["seed"] == 7 and manifest["card"]["datasets"]["demo-paraphrase"]["path"] is None


def test_the_loading_example_runs_with_plain_transformers(run):
    """The card's Python block, run as written (the model id is the export folder), predicts a label."""
    _, exported = run
    text = (exported / "README.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own generated example
    assert namespace["model"].config.id2label[int(namespace["logits"].argmax(-1))] in ("not_paraphrase", "paraphrase")


def test_glue_tasks_name_their_hub_dataset_and_a_known_licence():
    tasks = {name: mtl.create("task", name) for name in ("rte", "mnli", "stsb")}
    backbone = SimpleNamespace(base_model="sentence-transformers/all-MiniLM-L6-v2", license="apache-2.0")
    config = RunConfig(target="rte", aux=["mnli", "stsb"], weighting="mamt", sampler="adaptive", max_steps=None,
                       epochs=2, teachers={"rte": ["runs/a"]})
    manifest = {"task": "rte", "labels": ["entailment", "not_entailment"], "loadable_with_transformers": True,
                "max_length": 96, "text_columns": ["sentence1", "sentence2"], "metrics": {"dev": {"accuracy": 0.75}},
                "source": {"target": "rte", "aux": ["mnli", "stsb"], "weighting": "mamt", "sampler": "adaptive",
                           "backbone": "minilm", "options": {"mamt": {"psi": 0.5}}, "seed": 1},
                "card": card.card_info(backbone, tasks, "rte", config)}
    parsed = ModelCard(card.render(manifest, "me/rte-mamt"))
    data = parsed.data
    assert data.license == "apache-2.0" and data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert data.datasets == ["nyu-mll/glue"]
    (result,) = data.eval_results
    assert (result.dataset_type, result.dataset_config, result.dataset_split, result.dataset_name) == \
        ("nyu-mll/glue", "rte", "validation", "GLUE RTE")
    assert (result.metric_type, result.metric_name, result.metric_value) == ("accuracy", "accuracy", 0.75)
    assert "| Weighting | `mamt` (psi=0.5) |" in parsed.text and "| Epochs | 2 |" in parsed.text
    assert "Teachers | rte=runs/a" in parsed.text and "Teacher temperature" in parsed.text
    name = "sentence-transformers/all-MiniLM-L6-v2"
    assert f"[{name}](https://huggingface.co/{name})" in parsed.text
    assert "truncation=True, max_length=96," in parsed.text  # the export's own limit in the loading example


def test_regression_and_feature_map_exports_say_how_they_load(run):
    _, exported = run
    manifest = json.loads((exported / "mtl_export.json").read_text())
    regression = copy.deepcopy(manifest) | {"labels": None, "metrics": {"dev": {"pearson": 0.5, "spearman": 0.25}}}
    text = card.render(regression, "me/sts")
    assert "logits[0, 0].item()" in text and "Regression: one output" in text
    assert {r.metric_type for r in ModelCard(text).data.eval_results} == {"pearsonr", "spearmanr"}
    mmoe = copy.deepcopy(manifest) | {"kind": "feature-map", "loadable_with_transformers": False,
                                      "note": "weighting 'mmoe' puts a module between the pooler and the classifier"}
    parsed = ModelCard(card.render(mmoe, "me/mmoe"))
    assert parsed.data.library_name is None and "```python" not in parsed.text
    assert "Not a plain `transformers` classifier: weighting 'mmoe'" in parsed.text
    assert "mtl predict FOLDER" in parsed.text


def test_a_backbone_card_gives_the_licence_and_a_hub_name_is_its_own_base_model(tmp_path):
    from mtl.model.backbone import card_metadata
    from mtl.plugins.backbones.minilm import model_path

    assert card_metadata(model_path()) == (None, "apache-2.0")  # the bundled copy's card: licence, no Hub id
    (tmp_path / "README.md").write_text("---\nlicense: mit\nbase_model: google-bert/bert-base-uncased\n---\n# x\n")
    assert card_metadata(str(tmp_path)) == ("google-bert/bert-base-uncased", "mit")
    assert card_metadata("someone/not-in-the-cache") == ("someone/not-in-the-cache", None)
