"""Data loading: user files (CSV, TSV, JSONL), the Hugging Face hub (mocked; offline), and bad input."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

import mtl
from mtl.data import hub
from mtl.errors import DataError


def task(name: str) -> mtl.Task:
    return mtl.create("task", name)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def data_error(call, *args, **kwargs) -> str:
    """The message of the DataError raised by ``call``; it must be one line."""
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message
    return message


# ---------------------------------------------------------------------------------------------- user files


def test_tsv_file_columns_by_name_in_any_order(tmp_path):
    path = write(tmp_path / "rte.tsv", "label\tid\tsentence2\tsentence1\n"
                                       "not_entailment\t7\tB is false.\tA is true.\n"
                                       "entailment\t8\tA.\tA and B.\n")
    examples = task("rte").load("train", file=path)
    assert examples.texts == [("A is true.", "B is false."), ("A and B.", "A.")]
    assert examples.labels == [1, 0] and examples.source == str(path)


def test_csv_file_with_quotes_and_commas(tmp_path):
    path = write(tmp_path / "sst.csv",
                 'sentence,label\n"good, really good",positive\nbad film,0\n"he said ""meh""",1\n')
    examples = task("sst2").load("train", file=path)
    assert examples.texts == [("good, really good",), ("bad film",), ('he said "meh"',)]
    assert examples.labels == [1, 0, 1]


def test_jsonl_file_with_names_indices_and_numbers(tmp_path):
    lines = [{"premise": "x", "sentence1": "A man sleeps.", "sentence2": "He rests.", "gold_label": "entailment"},
             {"sentence1": "A man sleeps.", "sentence2": "He runs.", "gold_label": 2},
             {"sentence1": "A man sleeps.", "sentence2": "He dreams.", "gold_label": "1"}]
    path = write(tmp_path / "mnli.jsonl", "\n".join(json.dumps(r) for r in lines) + "\n\n")
    examples = task("mnli").load("train", file=path)
    assert examples.texts[1] == ("A man sleeps.", "He runs.") and examples.labels == [0, 2, 1]


def test_json_lines_extension_and_regression_scores(tmp_path):
    path = write(tmp_path / "sts.json-lines", '{"sentence1": "a", "sentence2": "b", "score": 3.5}\n'
                                              '{"sentence1": "c", "sentence2": "d", "score": "4"}\n')
    examples = task("stsb").load("dev", file=path)
    assert examples.labels == [3.5, 4.0] and all(type(s) is float for s in examples.labels)


def test_labels_as_names_aliases_and_indices(tmp_path):
    path = write(tmp_path / "cola.tsv", "sentence\tlabel\nA.\tacceptable\nB.\t0\nC.\t1\nD.\tunacceptable\n")
    assert task("cola").load("train", file=path).labels == [1, 0, 1, 0]
    path = write(tmp_path / "mrpc.tsv", "#1 String\t#2 String\tQuality\na\tb\tequivalent\nc\td\t0\n")
    assert task("mrpc").load("dev", file=path).labels == [1, 0]


def test_test_split_file_may_have_no_labels(tmp_path):
    path = write(tmp_path / "test.csv", "sentence1,sentence2\na,b\nc,d\n")
    examples = task("rte").load("test", file=path)
    assert examples.texts == [("a", "b"), ("c", "d")] and examples.labels == []
    labelled = write(tmp_path / "test_labelled.csv", "sentence1,sentence2,label\na,b,entailment\n")
    assert task("rte").load("test", file=labelled).labels == [0]
    jsonl = write(tmp_path / "test.jsonl", '{"sentence": "fine"}\n')
    assert task("sst2").load("test", file=jsonl).labels == []


def test_tsv_with_bom_and_lone_quotes(tmp_path):
    path = write(tmp_path / "mrpc.tsv", '\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n'
                                        '1\t1\t2\t" He said .\tHe said " so .\n')
    examples = task("mrpc").load("train", file=path)
    assert examples.texts == [('" He said .', 'He said " so .')] and examples.labels == [1]


def test_limit_on_files(tmp_path):
    path = write(tmp_path / "s.tsv", "sentence\tlabel\n" + "".join(f"s{i}\t{i % 2}\n" for i in range(50)))
    examples = task("sst2").load("train", file=path, limit=5)
    assert [t[0] for t in examples.texts] == ["s0", "s1", "s2", "s3", "s4"] and examples.labels == [0, 1, 0, 1, 0]
    assert len(task("sst2").load("train", file=path, limit=0)) == 0
    assert len(task("sst2").load("train", file=path, limit=500)) == 50


def test_blank_lines_are_skipped(tmp_path):
    path = write(tmp_path / "s.tsv", "sentence\tlabel\na\t1\n\nb\t0\n\n")
    assert task("sst2").load("train", file=path).labels == [1, 0]


# ---------------------------------------------------------------------------------------------- bad input


def test_missing_user_file(tmp_path):
    message = data_error(task("rte").load, "train", file=tmp_path / "nope.tsv")
    assert "not found" in message and "nope.tsv" in message


def test_unknown_file_format(tmp_path):
    path = write(tmp_path / "data.xlsx", "x")
    assert "unknown file format '.xlsx'" in data_error(task("rte").load, "train", file=path)


def test_missing_glue_folder(tmp_path):
    message = data_error(task("rte").load, "train", data_dir=tmp_path / "glue_data")
    assert message == f"GLUE data folder not found: {tmp_path / 'glue_data'}"


def test_missing_task_folder(tmp_path):
    (tmp_path / "CoLA").mkdir()
    message = data_error(task("rte").load, "dev", data_dir=tmp_path)
    assert "folder not found" in message and str(tmp_path / "RTE") in message


def test_missing_split_file(tmp_path):
    (tmp_path / "RTE").mkdir()
    write(tmp_path / "RTE" / "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    message = data_error(task("rte").load, "dev", data_dir=tmp_path)
    assert message == f"rte dev file not found: {tmp_path / 'RTE' / 'dev.tsv'}"


def test_missing_column_names_the_file_column_and_columns_present(tmp_path):
    path = write(tmp_path / "rte.tsv", "index\tsentence1\thypothesis\tlabel\n0\ta\tb\tentailment\n")
    message = data_error(task("rte").load, "train", file=path)
    assert str(path) in message and "'sentence2'" in message
    assert "'index', 'sentence1', 'hypothesis', 'label'" in message


def test_missing_label_column_outside_test_splits(tmp_path):
    path = write(tmp_path / "rte.csv", "sentence1,sentence2\na,b\n")
    message = data_error(task("rte").load, "train", file=path)
    assert "missing label column 'label'" in message and str(path) in message


def test_unknown_label_names_file_line_label_and_valid_labels(tmp_path):
    path = write(tmp_path / "rte.tsv", "index\tsentence1\tsentence2\tlabel\n"
                                       "0\ta\tb\tentailment\n"
                                       "1\tc\td\tnot_entailment\n"
                                       "2\te\tf\tmaybe\n")
    message = data_error(task("rte").load, "train", file=path)
    assert message.startswith(f"{path}:4: unknown label 'maybe'")
    assert "entailment, not_entailment" in message


def test_unknown_label_line_in_headerless_cola(tmp_path):
    (tmp_path / "CoLA").mkdir()
    write(tmp_path / "CoLA" / "train.tsv", "gj04\t1\t\tGood.\ngj04\t0\t*\tBad.\ngj04\t2\t\tOdd.\n")
    message = data_error(task("cola").load, "train", data_dir=tmp_path)
    assert message.startswith(f"{tmp_path / 'CoLA' / 'train.tsv'}:3: unknown label '2'")


def test_unknown_label_line_in_csv_with_multiline_field(tmp_path):
    path = write(tmp_path / "s.csv", 'sentence,label\n"two\nlines",1\nok,neutral\n')
    assert f"{path}:4: unknown label 'neutral'" in data_error(task("sst2").load, "train", file=path)


def test_row_with_too_few_fields(tmp_path):
    path = write(tmp_path / "rte.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tonly one\n")
    message = data_error(task("rte").load, "train", file=path)
    assert message.startswith(f"{path}:3:") and "found 2" in message


def test_headerless_row_with_too_few_fields(tmp_path):
    (tmp_path / "CoLA").mkdir()
    write(tmp_path / "CoLA" / "dev.tsv", "gj04\t1\t\tGood.\ngj04\t1\n")
    message = data_error(task("cola").load, "dev", data_dir=tmp_path)
    assert message.startswith(f"{tmp_path / 'CoLA' / 'dev.tsv'}:2:")


@pytest.mark.parametrize("score", ["high", "nan", "inf", ""])
def test_non_numeric_regression_score(tmp_path, score):
    path = write(tmp_path / "sts.tsv", f"sentence1\tsentence2\tscore\na\tb\t1.5\nc\td\t{score}\n")
    message = data_error(task("stsb").load, "train", file=path)
    assert message.startswith(f"{path}:3: score {score!r}") and "not a finite number" in message


def test_malformed_json_line(tmp_path):
    path = write(tmp_path / "rte.jsonl", '{"sentence1": "a", "sentence2": "b", "label": "entailment"}\n'
                                         '{"sentence1": "c", "sentence2": \n')
    message = data_error(task("rte").load, "train", file=path)
    assert message.startswith(f"{path}:2: not valid JSON")


def test_json_line_that_is_not_an_object(tmp_path):
    path = write(tmp_path / "rte.jsonl", '["a", "b"]\n')
    assert f"{path}:1: expected a JSON object" in data_error(task("rte").load, "train", file=path)


def test_json_line_missing_a_column(tmp_path):
    path = write(tmp_path / "rte.jsonl", '{"sentence1": "a", "sentence2": "b", "label": 0}\n{"sentence1": "c"}\n')
    message = data_error(task("rte").load, "train", file=path)
    assert message.startswith(f"{path}:2: missing column 'sentence2'")


def test_json_unknown_label_line(tmp_path):
    path = write(tmp_path / "rte.jsonl", '{"sentence1": "a", "sentence2": "b", "label": 0}\n\n'
                                         '{"sentence1": "c", "sentence2": "d", "label": 5}\n')
    assert data_error(task("rte").load, "train", file=path).startswith(f"{path}:3: unknown label '5'")


@pytest.mark.parametrize("content", ["", "\n", "sentence\tlabel\n", "sentence\tlabel\n\n"])
def test_empty_file_or_split(tmp_path, content):
    path = write(tmp_path / "sst.tsv", content)
    message = data_error(task("sst2").load, "train", file=path)
    assert message.startswith("task 'sst2' has no examples in") and str(path) in message


def test_empty_jsonl(tmp_path):
    path = write(tmp_path / "sst.jsonl", "\n")
    assert data_error(task("sst2").load, "train", file=path) == f"task 'sst2' has no examples in {path}"


def test_not_utf8(tmp_path):
    path = tmp_path / "sst.tsv"
    path.write_bytes(b"sentence\tlabel\ncaf\xe9\t1\n")
    message = data_error(task("sst2").load, "train", file=path)
    assert str(path) in message and "UTF-8" in message


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux's /proc/self/mem")
@pytest.mark.parametrize("suffix", [".tsv", ".jsonl"])
def test_a_read_that_fails_part_way_names_the_file(tmp_path, suffix):
    """A file that opens but whose read fails (an I/O error: /proc/self/mem read at offset 0 gives EIO)."""
    path = tmp_path / f"sst{suffix}"
    path.symlink_to("/proc/self/mem")
    message = data_error(task("sst2").load, "train", file=path)
    assert message.startswith(str(path)) and "read error" in message


def test_unknown_split(tmp_path):
    message = data_error(task("rte").load, "validation", data_dir=tmp_path)
    assert "no split 'validation'" in message and "train, dev, test" in message


# ---------------------------------------------------------------------------------------------- the hub


@pytest.fixture
def online(monkeypatch):
    """Pretend the hub is reachable: no offline variables, no network probe."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(hub, "probe", lambda timeout=3.0: None)


class FakeDataset:
    """The part of ``datasets.Dataset`` the loader uses: column names and column access."""

    def __init__(self, columns: dict[str, list]):
        self.columns = columns
        self.column_names = list(columns)

    def __getitem__(self, name: str) -> list:
        return self.columns[name]


@pytest.fixture
def fake_hub(monkeypatch, online):
    """A stand-in ``datasets`` module whose ``load_dataset`` serves ``fake_hub[(path, config, split)]``."""
    served: dict[tuple, dict[str, list]] = {}
    calls: list[tuple] = []

    def load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return FakeDataset(served[(path, name, split)])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    served["calls"] = calls
    return served


def test_hub_offline_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = data_error(task("rte").load, "train")
    assert message == ("no data for task 'rte' split 'train': pass --data-dir (a GLUE folder) or "
                       "--data rte.train=FILE; the Hugging Face hub could not be reached (HF_HUB_OFFLINE is set)")


def test_hub_unreachable_fails_fast(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(hub, "probe", lambda timeout=3.0: "huggingface.co: Name or service not known")
    message = data_error(task("mrpc").load, "dev")
    assert message.startswith("no data for task 'mrpc' split 'dev': pass --data-dir")
    assert message.endswith("could not be reached (huggingface.co: Name or service not known)")


def test_hub_connection_error_during_download(fake_hub, monkeypatch):
    def refuse(path, name=None, split=None):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (LocalEntryNotFoundError)\nmore")

    monkeypatch.setattr(sys.modules["datasets"], "load_dataset", refuse)
    message = data_error(task("rte").load, "train")
    assert "could not be reached (ConnectionError: Couldn't reach 'nyu-mll/glue'" in message


def test_hub_other_error_is_reported(fake_hub, monkeypatch):
    def fail(path, name=None, split=None):
        raise ValueError("Unknown split \"validation\"")

    monkeypatch.setattr(sys.modules["datasets"], "load_dataset", fail)
    message = data_error(task("rte").load, "dev")
    assert message.startswith("loading hub:nyu-mll/glue/rte[validation] for task 'rte' failed: ValueError")


def test_hub_mrpc_columns_and_int_labels(fake_hub):
    fake_hub[("nyu-mll/glue", "mrpc", "validation")] = {
        "sentence1": ["a", "c"], "sentence2": ["b", "d"], "label": [1, 0], "idx": [0, 1]}
    examples = task("mrpc").load("dev")
    assert examples.texts == [("a", "b"), ("c", "d")] and examples.labels == [1, 0]
    assert examples.source == "hub:nyu-mll/glue/mrpc[validation]"
    assert fake_hub["calls"] == [("nyu-mll/glue", "mrpc", "validation")]


def test_hub_mnli_splits_and_columns(fake_hub):
    fake_hub[("nyu-mll/glue", "mnli", "validation_mismatched")] = {
        "premise": ["p1", "p2", "p3"], "hypothesis": ["h1", "h2", "h3"], "label": [2, 0, 1], "idx": [0, 1, 2]}
    fake_hub[("nyu-mll/glue", "mnli", "test_matched")] = {
        "premise": ["p"], "hypothesis": ["h"], "label": [-1], "idx": [0]}
    examples = task("mnli").load("dev_mismatched", limit=2)
    assert examples.texts == [("p1", "h1"), ("p2", "h2")] and examples.labels == [2, 0]
    test = task("mnli").load("test_matched")
    assert test.texts == [("p", "h")] and test.labels == []


def test_hub_snli_drops_unlabeled_rows(fake_hub):
    fake_hub[("stanfordnlp/snli", None, "train")] = {
        "premise": ["a", "b", "c"], "hypothesis": ["x", "y", "z"], "label": [0, -1, 2]}
    examples = task("snli").load("train")
    assert examples.texts == [("a", "x"), ("c", "z")] and examples.labels == [0, 2]


def test_hub_stsb_scores_and_cola_labels(fake_hub):
    fake_hub[("nyu-mll/glue", "stsb", "train")] = {"sentence1": ["a"], "sentence2": ["b"], "label": [3.8], "idx": [0]}
    fake_hub[("nyu-mll/glue", "cola", "train")] = {"sentence": ["Good.", "Bad it."], "label": [1, 0], "idx": [0, 1]}
    assert task("sts-b").load("train").labels == [3.8]
    assert task("cola").load("train").labels == [1, 0]


def test_hub_label_out_of_range(fake_hub):
    fake_hub[("nyu-mll/glue", "rte", "train")] = {"sentence1": ["a"], "sentence2": ["b"], "label": [7]}
    assert "label 7 is out of range" in data_error(task("rte").load, "train")


def test_hub_missing_column(fake_hub):
    fake_hub[("nyu-mll/glue", "qqp", "train")] = {"q1": ["a"], "q2": ["b"], "label": [1]}
    message = data_error(task("qqp").load, "train")
    assert "missing column 'question1'" in message and "q1, q2, label" in message


@pytest.mark.slow
def test_hub_with_a_real_datasets_dataset(online, monkeypatch):
    datasets = pytest.importorskip("datasets")
    served = datasets.Dataset.from_dict({"question": ["Who?", "Why?"], "sentence": ["He.", "So."], "label": [1, 0],
                                         "idx": [0, 1]})
    monkeypatch.setattr(datasets, "load_dataset", lambda path, name=None, split=None: served)
    examples = task("qnli").load("dev")
    assert examples.texts == [("Who?", "He."), ("Why?", "So.")] and examples.labels == [1, 0]


def test_probe_is_skipped_behind_a_proxy(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert hub.probe() is None


def test_probe_reports_an_unreachable_endpoint(monkeypatch):
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    reason = hub.probe(timeout=1.0)
    assert reason is not None and reason.startswith("127.0.0.1:")


# ---------------------------------------------------------------------------------------------- resolution order


def test_file_wins_over_data_dir_and_package(tmp_path):
    path = write(tmp_path / "p.tsv", "sentence1\tsentence2\tlabel\na\tb\t1\n")
    examples = task("demo-paraphrase").load("train", file=path, data_dir=tmp_path)
    assert examples.texts == [("a", "b")] and examples.source == str(path)


def test_data_dir_wins_over_hub(tmp_path, fake_hub):
    (tmp_path / "WNLI").mkdir()
    write(tmp_path / "WNLI" / "dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\t1\n")
    assert task("wnli").load("dev", data_dir=tmp_path).labels == [1]
    assert fake_hub["calls"] == []


@pytest.mark.parametrize("kwargs, fragment", [
    ({"limit": -1}, "task 'sst2': limit must be an integer >= 0 (got -1)"),  # before: a bare ValueError
    ({"limit": "x"}, "task 'sst2': limit must be an integer >= 0 (got 'x')"),  # before: a TypeError
    ({"data_dir": 5}, "task 'sst2': data_dir must be a path (got int)"),
])
def test_the_python_api_refuses_bad_load_arguments_with_mtl_errors(kwargs, fragment):
    from mtl.errors import OptionError

    with pytest.raises(OptionError) as info:
        task("sst2").load("train", **kwargs)
    assert str(info.value) == fragment


def test_a_run_folder_is_a_path():
    from mtl.errors import MtlError
    from mtl.runs.restore import load_run

    with pytest.raises(MtlError, match="a run folder is a path \\(got NoneType\\)"):
        load_run(None)
