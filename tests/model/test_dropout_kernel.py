"""The C++ dropout kernel (mtl._dropout, mtl.model.dropout) and the attention function that uses it
(mtl.model.attention): outputs against direct computations from the kernel's mask, the rate, independence,
gradients, reproducibility, fallbacks, and a training run that uses them."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from mtl.model import attention
from mtl.model import dropout as kd

pytestmark = pytest.mark.skipif(kd._kernel is None, reason="the C++ dropout kernel is not built")


def next_seed() -> int:
    """The seed the next kernel dropout call draws (it draws one int64 from torch's default generator)."""
    state = torch.get_rng_state()
    seed = int(torch.randint(0, 2**63 - 1, (), dtype=torch.int64))
    torch.set_rng_state(state)
    return seed


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_float32_output_is_input_times_mask_over_keep_probability(p):
    torch.manual_seed(1)
    x = torch.randn(3, 50, 70)
    seed = next_seed()
    y = kd.dropout(x, p)
    keep = kd.keep_mask(x.numel(), p, seed).view_as(x)
    expected = torch.where(keep, x / (1 - p), torch.zeros(()))  # 1/(1-p) and 1/(1-p') agree to float precision
    torch.testing.assert_close(y, expected, rtol=1e-6, atol=0)
    assert torch.equal(y != 0, keep & (x != 0))


def test_bfloat16_output_rounds_like_torch():
    torch.manual_seed(2)
    x = (torch.randn(4, 33, 129) * 3).bfloat16()
    seed = next_seed()
    y = kd.dropout(x, 0.1)
    assert y.dtype == torch.bfloat16
    keep = kd.keep_mask(x.numel(), 0.1, seed).view_as(x)
    expected = (x.float() * keep.float() * kd.scale_factor(0.1)).bfloat16()  # torch's float -> bf16 rounding
    assert torch.equal(y.view(torch.int16), expected.view(torch.int16))


def test_nan_and_inf_pass_through_kept_elements():
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 1.0] * 64)
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        keep = kd.keep_mask(x.numel(), 0.5, next_seed())
        y = kd.dropout(x.to(dtype), 0.5).float()
        assert torch.isnan(y[keep & torch.isnan(x)]).all()
        assert (y[keep & torch.isinf(x)] == 2 * x[keep & torch.isinf(x)]).all()
        assert torch.isnan(y[~keep & torch.isinf(x)]).all()  # inf * 0, as torch's x * mask gives


def reference_keep(n: int, p: float, seed: int) -> torch.Tensor:
    """The keep mask written out from csrc/dropout.cpp's definition in Python integers (numpy): keys k0, k1 = the low
    and high words of splitmix64(seed); keep i when lowbias32(lowbias32(i ^ k0) ^ k1) >= round(p·2³²), i < 2³²."""
    import numpy as np

    low = np.uint64(0xFFFFFFFF)

    def lowbias32(x):
        x = x ^ (x >> np.uint64(16))
        x = (x * np.uint64(0x7FEB352D)) & low
        x = x ^ (x >> np.uint64(15))
        x = (x * np.uint64(0x846CA68B)) & low
        return x ^ (x >> np.uint64(16))

    full = (1 << 64) - 1
    z = (seed + 0x9E3779B97F4A7C15) & full
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & full
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & full
    z ^= z >> 31
    k0, k1 = np.uint64(z & 0xFFFFFFFF), np.uint64(z >> 32)
    index = np.arange(n, dtype=np.uint64)
    return torch.from_numpy(lowbias32(lowbias32(index ^ k0) ^ k1) >= round(p * 2**32))


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**62 + 7])
def test_mask_is_the_documented_hash_computed_independently(seed):
    n = 3 * (1 << 16) + 17  # more than one thread's chunk
    expected = reference_keep(n, 0.1, seed)
    assert torch.equal(kd.keep_mask(n, 0.1, seed), expected)
    x = torch.ones(n)
    assert torch.equal(kd._scale(x, 0.1, seed) != 0, expected)  # the kernel's pass itself, on every thread
    torch.manual_seed(0)
    call_seed = next_seed()
    assert torch.equal(kd.dropout(x, 0.1) != 0, reference_keep(n, 0.1, call_seed))


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_rate_is_p_and_neighbours_are_independent(p):
    n = 1 << 20
    keep = kd.keep_mask(n, p, 12345).double()
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(1 - keep.mean().item() - p) < 5 * sigma
    centred = keep - keep.mean()
    for lag in (1, 2, 16, 1024):  # correlation of element i with i + lag
        r = (centred[:-lag] * centred[lag:]).mean() / centred.var()
        assert abs(r.item()) < 5 / math.sqrt(n)
    other = kd.keep_mask(n, p, 12346).double()  # a neighbouring seed: an unrelated mask
    agree = (keep == other).double().mean().item()
    expected = (1 - p) ** 2 + p**2
    assert abs(agree - expected) < 5 * math.sqrt(expected * (1 - expected) / n)


def test_mask_is_the_same_whatever_the_thread_count():
    x = torch.randn(1 << 19)
    one, two, eight = (torch.empty_like(x) for _ in range(3))
    for out, threads in ((one, 1), (two, 2), (eight, 8)):
        kd._kernel.scale(x.numpy(), out.numpy(), 0.3, 99, threads)
    assert torch.equal(one, two) and torch.equal(one, eight)
    assert torch.equal(one != 0, kd.keep_mask(x.numel(), 0.3, 99) & (x != 0))


def test_every_instruction_set_gives_the_same_bits():
    kernel = kd._kernel
    default = kernel.isa()
    x = torch.randn(3 * 65536 + 77)  # vector bodies and scalar tails
    outputs = {}
    try:
        for isa in kernel.available_isas():
            kernel.set_isa(isa)
            f32, bf16 = torch.empty_like(x), torch.empty_like(x.bfloat16())
            kernel.scale(x.numpy(), f32.numpy(), 0.15, 31, 2)
            kernel.scale(x.bfloat16().view(torch.int16).numpy(), bf16.view(torch.int16).numpy(), 0.15, 31, 2)
            outputs[isa] = (f32, bf16)
    finally:
        kernel.set_isa(default)
    keep = kd.keep_mask(x.numel(), 0.15, 31)
    expected = (x.bfloat16().float() * keep.float() * kd.scale_factor(0.15)).bfloat16()
    for isa, (f32, bf16) in outputs.items():
        assert torch.equal(f32 != 0, keep & (x != 0)), isa
        assert torch.equal(f32, outputs["base"][0]), isa
        assert torch.equal(bf16.view(torch.int16), expected.view(torch.int16)), isa
    with pytest.raises(ValueError, match="dropout kernel: instruction set .no-such-isa. is not available on this CPU"):
        kernel.set_isa("no-such-isa")


def test_in_place_gives_the_same_as_out_of_place():
    x = torch.randn(1000)
    out = torch.empty_like(x)
    kd._kernel.scale(x.numpy(), out.numpy(), 0.2, 7, 1)
    kd._kernel.scale(x.numpy(), x.numpy(), 0.2, 7, 1)
    assert torch.equal(out, x)


def test_gradient_uses_the_forward_mask():
    torch.manual_seed(3)
    x = torch.randn(8, 300, requires_grad=True)
    w = torch.randn(8, 300)
    seed = next_seed()
    y = kd.dropout(x, 0.25)
    (grad,) = torch.autograd.grad((y * w).sum(), x)
    keep = kd.keep_mask(x.numel(), 0.25, seed).view_as(x)
    torch.testing.assert_close(grad, w * keep / 0.75, rtol=1e-6, atol=0)


def test_batched_backward_uses_the_forward_mask():
    """autograd.grad(is_grads_batched=True), as the Jacobian methods (torchjd) call it: a vmapped backward."""
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(8)
        x = torch.randn(5, 7, dtype=dtype, requires_grad=True)
        seed = next_seed()
        y = kd.dropout(x, 0.4)
        basis = torch.eye(35, dtype=dtype).view(35, 5, 7)
        (jacobian,) = torch.autograd.grad(y, x, basis, is_grads_batched=True)
        keep = kd.keep_mask(35, 0.4, seed).view(5, 7)
        expected = torch.diag((keep.float() * kd.scale_factor(0.4)).flatten()).view(35, 5, 7).to(dtype)
        assert torch.equal(jacobian, expected)


def test_torch_func_transforms_fall_back_to_torch_dropout():
    x = torch.randn(200)
    gradient = torch.func.grad(lambda t: kd.dropout(t, 0.5).sum())(x)
    assert set(gradient.unique().tolist()) <= {0.0, 2.0} and 0 < (gradient == 0).sum() < 200


def test_reproducible_under_manual_seed_and_fresh_masks_each_call():
    x = torch.ones(10_000)
    torch.manual_seed(5)
    a, b = kd.dropout(x, 0.5), kd.dropout(x, 0.5)
    torch.manual_seed(5)
    assert torch.equal(kd.dropout(x, 0.5), a)
    assert not torch.equal(a, b)


def test_fallbacks_are_torch_dropout():
    x = torch.randn(64, 64)
    assert kd.dropout(x, 0.5, training=False) is x
    assert torch.equal(kd.dropout(x, 0.0), x)
    assert torch.equal(kd.dropout(x, 1.0), torch.zeros_like(x))
    x64 = x.double()  # not a kernel dtype: torch's generator and masks
    assert not kd.uses_kernel(x64, 0.5)
    torch.manual_seed(4)
    ours = kd.dropout(x64, 0.5)
    torch.manual_seed(4)
    assert torch.equal(ours, torch.nn.functional.dropout(x64, 0.5))


def test_kernel_rejects_bad_input_with_value_errors():
    x = torch.zeros(10)
    with pytest.raises(ValueError, match="10 elements, out 9"):
        kd._kernel.scale(x.numpy(), torch.zeros(9).numpy(), 0.1, 0, 1)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        kd._kernel.scale(x.numpy(), x.numpy(), 1.0, 0, 1)
    with pytest.raises(ValueError, match="float32 or both bfloat16"):
        kd._kernel.scale(x.double().numpy(), x.double().numpy(), 0.1, 0, 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        kd._kernel.scale(torch.zeros(4, 4).t().numpy(), torch.zeros(4, 4).numpy(), 0.1, 0, 1)


def test_module_swap_keeps_rates_and_state_dict():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.2),
                                torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(4, 2)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert kd.use_kernel_dropout(model) == 2
    assert isinstance(model[1], kd.KernelDropout) and model[1].p == 0.2 and model[2][0].p == 0.3
    assert kd.use_kernel_dropout(model) == 0  # already swapped
    assert model.state_dict().keys() == before.keys()


@pytest.mark.parametrize("variable", ["MTL_DROPOUT_BACKEND", "MTL_MEMORY_BACKEND"])
@pytest.mark.slow
def test_unknown_backend_value_is_a_one_line_error(tmp_path, variable):
    env = {**os.environ, variable: "fast"}
    result = subprocess.run([sys.executable, "-m", "mtl.cli", "run", "--backbone", "tiny", "--weighting", "mamt",
                             "--max-steps", "1", "-o", str(tmp_path / "run"), "--quiet"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"Error: {variable} must be 'cpp' or 'torch', got 'fast'"
    assert "Traceback" not in result.stderr


# ----- attention


class Layer(torch.nn.Module):
    is_causal = False

    def __init__(self, groups: int = 1):
        super().__init__()
        self.num_key_value_groups = groups


def explicit_attention(q, k, v, mask, p, seed, groups=1):
    """softmax(QKᵀ/√d + mask) ⊙ keep / (1 − p) · V, [B, L, H, d]; from the formula, not from the module."""
    k, v = (t.repeat_interleave(groups, dim=1) for t in (k, v))
    scores = q.float() @ k.float().transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e30) if mask.dtype == torch.bool else scores + mask
    probabilities = scores.softmax(-1)
    if p > 0:
        keep = kd.keep_mask(probabilities.numel(), p, seed).view_as(probabilities)
        probabilities = probabilities * keep / (1 - p)
    return (probabilities @ v.float()).transpose(1, 2)


def qkv(batch=3, heads=4, length=11, dim=8, kv_heads=None, dtype=torch.float32):
    torch.manual_seed(6)
    shapes = [(batch, heads, length, dim)] + [(batch, kv_heads or heads, length, dim)] * 2
    return [torch.randn(*s, dtype=dtype, requires_grad=True) for s in shapes]


def padding_mask(batch=3, length=11):
    mask = torch.ones(batch, 1, length, length, dtype=torch.bool)
    mask[1, :, :, 6:] = False
    mask[2, :, :, 9:] = False
    return mask


@pytest.mark.parametrize("mask_kind", ["none", "bool", "additive"])
def test_training_attention_is_the_formula_with_the_kernel_mask(mask_kind):
    q, k, v = qkv()
    mask = {"none": None, "bool": padding_mask(),
            "additive": torch.where(padding_mask(), 0.0, -1e9)}[mask_kind]
    layer = Layer().train()
    seed = next_seed()
    out, weights = attention.attention_forward(layer, q, k, v, mask, dropout=0.2)
    assert weights is None and out.shape == (3, 11, 4, 8)
    expected = explicit_attention(q, k, v, mask, 0.2, seed)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(out.sum(), (q, k, v))
    expected_grads = torch.autograd.grad(expected.sum(), (q, k, v))
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_grouped_query_attention_repeats_key_value_heads():
    q, k, v = qkv(heads=4, kv_heads=2)
    seed = next_seed()
    out, _ = attention.attention_forward(Layer(groups=2).train(), q, k, v, padding_mask(), dropout=0.1)
    torch.testing.assert_close(out, explicit_attention(q, k, v, padding_mask(), 0.1, seed, groups=2),
                               rtol=1e-5, atol=1e-5)


def test_bfloat16_attention_stays_in_bfloat16_and_is_close_to_the_formula():
    q, k, v = qkv(dtype=torch.bfloat16)
    seed = next_seed()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = attention.attention_forward(Layer().train(), q, k, v, padding_mask(), dropout=0.1)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), explicit_attention(q, k, v, padding_mask(), 0.1, seed),
                               rtol=0.05, atol=0.05)


def test_evaluation_and_unsupported_cases_are_transformers_sdpa():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    q, k, v = qkv()
    layer = Layer().eval()
    ours, _ = attention.attention_forward(layer, q, k, v, padding_mask(), dropout=0.0)
    theirs, _ = sdpa_attention_forward(layer, q, k, v, padding_mask(), dropout=0.0)
    assert torch.equal(ours, theirs)
    torch.manual_seed(0)  # causal: sdpa with torch's own dropout, the same generator draws
    ours, _ = attention.attention_forward(Layer().train(), q, k, v, None, dropout=0.3, is_causal=True)
    torch.manual_seed(0)
    theirs, _ = sdpa_attention_forward(Layer().train(), q, k, v, None, dropout=0.3, is_causal=True)
    assert torch.equal(ours, theirs)


def tiny_bert(attention_dropout: float):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=attention_dropout)
    return BertModel(config)


def test_a_bert_with_padding_attends_like_sdpa(monkeypatch):
    """A BERT switched to mtl_sdpa, in training with its attention dropout made the identity, equals the same
    BERT on transformers' sdpa without dropout: masks arrive and are applied the same way."""
    model = tiny_bert(0.1)
    ids = torch.randint(1, 100, (3, 12))
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    reference = model.eval()(input_ids=ids, attention_mask=mask).last_hidden_state
    assert attention.use_kernel_attention(model) and model.config._attn_implementation == attention.NAME
    assert not attention.use_kernel_attention(model)  # already switched
    calls = []
    monkeypatch.setattr(attention, "kernel_dropout", lambda x, p, training: calls.append(p) or x)
    ours = model.train()(input_ids=ids, attention_mask=mask).last_hidden_state
    assert calls == [0.1, 0.1]  # both layers took mtl's path
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


def test_exported_config_names_transformers_attention(tmp_path):
    model = tiny_bert(0.1)
    attention.use_kernel_attention(model)
    model.save_pretrained(tmp_path)
    assert attention.NAME not in (tmp_path / "config.json").read_text()
    attention.plain_attention(model.config)
    assert model.config._attn_implementation == "sdpa"


def test_a_cpu_training_run_uses_the_kernels_and_exports_plain_sdpa(tmp_path):
    from transformers import AutoModelForSequenceClassification

    from mtl.runs.config import RunConfig
    from mtl.training.trainer import Trainer

    config = RunConfig(target="demo-paraphrase", aux=["demo-sentiment"], backbone="tiny", epochs=1, batch_size=16,
                       max_length=48, max_steps=4, output=str(tmp_path / "run"), seed=0)
    trainer = Trainer(config)
    trainer.train()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["dropout_backend"] == "cpp"
    swapped = [m for m in trainer.model.modules() if isinstance(m, torch.nn.Dropout)]
    assert swapped and all(isinstance(m, kd.KernelDropout) for m in swapped)
    assert trainer.model.backbone.config._attn_implementation == attention.NAME
    exported = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "model")
    assert exported.config._attn_implementation == "sdpa"
    assert not any(isinstance(m, kd.KernelDropout) for m in exported.modules())
