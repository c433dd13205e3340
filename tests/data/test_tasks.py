"""The built-in tasks: registry, label orders, the real GLUE files (counts from shared/data/glue/README.md),
MNLI/QQP/SNLI on small GLUE-format files, and the demo suite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import mtl
from mtl.data.suite import DEMO_SUITE
from mtl.errors import DataError

GLUE = Path(os.environ.get("MTL_GLUE_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"))
ROOT = Path(__file__).resolve().parents[2]

GLUE_NAMES = ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "snli"]
DEMO_NAMES = ["demo-paraphrase", "demo-similarity", "demo-sentiment"]
TAGGING_NAMES = ["conll2003", "demo-entities"]  # token-classification (tests/data/test_tagging.py)
QA_NAMES = ["squad", "demo-qa"]  # extractive-qa
POOLED_NAMES = ["swag", "copa", "boolq", "cb", "wic", "qnli-ranking", "demo-choice", "demo-ranking", "demo-topics"]
ALL_NAMES = GLUE_NAMES + DEMO_NAMES + TAGGING_NAMES + POOLED_NAMES + QA_NAMES


def task(name: str) -> mtl.Task:
    return mtl.create("task", name)


def glue_folder(folder: str) -> Path:
    if not (GLUE / folder).is_dir():
        pytest.skip(f"GLUE folder {GLUE / folder} is absent (set MTL_GLUE_DIR)")
    return GLUE


# ---------------------------------------------------------------------------------------------- registry


def test_all_tasks_are_registered():
    assert sorted(mtl.available("task")) == sorted(ALL_NAMES)
    assert len(mtl.available("task")) == len(ALL_NAMES)


@pytest.mark.parametrize(("alias", "name"), [("sst-2", "sst2"), ("sts-b", "stsb")])
def test_aliases_resolve(alias, name):
    t = task(alias)
    assert t.name == name and type(t) is type(task(name))


def test_unknown_task_suggests_close_names():
    with pytest.raises(mtl.UnknownNameError, match="Did you mean 'rte'"):
        task("rtee")


def test_listing_tasks_does_not_import_torch_or_sklearn():
    code = ("import sys, mtl; names = mtl.available('task'); "
            "[mtl.create('task', n) for n in names]; "
            "heavy = [m for m in ('torch', 'transformers', 'sklearn', 'scipy', 'datasets') if m in sys.modules]; "
            "print(len(names), heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"{len(ALL_NAMES)} []"


# Label orders of nyu-mll/glue's ClassLabel features (and stanfordnlp/snli), so hub integers index them.
HUB_LABELS = {
    "cola": ("unacceptable", "acceptable"),
    "sst2": ("negative", "positive"),
    "mrpc": ("not_equivalent", "equivalent"),
    "qqp": ("not_duplicate", "duplicate"),
    "mnli": ("entailment", "neutral", "contradiction"),
    "qnli": ("entailment", "not_entailment"),
    "rte": ("entailment", "not_entailment"),
    "wnli": ("not_entailment", "entailment"),
    "snli": ("entailment", "neutral", "contradiction"),
    "stsb": None,
}


@pytest.mark.parametrize("name", GLUE_NAMES)
def test_label_orders_match_the_hub(name):
    assert task(name).labels == HUB_LABELS[name]


@pytest.mark.parametrize(("name", "metrics"), [
    ("cola", ("mcc",)), ("sst2", ("accuracy",)), ("mrpc", ("f1", "accuracy")), ("stsb", ("pearson", "spearman")),
    ("qqp", ("f1", "accuracy")), ("mnli", ("accuracy",)), ("qnli", ("accuracy",)), ("rte", ("accuracy",)),
    ("wnli", ("accuracy",)), ("snli", ("accuracy",)), ("demo-paraphrase", ("f1", "accuracy")),
    ("demo-similarity", ("pearson", "spearman")), ("demo-sentiment", ("accuracy",)),
])
def test_metrics_and_primary_metric(name, metrics):
    t = task(name)
    assert t.metrics == metrics and t.primary_metric == metrics[0]
    assert t.is_regression == (metrics[0] == "pearson")
    assert t.description


def test_mnli_evaluates_matched_and_mismatched():
    t = task("mnli")
    assert t.eval_splits == ("dev_matched", "dev_mismatched")
    assert t.glue.files["dev_matched"] == "dev_matched.tsv" and t.glue.files["dev_mismatched"] == "dev_mismatched.tsv"
    assert t.hub_splits["dev_matched"] == "validation_matched"
    assert t.hub_splits["dev_mismatched"] == "validation_mismatched"


# ---------------------------------------------------------------------------------------------- real GLUE files

# (task, split, folder, rows, label counts by class index or None for unlabeled)
REAL = [
    ("cola", "train", "CoLA", 8551, {1: 6023, 0: 2528}),
    ("cola", "dev", "CoLA", 1043, {1: 721, 0: 322}),
    ("cola", "test", "CoLA", 1063, None),
    ("sst2", "train", "SST-2", 67349, {1: 37569, 0: 29780}),
    ("sst2", "dev", "SST-2", 872, {1: 444, 0: 428}),
    ("sst2", "test", "SST-2", 1821, None),
    ("mrpc", "train", "MRPC", 3668, {1: 2474, 0: 1194}),
    ("mrpc", "dev", "MRPC", 408, {1: 279, 0: 129}),
    ("mrpc", "test", "MRPC", 1725, None),
    ("qnli", "dev", "QNLI", 5463, {1: 2761, 0: 2702}),  # 1 = not_entailment
    ("qnli", "test", "QNLI", 5463, None),
    ("rte", "train", "RTE", 2490, {0: 1249, 1: 1241}),  # 0 = entailment
    ("rte", "dev", "RTE", 277, {0: 146, 1: 131}),
    ("rte", "test", "RTE", 3000, None),
    ("wnli", "train", "WNLI", 635, {0: 323, 1: 312}),
    ("wnli", "dev", "WNLI", 71, {0: 40, 1: 31}),
    ("wnli", "test", "WNLI", 146, None),
]


@pytest.mark.parametrize(("name", "split", "folder", "rows", "counts"), REAL, ids=[f"{r[0]}-{r[1]}" for r in REAL])
def test_real_glue_files(name, split, folder, rows, counts):
    t = task(name)
    examples = t.load(split, data_dir=glue_folder(folder))
    assert len(examples) == rows
    assert examples.source == str(GLUE / folder / t.glue.files[split])
    width = len(t.text_columns)
    assert all(len(text) == width for text in examples.texts)
    if counts is None:
        assert examples.labels == []
    else:
        assert dict(Counter(examples.labels)) == counts
        assert all(type(label) is int for label in examples.labels)


def test_real_glue_text_content():
    cola = task("cola").load("train", data_dir=glue_folder("CoLA"))
    assert cola.texts[0] == ("Our friends won't buy this analysis, let alone the next one we propose.",)
    mrpc = task("mrpc").load("dev", data_dir=glue_folder("MRPC"))  # the BOM before "Quality" is stripped
    assert mrpc.labels[0] == 1 and mrpc.texts[0][0].startswith("He said the foodservice pie business")
    assert mrpc.texts[0][1].startswith('" The foodservice pie business')  # QUOTE_NONE keeps the lone quote
    cola_test = task("cola").load("test", data_dir=GLUE)  # CoLA's test file has a header, train/dev do not
    assert cola_test.texts[0] == ("Bill whistled past the house.",)


@pytest.mark.parametrize(("split", "rows", "distinct", "first"), [
    ("train", 5749, 140, ("A plane is taking off.", "An air plane is taking off.")),
    ("dev", 1500, 78, ("A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.")),
])
def test_real_stsb_scores(split, rows, distinct, first):
    # The README counts distinct score *strings* (205 / 161: "0", "0.00", "0.000" ...); as floats they are fewer.
    examples = task("stsb").load(split, data_dir=glue_folder("STS-B"))
    assert len(examples) == rows
    assert all(type(s) is float for s in examples.labels)
    assert min(examples.labels) == 0.0 and max(examples.labels) == 5.0
    assert len(set(examples.labels)) == distinct
    assert examples.labels[0] == 5.0 and examples.texts[0] == first


def test_real_stsb_test_is_unlabeled():
    examples = task("sts-b").load("test", data_dir=glue_folder("STS-B"))
    assert len(examples) == 1379 and examples.labels == []


def test_glue_task_folder_itself_as_data_dir():
    examples = task("rte").load("dev", data_dir=glue_folder("RTE") / "RTE")
    assert len(examples) == 277


def test_real_qnli_train_is_missing_and_says_so():
    with pytest.raises(DataError, match=r"not found: .*QNLI/train\.tsv"):
        task("qnli").load("train", data_dir=glue_folder("QNLI"))


def test_limit_keeps_the_first_examples():
    full = task("rte").load("train", data_dir=glue_folder("RTE"))
    head = task("rte").load("train", data_dir=GLUE, limit=10)
    assert head.texts == full.texts[:10] and head.labels == full.labels[:10]


# ---------------------------------------------------------------------------------------------- MNLI, QQP, SNLI

MNLI_HEADER = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
               "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"]
MNLI_DEV_HEADER = MNLI_HEADER[:11] + ["label2", "label3", "label4", "label5", "gold_label"]
SNLI_HEADER = ["index", "captionID", "pairID", "sentence1_binary_parse", "sentence2_binary_parse",
               "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"]


def write_tsv(path: Path, header: list[str] | None, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ([header] if header else []) + rows
    path.write_text("".join("\t".join(r) + "\n" for r in lines), encoding="utf-8")
    return path


def nli_row(header: list[str], i: int, s1: str, s2: str, gold: str | None) -> list[str]:
    values = {"index": str(i), "sentence1": s1, "sentence2": s2, "gold_label": gold or "", "genre": "fiction"}
    return [values.get(h, "( x )" if "parse" in h else (gold or "x") if h.startswith("label") else str(i))
            for h in header]


def test_mnli_train_and_both_dev_sets(tmp_path):
    write_tsv(tmp_path / "MNLI" / "train.tsv", MNLI_HEADER, [
        nli_row(MNLI_HEADER, 0, "A man sleeps.", "A person rests.", "entailment"),
        nli_row(MNLI_HEADER, 1, "A man sleeps.", "A man runs.", "contradiction"),
        nli_row(MNLI_HEADER, 2, "A man sleeps.", "A man dreams.", "neutral"),
    ])
    write_tsv(tmp_path / "MNLI" / "dev_matched.tsv", MNLI_DEV_HEADER, [
        nli_row(MNLI_DEV_HEADER, 0, "It rains.", "It is wet.", "entailment"),
        nli_row(MNLI_DEV_HEADER, 1, "It rains.", "It is dry.", "contradiction"),
    ])
    write_tsv(tmp_path / "MNLI" / "dev_mismatched.tsv", MNLI_DEV_HEADER, [
        nli_row(MNLI_DEV_HEADER, 0, "A dog barks.", "An animal is loud.", "neutral"),
    ])
    write_tsv(tmp_path / "MNLI" / "test_matched.tsv", MNLI_HEADER[:10], [
        nli_row(MNLI_HEADER[:10], 0, "A cat sits.", "A cat stands.", None),
    ])
    mnli = task("mnli")
    train = mnli.load("train", data_dir=tmp_path)
    assert train.texts == [("A man sleeps.", "A person rests."), ("A man sleeps.", "A man runs."),
                           ("A man sleeps.", "A man dreams.")]
    assert train.labels == [0, 2, 1]
    matched = mnli.load("dev_matched", data_dir=tmp_path)
    assert matched.labels == [0, 2] and matched.texts[1] == ("It rains.", "It is dry.")
    mismatched = mnli.load("dev_mismatched", data_dir=tmp_path)
    assert mismatched.labels == [1] and mismatched.source.endswith("dev_mismatched.tsv")
    test = mnli.load("test_matched", data_dir=tmp_path)
    assert test.texts == [("A cat sits.", "A cat stands.")] and test.labels == []
    with pytest.raises(DataError, match=r"not found: .*test_mismatched\.tsv"):
        mnli.load("test_mismatched", data_dir=tmp_path)
    with pytest.raises(DataError, match=r"no split 'dev'.*dev_matched, dev_mismatched"):
        mnli.load("dev", data_dir=tmp_path)


def test_qqp(tmp_path):
    header = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    write_tsv(tmp_path / "QQP" / "train.tsv", header, [
        ["0", "1", "2", "How do I cook rice?", "What is the way to cook rice?", "1"],
        ["1", "3", "4", "Why is the sky blue?", "How tall is Everest?", "0"],
    ])
    write_tsv(tmp_path / "QQP" / "test.tsv", ["id", "question1", "question2"], [["0", "Is it?", "Is it so?"]])
    train = task("qqp").load("train", data_dir=tmp_path)
    assert train.labels == [1, 0] and train.texts[1] == ("Why is the sky blue?", "How tall is Everest?")
    test = task("qqp").load("test", data_dir=tmp_path)
    assert test.texts == [("Is it?", "Is it so?")] and test.labels == []


def test_snli_drops_rows_without_a_gold_label(tmp_path):
    write_tsv(tmp_path / "SNLI" / "dev.tsv", SNLI_HEADER, [
        nli_row(SNLI_HEADER, 0, "Kids play.", "Children play.", "entailment"),
        nli_row(SNLI_HEADER, 1, "Kids play.", "Kids sleep.", "-"),
        nli_row(SNLI_HEADER, 2, "Kids play.", "Kids are outside.", "neutral"),
        nli_row(SNLI_HEADER, 3, "Kids play.", "Nobody plays.", "contradiction"),
    ])
    dev = task("snli").load("dev", data_dir=tmp_path)
    assert dev.labels == [0, 1, 2]
    assert ("Kids play.", "Kids sleep.") not in dev.texts and len(dev) == 3


def test_snli_split_of_only_unlabeled_rows_is_empty(tmp_path):
    write_tsv(tmp_path / "SNLI" / "train.tsv", SNLI_HEADER, [nli_row(SNLI_HEADER, 0, "a", "b", "-")])
    with pytest.raises(DataError, match=r"task 'snli' has no examples in .*train\.tsv"):
        task("snli").load("train", data_dir=tmp_path)


def test_headerless_cola_in_a_glue_folder(tmp_path):
    write_tsv(tmp_path / "CoLA" / "dev.tsv", None, [["gj04", "1", "", "Good."], ["gj04", "0", "*", "Bad it."]])
    dev = task("cola").load("dev", data_dir=tmp_path)
    assert dev.texts == [("Good.",), ("Bad it.",)] and dev.labels == [1, 0]


# ---------------------------------------------------------------------------------------------- demo suite


def test_demo_suite_names_are_registered_tasks():
    assert DEMO_SUITE["target"] == "demo-paraphrase"
    assert DEMO_SUITE["aux"] == ["demo-similarity", "demo-sentiment"]
    for name in [DEMO_SUITE["target"], *DEMO_SUITE["aux"]]:
        assert name in mtl.available("task")


DEMO_SIZES = {"demo-paraphrase": (64, 200), "demo-similarity": (480, 100), "demo-sentiment": (96, 100)}


@pytest.mark.parametrize("name", DEMO_NAMES)
@pytest.mark.parametrize("split", ["train", "dev"])
def test_demo_suite_loads_from_the_package(name, split):
    t = task(name)
    examples = t.load(split)
    size = DEMO_SIZES[name][split == "dev"]
    assert len(examples) == size and len(examples.labels) == size
    assert "demo" in examples.source
    if t.is_regression:  # the share of the five slots in common: 0.0, 0.2, ..., 1.0, mostly near the top
        assert set(examples.labels) == {0.0, 0.2, 0.4, 0.6, 0.8, 1.0}
        assert sum(score >= 0.6 for score in examples.labels) > 0.6 * size
    else:
        counts = Counter(examples.labels)
        assert set(counts) == set(range(t.num_outputs))
        assert counts[0] == counts[1] == size // 2
    assert all(len(text) == len(t.text_columns) and all(text) for text in examples.texts)


def test_demo_splits_do_not_overlap():
    for name in DEMO_NAMES:
        train, dev = task(name).load("train"), task(name).load("dev")
        assert len(set(train.texts)) == len(train)
        assert not set(train.texts) & set(dev.texts)


def test_demo_pair_tasks_agree():
    """A similarity of 1.0 means every slot is shared: the same relation as a paraphrase, over the same words."""
    def words(name):
        t = task(name)
        return {w.strip(".,").lower() for split in ("train", "dev") for pair in t.load(split).texts for s in pair
                for w in s.split()}

    paraphrase = words("demo-paraphrase")
    assert {"physician", "doctor", "phoned", "called"} <= paraphrase
    assert len(words("demo-similarity") ^ paraphrase) < 10


def test_demo_files_are_reproduced_by_the_generator(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_demo.py"), str(tmp_path)], check=True,
                   capture_output=True)
    shipped = sorted(p.name for p in (ROOT / "core" / "data" / "demo").glob("*.tsv")
                     if not p.name.startswith("ranking_"))  # tools/make_demo_choice.py's
    assert shipped == sorted(p.name for p in tmp_path.glob("*.tsv")) and len(shipped) == 6
    for name in shipped:
        assert (tmp_path / name).read_bytes() == (ROOT / "core" / "data" / "demo" / name).read_bytes(), name


def test_demo_task_has_no_glue_layout(tmp_path):
    """A GLUE folder given for a run that includes a demo task still reads the demo task from the package."""
    assert len(task("demo-sentiment").load("dev", data_dir=tmp_path)) == DEMO_SIZES["demo-sentiment"][1]
    with pytest.raises(DataError, match="no split 'test'"):
        task("demo-sentiment").load("test")
