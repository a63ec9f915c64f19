"""The blocked bfloat16 attention used on CPUs with AVX512-BF16 but no AMX.

It must compute what transformers' SDPA attention computes (to bfloat16 rounding) for every mask
form transformers passes, give the same numbers however the work is cut into blocks, hand anything
it was not written for to SDPA unchanged, and be chosen only where it measured faster.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from instructor_integrations import InstructorEncoder
from instructor_integrations._engine import cpu_attention as _cpu_attention
from instructor_integrations._engine import runner as runner_module

from ..conftest import TINY

MODULE = types.SimpleNamespace(is_causal=False)


def _qkv(batch: int = 3, heads: int = 4, length: int = 10, dim: int = 8) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    # transformers hands attention (batch, heads, len, dim) views of (batch, len, heads, dim) tensors.
    return [
        torch.randn(batch, length, heads, dim, generator=generator).transpose(1, 2).to(torch.bfloat16) for _ in range(3)
    ]


def _padding(batch: int, length: int) -> torch.Tensor:
    """transformers' SDPA mask for right padding: (batch, 1, q, k), True where a key is attended."""
    lengths = torch.tensor([length, length // 2, 1] + [length] * (batch - 3))[:batch]
    keep = torch.arange(length)[None, :] < lengths[:, None]
    return keep[:, None, None, :].expand(batch, 1, length, length)


def _reference(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, **kwargs: object) -> torch.Tensor:
    """transformers' SDPA attention in float32 on the same (bfloat16) inputs."""
    out, _ = sdpa_attention_forward(MODULE, query.float(), key.float(), value.float(), **kwargs)  # type: ignore[arg-type]
    return out


def _blocked(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, **kwargs: object) -> torch.Tensor:
    out, weights = _cpu_attention._blocked_attention(MODULE, query, key, value, **kwargs)  # type: ignore[arg-type]
    assert weights is None
    assert out.dtype == torch.bfloat16
    return out.float()


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float", "bias+bool"])
def test_matches_sdpa_attention_for_each_mask_form(mask_kind: str) -> None:
    query, key, value = _qkv()
    kwargs: dict[str, object] = {"attention_mask": None}
    if mask_kind in ("bool", "bias+bool"):
        kwargs["attention_mask"] = _padding(3, 10)
    if mask_kind == "float":
        kwargs["attention_mask"] = torch.zeros(3, 1, 1, 10).masked_fill(~_padding(3, 10)[:, :, :1], -1e4)
    if mask_kind == "bias+bool":  # T5: relative-position bias shared by the batch, scores not scaled
        kwargs["position_bias"] = torch.randn(1, 4, 10, 10, generator=torch.Generator().manual_seed(1))
        kwargs["scaling"] = 1.0
    expected = _reference(query, key, value, **{**kwargs, "attention_mask": _float(kwargs["attention_mask"])})
    got = _blocked(
        query,
        key,
        value,
        **{
            **kwargs,
            "attention_mask": _bf16(kwargs["attention_mask"]),
            "position_bias": _bf16(kwargs.get("position_bias")),
        },
    )
    assert got.shape == (3, 10, 4, 8)
    # bfloat16 keeps 8 bits: outputs of size ~1 agree to a few hundredths, never more.
    assert torch.allclose(got, expected, atol=0.05, rtol=0.02), (got - expected).abs().max()


def _float(mask: object) -> object:
    return mask.float() if isinstance(mask, torch.Tensor) and mask.is_floating_point() else mask


def _bf16(tensor: object) -> object:
    if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
        return tensor.to(torch.bfloat16)
    return tensor


def test_padded_keys_get_no_weight() -> None:
    query, key, value = _qkv()
    mask = _padding(3, 10)
    got = _blocked(query, key, value, attention_mask=mask)
    # The third row attends to its first key only: every query position returns that key's value.
    expected = value[2, :, 0, :].float()  # (heads, dim)
    assert torch.allclose(got[2], expected[None].expand(10, -1, -1), atol=1e-2)
    # Changing the padded keys' values changes nothing.
    value2 = value.clone()
    value2[1, :, 5:, :] = 100.0
    assert torch.equal(_blocked(query, key, value2, attention_mask=mask)[:2], got[:2])


@pytest.mark.parametrize("block_bytes", [10 * 10 * 2, 2 * 10 * 10 * 2, 4 * 10 * 10 * 2, 2 * 4 * 10 * 10 * 2, 10**9])
def test_same_numbers_however_the_work_is_blocked(monkeypatch: pytest.MonkeyPatch, block_bytes: int) -> None:
    """One head per block, two heads, a whole sample, two samples, everything at once."""
    query, key, value = _qkv(batch=5)
    bias = torch.randn(1, 4, 10, 10, generator=torch.Generator().manual_seed(2)).to(torch.bfloat16)
    mask = _padding(5, 10)
    monkeypatch.setattr(_cpu_attention, "BLOCK_BYTES", 12 * 10 * 10 * 2)
    expected = _blocked(query, key, value, attention_mask=mask, position_bias=bias, scaling=1.0)
    monkeypatch.setattr(_cpu_attention, "BLOCK_BYTES", block_bytes)
    got = _blocked(query, key, value, attention_mask=mask, position_bias=bias, scaling=1.0)
    assert torch.equal(got, expected)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"dtype": torch.float32}, "float32"),
        ({"module": types.SimpleNamespace(is_causal=True)}, "causal module"),
        ({"is_causal": True}, "causal call"),
        ({"dropout": 0.1}, "dropout"),
        ({"module": types.SimpleNamespace(is_causal=False, num_key_value_groups=2)}, "grouped-query"),
        ({"block_bytes": 10 * 10 * 2 - 1}, "one head's scores larger than a block"),
    ],
)
def test_what_it_was_not_written_for_goes_to_sdpa(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, object], why: str
) -> None:
    calls: list[str] = []

    def fake_sdpa(*args: object, **kwargs: object) -> tuple[str, None]:
        calls.append(why)
        return "sdpa", None

    monkeypatch.setattr("transformers.integrations.sdpa_attention.sdpa_attention_forward", fake_sdpa)
    if "block_bytes" in change:
        monkeypatch.setattr(_cpu_attention, "BLOCK_BYTES", change["block_bytes"])
    query, key, value = (t.to(change.get("dtype", torch.bfloat16)) for t in _qkv())  # type: ignore[arg-type]
    kwargs = {k: v for k, v in change.items() if k in ("is_causal", "dropout")}
    module = change.get("module", MODULE)
    out, _ = _cpu_attention._blocked_attention(module, query, key, value, None, **kwargs)  # type: ignore[arg-type]
    assert out == "sdpa"
    assert calls == [why]


@pytest.fixture
def cpu_without_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "cpu_has_fast_bf16", lambda: True)
    monkeypatch.setattr(runner_module, "cpu_has_amx", lambda: False)
    monkeypatch.setattr("instructor_integrations._engine.runtime.cpu_has_fast_bf16", lambda: True)


def _attention(encoder: InstructorEncoder) -> str:
    return str(encoder.model[0].auto_model.config._attn_implementation)


def test_chosen_for_fast_on_a_cpu_without_amx(cpu_without_amx: None, golden: dict) -> None:
    fast = InstructorEncoder(str(TINY), device="cpu", precision="fast")
    assert fast.plan.weight_dtype == torch.bfloat16
    assert _attention(fast) == _cpu_attention.ATTENTION_NAME
    vectors = fast.encode_pairs(golden["pairs"])
    expected = np.asarray(golden["pair_embeddings"], dtype=np.float32)
    assert np.all(np.isfinite(vectors))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(vectors * expected, axis=1))) >= 0.999


def test_not_chosen_where_it_was_not_measured_faster(cpu_without_amx: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _attention(InstructorEncoder(str(TINY), device="cpu", precision="exact")) == "sdpa"
    assert _attention(InstructorEncoder(str(TINY), device="cpu", precision="fast", compile=True)) == "sdpa"
    monkeypatch.setattr(runner_module, "cpu_has_amx", lambda: True)
    assert _attention(InstructorEncoder(str(TINY), device="cpu", precision="fast")) == "sdpa"


def test_leaves_models_without_sdpa_alone() -> None:
    config = types.SimpleNamespace(_attn_implementation="eager", is_decoder=False)
    backbone = types.SimpleNamespace(config=config, set_attn_implementation=lambda name: pytest.fail(name))
    assert not _cpu_attention.use_blocked_cpu_attention(backbone)
    assert not _cpu_attention.use_blocked_cpu_attention(None)


def test_t5_bias_view_is_copied_once_per_forward_pass_and_released() -> None:
    """T5's bias is a (1, heads, q, k) view of a (q, k, heads) tensor: same numbers as a contiguous
    bias, one copy shared by the layers of a forward pass, nothing kept after the last layer."""
    query, key, value = _qkv()
    bias = torch.randn(10, 10, 4, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16).permute(2, 0, 1)[None]
    assert not bias.is_contiguous()
    mask = _padding(3, 10)
    expected = _blocked(query, key, value, attention_mask=mask, position_bias=bias.contiguous(), scaling=1.0)
    config = types.SimpleNamespace(num_layers=3)
    copies = []
    for layer in (0, 1, 2):
        layer_module = types.SimpleNamespace(is_causal=False, layer_idx=layer, config=config)
        out, _ = _cpu_attention._blocked_attention(
            layer_module,  # type: ignore[arg-type]
            query,
            key,
            value,
            mask,
            position_bias=bias,
            scaling=1.0,
        )
        assert torch.equal(out.float(), expected)
        entry = getattr(_cpu_attention._state, "bias", None)
        copies.append(None if entry is None else entry[1])
    assert copies[0] is not None and copies[0].is_contiguous()
    assert copies[1] is copies[0]  # the second layer reads the first layer's copy
    assert copies[2] is None  # released after the last layer


@pytest.mark.parametrize(
    ("mask_kind", "block_bytes"),
    [("bool", 4 * 10 * 10 * 2), ("float", 4 * 10 * 10 * 2), ("bool", 2 * 10 * 10 * 2), ("float shared", 10**6)],
)
def test_masks_added_inside_the_first_matmul(monkeypatch: pytest.MonkeyPatch, mask_kind: str, block_bytes: int) -> None:
    """One sample per block (or a mask shared by the batch): the mask goes in as baddbmm's input.

    Same results as SDPA, and as the separate masking pass of multi-sample blocks.
    """
    query, key, value = _qkv()
    keep = _padding(3, 10)
    mask: torch.Tensor = keep
    if mask_kind == "float":
        mask = torch.zeros(3, 1, 1, 10).masked_fill(~keep[:, :, :1], -1e4)
    if mask_kind == "float shared":  # the last two keys masked for every sample
        mask = torch.zeros(1, 1, 1, 10)
        mask[..., 8:] = -1e4
    expected = _reference(query, key, value, attention_mask=mask)
    monkeypatch.setattr(_cpu_attention, "BLOCK_BYTES", 12 * 10 * 10 * 2)
    separate = _blocked(query, key, value, attention_mask=mask)
    monkeypatch.setattr(_cpu_attention, "BLOCK_BYTES", block_bytes)
    betas: list[object] = []
    baddbmm = torch.baddbmm

    def spy(*args: object, **kwargs: object) -> torch.Tensor:
        betas.append(kwargs.get("beta", 1))  # 0 means a separate masking pass follows
        return baddbmm(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch, "baddbmm", spy)
    got = _blocked(query, key, value, attention_mask=mask)
    assert betas and all(beta == 1 for beta in betas)
    assert torch.allclose(got, expected, atol=0.05, rtol=0.02), (got - expected).abs().max()
    assert torch.allclose(got, separate, atol=1e-2)
