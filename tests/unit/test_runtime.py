from __future__ import annotations

import pytest
import torch

from instructor_integrations._engine import runtime as rt

CPU = torch.device("cpu")


def test_default_device_is_cpu_here() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert rt.resolve_device(None).type in (expected, "mps")


@pytest.mark.parametrize("bad", ["gpu", "tpu:0", 3.5])
def test_unknown_device_is_named(bad: object) -> None:
    with pytest.raises(ValueError, match="device"):
        rt.resolve_device(bad)  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_cuda_is_refused() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        rt.resolve_device("cuda")


def test_auto_dtype_on_cpu_is_float32() -> None:
    plan = rt.resolve_plan(CPU, "auto", None)
    assert plan.weight_dtype == torch.float32
    assert plan.precision == "exact"


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        ("float32", torch.float32),
        ("bfloat16", torch.bfloat16),
        ("float16", torch.float16),
        (torch.bfloat16, torch.bfloat16),
    ],
)
def test_explicit_dtypes(name: object, dtype: torch.dtype) -> None:
    assert rt.resolve_plan(CPU, name, None).weight_dtype == dtype  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["fp32", "int8", torch.int8])
def test_bad_dtype_lists_allowed(bad: object) -> None:
    with pytest.raises(ValueError, match="'float32', 'bfloat16', 'float16'"):
        rt.resolve_plan(CPU, bad, None)  # type: ignore[arg-type]


def test_bad_precision() -> None:
    with pytest.raises(ValueError, match="'exact', 'fast' or 'int8', got 'turbo'"):
        rt.resolve_plan(CPU, "auto", "turbo")


def test_int8_runs_on_the_cpu_in_float32_around_its_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = rt.resolve_plan(CPU, "auto", "int8")
    assert (plan.device, plan.weight_dtype, plan.precision) == (CPU, torch.float32, "int8")
    with pytest.raises(ValueError, match=r"precision='int8' runs on the CPU only .* got device 'cuda'"):
        rt.resolve_plan(torch.device("cuda"), "auto", "int8")
    # No device named: int8 picks the CPU even where CUDA is there.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert rt.resolve_device(None, "int8") == CPU
    assert rt.resolve_device(None, "fast").type == "cuda"


def test_dtype_and_precision_conflict() -> None:
    with pytest.raises(ValueError, match="not both"):
        rt.resolve_plan(CPU, "float16", "fast")


def test_fast_on_cpu_follows_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rt, "cpu_has_fast_bf16", lambda: True)
    plan = rt.resolve_plan(CPU, "auto", "fast")
    assert plan.weight_dtype == torch.bfloat16
    assert plan.precision == "fast"
    monkeypatch.setattr(rt, "cpu_has_fast_bf16", lambda: False)
    plan = rt.resolve_plan(CPU, "auto", "fast")
    assert plan.weight_dtype == torch.float32


def test_exact_is_float32() -> None:
    assert rt.resolve_plan(CPU, "auto", "exact").weight_dtype == torch.float32


@pytest.mark.parametrize(("capability", "fast"), [("AVX512", True), ("AVX2", False), ("DEFAULT", False)])
def test_a_process_whose_kernels_see_avx2_only_is_an_avx2_machine(
    monkeypatch: pytest.MonkeyPatch, capability: str, fast: bool
) -> None:
    """/proc/cpuinfo names AMX and AVX512-BF16, but torch's kernels run at ``capability`` (ATEN_CPU_CAPABILITY
    or a CPUID mask): bfloat16 counts as fast only where they can use it."""
    reported = frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_tile"})
    monkeypatch.setattr(rt, "_reported_cpu_flags", lambda: reported)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    rt.cpu_flags.cache_clear()
    try:
        assert rt.cpu_has_fast_bf16() is fast
        assert rt.cpu_has_amx() is fast
        assert {"avx2", "fma"} <= rt.cpu_flags()
        assert ("avx_vnni" in rt.cpu_flags()) is fast  # the mask hides the VEX-coded VNNI as well
        assert rt.resolve_plan(CPU, "auto", "fast").weight_dtype == (torch.bfloat16 if fast else torch.float32)
    finally:
        rt.cpu_flags.cache_clear()
