"""The tokenised-data cache (issue 28, "data on Arrow"): written once, read again without tokenising, keyed by the
data, the tokenizer and max_length, shared by concurrent processes, switched off by --no-data-cache; and reading
and encoding a large split stays small in memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mtl
from mtl.data import cache
from mtl.data.batching import encode

SENTENCES = ["a cat sat on the mat", "the dog ran far away", "it rains", "we like long walks in the park"]


def write_pairs(path: Path, n: int, offset: int = 0) -> Path:
    with open(path, "w", encoding="utf-8") as out:
        out.write("sentence1\tsentence2\tlabel\n")
        for i in range(n):
            j = i + offset
            out.write(f"{SENTENCES[j % 4]} {j}\t{SENTENCES[(j * 7 + 1) % 4]}\t"
                      f"{('not_paraphrase', 'paraphrase')[j % 3 == 0]}\n")
    return path


class CountingTokenizer:
    """A tokenizer that counts the texts it is asked to tokenise (everything else is the wrapped one's)."""

    def __init__(self, inner):
        self.inner, self.texts = inner, 0

    def __call__(self, first, second=None, **kwargs):
        self.texts += len(first)
        return self.inner(first, second, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from mtl.plugins.backbones.minilm import model_path

    return AutoTokenizer.from_pretrained(model_path())


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.ENV, str(folder))
    return folder


def caches(store: Path) -> list[Path]:
    return sorted(p for p in store.iterdir() if not p.name.startswith(".")) if store.is_dir() else []


def test_written_once_then_read_without_tokenising(tmp_path, store, tokenizer):
    task = mtl.create("task", "demo-paraphrase")
    file = write_pairs(tmp_path / "train.tsv", 40)
    first_tok, second_tok = CountingTokenizer(tokenizer), CountingTokenizer(tokenizer)
    first = encode(task.load("train", file=str(file)), first_tok, 32, task)
    assert first_tok.texts == 40 and len(caches(store)) == 1
    second = encode(task.load("train", file=str(file)), second_tok, 32, task)
    assert second_tok.texts == 0  # read from the cache
    assert len(caches(store)) == 1
    memory = encode(task.load("train", file=str(file)), tokenizer, 32, task, cache=False)
    assert len(first) == len(second) == len(memory) == 40
    for data in (first, second):
        assert data.lengths == memory.lengths
        assert data.labels.tolist() == memory.labels.tolist() == [int(i % 3 == 0) for i in range(40)]
        assert data.rows([3, 0, 7]) == memory.rows([3, 0, 7])
        batch, expected = data.collate([5, 1]), memory.collate([5, 1])
        assert all(batch[k].equal(expected[k]) for k in expected)
    ids = tokenizer(f"{SENTENCES[2]} 2", SENTENCES[3], truncation=True, max_length=32)["input_ids"]
    assert second.rows([2])["input_ids"] == [ids]  # what the tokenizer itself gives for row 2


def test_a_changed_file_max_length_or_tokenizer_is_a_new_cache(tmp_path, store, tokenizer):
    task = mtl.create("task", "demo-paraphrase")
    file = write_pairs(tmp_path / "train.tsv", 12)
    encode(task.load("train", file=str(file)), tokenizer, 32, task)
    encode(task.load("train", file=str(file)), tokenizer, 16, task)
    assert len(caches(store)) == 2
    write_pairs(file, 12, offset=1)  # same size, other content, later modification time
    os.utime(file, ns=(os.stat(file).st_atime_ns, os.stat(file).st_mtime_ns + 10**9))
    changed = encode(task.load("train", file=str(file)), tokenizer, 32, task)
    assert len(caches(store)) == 3
    assert changed.rows([0])["input_ids"][0] == tokenizer(f"{SENTENCES[1]} 1", SENTENCES[0], truncation=True,
                                                          max_length=32)["input_ids"]
    cased = type(tokenizer).from_pretrained(tokenizer.name_or_path, do_lower_case=False)
    encode(task.load("train", file=str(file)), cased, 32, task)
    assert len(caches(store)) == 4
    keys = {json.loads((p / cache.META_FILE).read_text())["max_length"] for p in caches(store)}
    assert keys == {16, 32}


def test_a_limit_reads_the_first_rows_of_the_whole_split(tmp_path, store, tokenizer):
    task = mtl.create("task", "demo-paraphrase")
    file = write_pairs(tmp_path / "train.tsv", 30)
    whole = encode(task.load("train", file=str(file)), CountingTokenizer(tokenizer), 32, task)
    counting = CountingTokenizer(tokenizer)
    head = encode(task.load("train", file=str(file), limit=10), counting, 32, task)
    assert counting.texts == 0 and len(caches(store)) == 1
    assert len(head) == head.examples == 10 and head.rows(range(10)) == whole.rows(range(10))
    alone = tmp_path / "alone"  # no whole split cached: the 10 rows are cached on their own
    os.environ[cache.ENV] = str(alone)
    counting = CountingTokenizer(tokenizer)
    assert encode(task.load("train", file=str(file), limit=10), counting, 32, task).rows(range(10)) == \
        whole.rows(range(10))
    assert counting.texts == 10


def test_no_data_cache_writes_nothing(tmp_path, store, tokenizer):
    task = mtl.create("task", "demo-paraphrase")
    file = write_pairs(tmp_path / "train.tsv", 12)
    data = encode(task.load("train", file=str(file)), tokenizer, 32, task, cache=False)
    assert len(data) == 12 and not store.exists()
    from mtl.runs.config import RunConfig

    assert RunConfig(data_cache=False).data_cache is False


def test_the_location_follows_hf_conventions(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.ENV, raising=False)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    assert cache.root() == tmp_path / "hf" / "mtl"
    monkeypatch.delenv("HF_DATASETS_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert cache.root() == tmp_path / "home" / "datasets" / "mtl"
    monkeypatch.setenv(cache.ENV, str(tmp_path / "mine"))
    assert cache.root() == tmp_path / "mine"


@pytest.mark.slow
def test_no_data_cache_run_writes_no_cache(tmp_path):
    from tests.conftest import TINY_RUN, run_mtl

    store = tmp_path / "cache"
    result = run_mtl("run", "--target", "demo-paraphrase", *TINY_RUN, "--limit", "16", "--eval-limit", "8",
                     "--no-data-cache", "--output", str(tmp_path / "run"), env={cache.ENV: str(store)})
    assert result.returncode == 0, result.stderr
    assert not store.exists()
    result = run_mtl("run", "--target", "demo-paraphrase", *TINY_RUN, "--limit", "16", "--eval-limit", "8",
                     "--output", str(tmp_path / "run2"), env={cache.ENV: str(store)})
    assert result.returncode == 0, result.stderr
    assert len(caches(store)) == 2  # the training split and the dev split


ENCODE = textwrap.dedent("""
    import sys, time
    import mtl
    from transformers import AutoTokenizer
    from mtl.data import cache
    from mtl.data.batching import encode
    from mtl.plugins.backbones.minilm import model_path

    calls = []
    original = cache._tokenise
    def counted(*args, **kwargs):
        calls.append(1)
        time.sleep(1.0)  # the other process asks while this one builds
        return original(*args, **kwargs)
    cache._tokenise = counted
    tokenizer = AutoTokenizer.from_pretrained(model_path())
    task = mtl.create("task", "demo-paraphrase")
    open(sys.argv[2], "w").close()
    while not all(__import__("os").path.exists(p) for p in sys.argv[3:]):
        time.sleep(0.01)
    data = encode(task.load("train", file=sys.argv[1]), tokenizer, 32, task)
    print(len(calls), len(data), sum(data.lengths))
""")


@pytest.mark.slow
def test_two_processes_build_one_cache(tmp_path, store):
    file = write_pairs(tmp_path / "train.tsv", 200)
    ready = [str(tmp_path / f"ready{i}") for i in range(2)]
    env = {**os.environ, cache.ENV: str(store)}
    procs = [subprocess.Popen([sys.executable, "-c", ENCODE, str(file), ready[i], *ready], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outputs]
    built = [int(o[0].split()[0]) for o in outputs]
    assert sorted(built) == [0, 1]  # one built it, the other waited and read it
    assert outputs[0][0].split()[1:] == outputs[1][0].split()[1:]
    assert len(caches(store)) == 1


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


MEMORY = textwrap.dedent("""
    import sys
    import mtl
    from transformers import AutoTokenizer
    from mtl.data.batching import encode
    from mtl.plugins.backbones.minilm import model_path
    from tests.data.test_cache import rss_mb

    tokenizer = AutoTokenizer.from_pretrained(model_path())
    task = mtl.create("task", "demo-paraphrase")
    tokenizer("warm", "up")
    before = rss_mb()
    data = encode(task.load("train", file=sys.argv[1]), tokenizer, 64, task)
    stream_lengths = data.lengths
    batch = data.collate(list(range(0, len(data), 997)))
    print(len(data), round(rss_mb() - before))
""")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_a_large_split_stays_small_in_memory(tmp_path, store):
    file = write_pairs(tmp_path / "train.tsv", 100_000)
    env = {**os.environ, cache.ENV: str(store)}
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", MEMORY, str(file)], env=env, capture_output=True, text=True,
                            cwd=root, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    rows, growth = (int(x) for x in result.stdout.split())
    assert rows == 100_000
    assert growth < 300, f"RSS grew by {growth} MB encoding 100,000 pairs"


@pytest.mark.parametrize("name, text", [
    ("pairs.tsv", "\ufeffsentence1\tsentence2\tlabel\n\"a\tb \" c\t paraphrase \n\nx\ty\t0\n"),
    ("pairs.csv", 'sentence1,sentence2,label\n"a, ""quoted""\nline",b,1\nc,d,not_paraphrase\n'),
    ("extra.tsv", "idx\tsentence1\tsentence2\tlabel\n1\ta\tb\tparaphrase\n2\tc\td\t1\textra\n"),
])
def test_the_arrow_reader_reads_as_the_row_by_row_reader(tmp_path, monkeypatch, name, text):
    from mtl.data import tables

    task = mtl.create("task", "demo-paraphrase")
    file = tmp_path / name
    file.write_text(text, encoding="utf-8")
    fast = task.load("train", file=str(file))
    monkeypatch.setattr(tables, "read_delimited", lambda *a, **k: None)
    slow = task.load("train", file=str(file))
    assert (fast.texts, fast.labels, len(fast)) == (slow.texts, slow.labels, len(slow))
    assert all(type(label) is int for label in fast.labels) and fast.labels
    assert fast.fingerprint == slow.fingerprint
    assert (fast.table is not None) == (name != "extra.tsv")  # a row with more fields: the row-by-row reader


def test_the_arrow_reader_converts_scores_and_skips_labels(tmp_path):
    similarity = mtl.create("task", "demo-similarity")
    file = tmp_path / "scores.tsv"
    file.write_text(f"sentence1\tsentence2\t{similarity.label_column}\na\tb\t 4.5\nc\td\t0\n", encoding="utf-8")
    examples = similarity.load("train", file=str(file))
    assert examples.table is not None and examples.labels == [4.5, 0.0]
    assert examples.head(1).texts == [("a", "b")] and examples.head(1).fingerprint["head"] == 1
    snli = mtl.create("task", "snli")
    file = tmp_path / "snli.tsv"
    file.write_text(f"sentence1\tsentence2\t{snli.label_column}\na\tb\t-\nc\td\tneutral\ne\tf\t-\ng\th\t0\n")
    examples = snli.load("train", file=str(file), limit=1)
    assert examples.table is not None and examples.texts == [("c", "d")] and examples.labels == [1]
    assert snli.load("train", file=str(file)).labels == [1, 0]  # the rows labelled "-" dropped

