"""CPU process settings: the allocator stops page-fault churn; OpenMP defaults are set before torch loads."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from instructor_integrations import InstructorEncoder, _cpu

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Allocate and free a 64 MiB tensor 30 times and count the minor page faults that causes.
_CHURN = textwrap.dedent(
    """
    import resource, sys, torch
    if sys.argv[1] == "tuned":
        from instructor_integrations import tune_cpu_allocator
        assert tune_cpu_allocator()
    torch.ones(16 * 1024 * 1024)  # warm up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(30):
        torch.ones(16 * 1024 * 1024)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _run(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=env or dict(os.environ)
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(not GLIBC, reason="the settings are glibc mallopt tunables")
def test_tuned_allocator_stops_page_faults_on_repeated_large_allocations() -> None:
    import resource

    default, tuned = int(_run(_CHURN, "default")), int(_run(_CHURN, "tuned"))
    block = 64 * 1024 * 1024 // resource.getpagesize()  # faults to touch one fresh 64 MiB block
    # Default: every one of the 30 allocations is a fresh mapping (~30 blocks of faults). Tuned: the
    # freed heap is reused, so the count does not grow with the iterations: at most a first touch of
    # one or two blocks (both are seen on the same machine from run to run).
    assert default > 20 * block, (default, block)
    assert tuned <= 2 * block + block // 8, (tuned, block)


def test_allocator_tuned_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(_cpu, "_allocator_applied", None)
    monkeypatch.setattr(_cpu, "_apply_allocator", lambda: calls.append(1) or True)
    assert _cpu.tune_cpu_allocator() is True
    assert _cpu.tune_cpu_allocator() is True
    assert calls == [1]


@pytest.mark.parametrize("preload", ["/usr/lib/libjemalloc.so.2", "/opt/libtcmalloc_minimal.so"])
def test_preloaded_allocator_is_left_alone(monkeypatch: pytest.MonkeyPatch, preload: str) -> None:
    monkeypatch.setenv("LD_PRELOAD", preload)
    assert _cpu._apply_allocator() is False


@pytest.mark.parametrize(("value", "enabled"), [("0", False), ("off", False), ("no", False), ("1", True), ("", True)])
def test_environment_switch(monkeypatch: pytest.MonkeyPatch, value: str, enabled: bool) -> None:
    monkeypatch.setenv("INSTRUCTOR_INTEGRATIONS_TUNE_CPU", value)
    assert _cpu.cpu_tuning_enabled() is enabled


_SPIN = "import os, instructor_integrations, torch; print(os.environ.get('GOMP_SPINCOUNT', '-'))"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "INSTRUCTOR_INTEGRATIONS_TUNE_CPU")}
    env.update(extra)
    return env


def test_openmp_default_is_set_when_the_package_is_imported_before_torch() -> None:
    assert _run(_SPIN, env=_clean_env()) == _cpu.OPENMP_DEFAULTS["GOMP_SPINCOUNT"]


def test_openmp_default_never_overrides_the_user_or_a_loaded_torch() -> None:
    assert _run(_SPIN, env=_clean_env(GOMP_SPINCOUNT="1234")) == "1234"
    assert _run(_SPIN, env=_clean_env(INSTRUCTOR_INTEGRATIONS_TUNE_CPU="0")) == "-"
    torch_first = "import os, torch, instructor_integrations; print(os.environ.get('GOMP_SPINCOUNT', '-'))"
    assert _run(torch_first, env=_clean_env()) == "-"


@pytest.mark.parametrize(("value", "expected_calls"), [("0", 0), ("1", 1)])
def test_cpu_encoder_tunes_the_allocator_unless_switched_off(
    monkeypatch: pytest.MonkeyPatch, tiny_path: str, value: str, expected_calls: int
) -> None:
    calls: list[int] = []
    monkeypatch.setenv("INSTRUCTOR_INTEGRATIONS_TUNE_CPU", value)
    monkeypatch.setattr(_cpu, "tune_cpu_allocator", lambda: calls.append(1) or True)
    InstructorEncoder(tiny_path, device="cpu")
    assert len(calls) == expected_calls


def test_encoder_says_how_to_set_openmp_when_torch_came_first(
    monkeypatch: pytest.MonkeyPatch, tiny_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.delenv("INSTRUCTOR_INTEGRATIONS_TUNE_CPU", raising=False)
    monkeypatch.setattr(_cpu, "_openmp_hint_logged", False)
    with caplog.at_level("INFO", logger="instructor_integrations._cpu"):
        InstructorEncoder(tiny_path, device="cpu")
        InstructorEncoder(tiny_path, device="cpu")
    assert caplog.text.count("GOMP_SPINCOUNT=10000000") == 1  # once per process, not per encoder


def test_cpu_encode_hands_free_memory_back_after_each_call(
    monkeypatch: pytest.MonkeyPatch, tiny_encoder: InstructorEncoder
) -> None:
    import instructor_integrations.encoder as encoder_module

    calls: list[int] = []
    monkeypatch.setattr(encoder_module, "release_free_memory", lambda: calls.append(1))
    tiny_encoder.encode(["one", "two", "three"], instruction="Represent the word: ", batch_size=1)
    assert calls == [1]  # once per call, not once per batch


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_release_free_memory_returns_the_heap_to_the_kernel() -> None:
    code = textwrap.dedent(
        """
        import resource, torch
        from instructor_integrations import _cpu
        assert _cpu.tune_cpu_allocator()
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * resource.getpagesize() // 2**20
        blocks = [torch.ones(4 * 1024 * 1024) for _ in range(50)]  # 800 MiB from the heap
        del blocks
        held = rss()
        _cpu.release_free_memory()
        print(held, rss())
        """
    )
    held, released = map(int, _run(code).split())
    assert held - released > 500, (held, released)
