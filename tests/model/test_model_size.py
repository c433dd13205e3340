"""A model larger than the machine is a one-line error estimated before it is built.

Found by a fault sweep: `mtl run --backbone tiny --set tiny.layers=99999999999999999999` built layers until it was
killed (after 60 s by a timeout; for ever without one).
"""

from __future__ import annotations

import time

import pytest
from conftest import run_mtl
from transformers import BertConfig, BertModel

import mtl
from mtl.model import size

CONFIGS = [
    dict(vocab_size=100, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
         max_position_embeddings=32),
    dict(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
         max_position_embeddings=512),
    dict(vocab_size=7, hidden_size=12, num_hidden_layers=3, num_attention_heads=3, intermediate_size=5,
         max_position_embeddings=9, type_vocab_size=4),
]


@pytest.mark.parametrize("values", CONFIGS)
def test_the_estimate_is_the_parameter_count_of_the_built_model(values):
    config = BertConfig(**values)
    built = sum(p.numel() for p in BertModel(config).parameters())
    assert size.bert_parameters(config) == built
    assert size.bert_parameters(config.to_dict()) == built  # a mapping of the same sizes


def test_sizes_the_config_lacks_count_zero():
    # no embeddings, no layers: the embeddings' LayerNorm (2h) and the pooler (h*h + h)
    assert size.bert_parameters({"hidden_size": 4}) == 2 * 4 + 4 * 4 + 4
    assert size.bert_parameters(object()) == 0


def test_a_model_that_fits_passes_and_one_that_does_not_is_one_line():
    config = BertConfig(**CONFIGS[1])
    parameters = sum(p.numel() for p in BertModel(config).parameters())
    assert mtl.check_model_size(config) == parameters  # the tiny default on this machine's memory
    assert mtl.check_model_size(config, memory=16 * parameters) == parameters
    with pytest.raises(ValueError) as info:
        mtl.check_model_size(config, memory=16 * parameters - 1)
    assert str(info.value) == (
        f"vocab_size=30522, hidden_size=64, num_hidden_layers=2, intermediate_size=128, max_position_embeddings=512, "
        f"type_vocab_size=2: about {parameters:.1e} parameters, {16 * parameters / 2**20:.1f} MB to train (weights, "
        f"gradients, AdamW's moments), more than this machine's {(16 * parameters - 1) / 2**20:.1f} MB of available "
        f"memory (estimated before building it)")


def test_unknown_memory_checks_nothing(monkeypatch):
    monkeypatch.setattr(size, "available_memory", lambda: None)
    assert size.check_model_size({"hidden_size": 10**9, "num_hidden_layers": 10**9}) > 10**27


def test_available_memory_is_what_proc_meminfo_says():
    with open("/proc/meminfo") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    assert abs(size.available_memory() - kb * 1024) < 2**30  # read a moment later


@pytest.mark.parametrize("n, text", [
    (930, "930 B"), (1536, "1.5 KB"), (int(21.3 * 2**30), "21.3 GB"), (5 * 2**40, "5.0 TB"), (17 * 2**70, "17.0 ZB"),
    (1023 * 2**80, "1023.0 YB"), (2**90, "1.2e+27 B"), (10**400, "1.0e+400 B"),
])
def test_sizes_go_past_gigabytes_and_yottabytes(n, text):
    assert size.size_text(n) == text


@pytest.mark.slow
@pytest.mark.parametrize("option, fragment", [
    ("tiny.layers=99999999999999999999", "layers=99999999999999999999, hidden_size=64, intermediate_size=128: about "
                                         "3.3e+24 parameters, 44.3 YB to train"),
    ("tiny.hidden_size=" + "1" + "0" * 50, "about 9.0e+100 parameters, 1.4e+102 B to train"),
])
def test_the_command_line_refuses_a_model_larger_than_the_machine_in_seconds(tmp_path, option, fragment):
    out = tmp_path / "run"
    started = time.monotonic()
    result = run_mtl("run", "--target", "demo-paraphrase", "--backbone", "tiny", "--set", option, "--max-steps", "1",
                     "-o", str(out))
    assert time.monotonic() - started < 60  # before: it built layers until killed
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: backbone 'tiny': "), result.stderr
    assert fragment in lines[0] and "(estimated before building it)" in lines[0]
    assert "more than this machine's" in lines[0]
    assert not out.exists()
