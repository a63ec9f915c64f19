"""CPU process settings: only when a program opts in (never on import); the allocator stops page-fault churn; OpenMP
defaults are set before torch loads."""

from __future__ import annotations

import ctypes.util
import os
import platform
import subprocess
import sys

import pytest

from instructor_integrations import InstructorEncoder
from instructor_integrations._engine import cpu as _cpu

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

PRELOADED = any(name in os.environ.get("LD_PRELOAD", "") for name in ("jemalloc", "tcmalloc"))


def _run(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=env or dict(os.environ)
    )
    return done.stdout.strip().splitlines()[-1]


class FakeLibc:
    """Stands in for glibc: records mallopt and malloc_trim calls (the effect on page faults and RSS is
    measured by benchmarks/experiments/cpu_allocator.py, not here: it depends on the kernel's huge-page setting)."""

    def __init__(self, accept: bool = True) -> None:
        self.calls: list[tuple[str, tuple[int, ...]]] = []
        self.accept = accept
        self.mallopt = self._function("mallopt", lambda *a: 1 if self.accept else 0)
        self.malloc_trim = self._function("malloc_trim", lambda *a: 1)

    def _function(self, name: str, result):  # type: ignore[no-untyped-def]
        def call(*args: int) -> int:
            self.calls.append((name, args))
            return int(result(*args))

        return call


@pytest.fixture
def fake_libc(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    libc = FakeLibc()
    monkeypatch.setattr(_cpu.ctypes, "CDLL", lambda *args, **kwargs: libc)
    monkeypatch.setattr(_cpu.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(_cpu.sys, "platform", "linux")
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.setattr(_cpu, "_libc", None)
    return libc


def test_tuning_sets_the_three_malloc_thresholds_and_trims_after_calls(fake_libc: FakeLibc) -> None:
    assert _cpu._apply_allocator() is True
    assert fake_libc.calls == [
        ("mallopt", (-3, _cpu.MMAP_THRESHOLD)),  # M_MMAP_THRESHOLD
        ("mallopt", (-1, _cpu.TRIM_THRESHOLD)),  # M_TRIM_THRESHOLD
        ("mallopt", (-2, 64 * 1024 * 1024)),  # M_TOP_PAD
    ]
    _cpu.release_free_memory()
    assert fake_libc.calls[-1] == ("malloc_trim", (0,))


def test_a_refused_setting_leaves_nothing_to_trim(fake_libc: FakeLibc) -> None:
    fake_libc.accept = False
    assert _cpu._apply_allocator() is False
    _cpu.release_free_memory()
    assert all(name == "mallopt" for name, _ in fake_libc.calls)


def test_not_glibc_is_left_alone(fake_libc: FakeLibc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cpu.platform, "libc_ver", lambda: ("", ""))
    assert _cpu._apply_allocator() is False
    assert fake_libc.calls == []


@pytest.mark.skipif(not GLIBC, reason="the settings are glibc mallopt tunables")
@pytest.mark.skipif(PRELOADED, reason="an allocator is preloaded (LD_PRELOAD): the package leaves it alone")
def test_real_glibc_accepts_the_settings() -> None:
    code = "from instructor_integrations._engine import cpu as _cpu; print(_cpu.tune_cpu_allocator(), _cpu._libc is not None)"
    assert _run(code) == "True True"


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


@pytest.mark.parametrize(
    ("value", "requested", "enabled"),
    [("0", True, False), ("off", True, False), ("no", False, False), ("1", False, True), ("", True, True),
     ("", False, False)],
)  # fmt: skip
def test_environment_switch(monkeypatch: pytest.MonkeyPatch, value: str, requested: bool, enabled: bool) -> None:
    monkeypatch.setenv("INSTRUCTOR_INTEGRATIONS_TUNE_CPU", value)
    monkeypatch.setattr(_cpu, "_requested", requested)
    assert _cpu.cpu_tuning_enabled() is enabled


_SPIN = "import os, instructor_integrations, torch; print(os.environ.get('GOMP_SPINCOUNT', '-'))"
_TUNED_SPIN = "import os, instructor_integrations as ii; ii.tune_cpu(); import torch; print(os.environ.get('GOMP_SPINCOUNT', '-'))"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "INSTRUCTOR_INTEGRATIONS_TUNE_CPU")}
    env.update(extra)
    return env


def test_importing_the_package_changes_no_environment() -> None:
    assert _run(_SPIN, env=_clean_env()) == "-"


def test_openmp_default_is_set_by_tune_cpu_or_the_opt_in_variable_before_torch() -> None:
    assert _run(_TUNED_SPIN, env=_clean_env()) == _cpu.OPENMP_DEFAULTS["GOMP_SPINCOUNT"]
    assert _run(_SPIN, env=_clean_env(INSTRUCTOR_INTEGRATIONS_TUNE_CPU="1")) == _cpu.OPENMP_DEFAULTS["GOMP_SPINCOUNT"]


def test_openmp_default_never_overrides_the_user_or_a_loaded_torch() -> None:
    assert _run(_TUNED_SPIN, env=_clean_env(GOMP_SPINCOUNT="1234")) == "1234"
    assert _run(_TUNED_SPIN, env=_clean_env(INSTRUCTOR_INTEGRATIONS_TUNE_CPU="0")) == "-"
    torch_first = (
        "import os, torch, instructor_integrations as ii; ii.tune_cpu(); print(os.environ.get('GOMP_SPINCOUNT', '-'))"
    )
    assert _run(torch_first, env=_clean_env()) == "-"


_CHANGED = (
    "print(sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)), "
    "_cpu._allocator_applied, _cpu._libc, child)\n"
)
_CHILD = (
    "child = subprocess.run([sys.executable, '-c', 'import os; print(os.environ.get(\"GOMP_SPINCOUNT\", \"-\"))'],\n"
    "                       capture_output=True, text=True, check=True).stdout.strip()\n"
)


def test_a_library_user_gets_no_process_change(tiny_path: str) -> None:
    """Importing every door and embedding on the CPU changes in the process only what plain sentence-transformers does.

    (torch's compiler and scikit-learn set a few variables of their own when a model runs; the package adds none,
    touches no allocator setting and leaks nothing into a child process.)
    """
    code = (
        "import os, subprocess, sys; before = dict(os.environ)\n"
        "import instructor_integrations as ii, instructor_integrations.langchain, instructor_integrations.llama_index\n"
        "import instructor_integrations.chroma\n"
        "from instructor_integrations._engine import cpu as _cpu\n"
        "assert dict(os.environ) == before, 'an import changed the environment'\n"
        f"ii.InstructorEncoder({tiny_path!r}, device='cpu').encode(['a', 'b'], 'Represent the word: ')\n"
        + _CHILD
        + _CHANGED
    )
    plain = (
        "import os, subprocess, sys; before = dict(os.environ)\n"
        "from sentence_transformers import SentenceTransformer\n"
        "from instructor_integrations._engine import cpu as _cpu\n"
        f"SentenceTransformer({tiny_path!r}, device='cpu').encode(['a', 'b'], prompt='Represent the word: ')\n"
        + _CHILD
        + _CHANGED
    )
    ours, reference = _run(code, env=_clean_env()), _run(plain, env=_clean_env())
    assert ours == reference
    assert ours.endswith(" None None -")


def test_the_cli_tunes_its_own_process() -> None:
    """A program may: ``instructor-embed`` opts in before torch loads (here it then stops at a usage error)."""
    code = (
        "import os, sys; from instructor_integrations.cli import main\n"
        "code = main(['ingest', '/no/such/path', '--collection', 'c'])\n"
        "from instructor_integrations._engine import cpu as _cpu\n"
        "print(code, os.environ.get('GOMP_SPINCOUNT', '-'), _cpu.cpu_tuning_enabled())\n"
    )
    assert _run(code, env=_clean_env()) == f"2 {_cpu.OPENMP_DEFAULTS['GOMP_SPINCOUNT']} True"
    assert _run(code, env=_clean_env(INSTRUCTOR_INTEGRATIONS_TUNE_CPU="0")) == "2 - False"


@pytest.mark.parametrize(("value", "requested", "expected_calls"), [("0", True, 0), ("1", False, 1), ("", True, 1),
                                                                    ("", False, 0)])  # fmt: skip
def test_cpu_encoder_tunes_the_allocator_only_when_opted_in(
    monkeypatch: pytest.MonkeyPatch, tiny_path: str, value: str, requested: bool, expected_calls: int
) -> None:
    calls: list[int] = []
    monkeypatch.setenv("INSTRUCTOR_INTEGRATIONS_TUNE_CPU", value)
    monkeypatch.setattr(_cpu, "_requested", requested)
    monkeypatch.setattr(_cpu, "tune_cpu_allocator", lambda: calls.append(1) or True)
    InstructorEncoder(tiny_path, device="cpu")
    assert len(calls) == expected_calls


def test_encoder_says_how_to_set_openmp_when_torch_came_first(
    monkeypatch: pytest.MonkeyPatch, tiny_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setenv("INSTRUCTOR_INTEGRATIONS_TUNE_CPU", "1")
    monkeypatch.setattr(_cpu, "_openmp_hint_logged", False)
    with caplog.at_level("INFO", logger="instructor_integrations._engine.cpu"):
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
    # The engine's thread hands memory back when its queue runs empty, just after the call returns.
    import time

    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert calls == [1]  # once per call, not once per batch


def test_each_process_wide_change_is_logged_once_with_its_switch(tiny_path: str) -> None:
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(message)s')\n"
        "import instructor_integrations as ii; ii.tune_cpu()\n"
        f"ii.InstructorEncoder({tiny_path!r}, device='cpu'); ii.InstructorEncoder({tiny_path!r}, device='cpu')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env(), timeout=300, check=True
    ).stdout
    spin = [line for line in out.splitlines() if "set GOMP_SPINCOUNT=10000000" in line]
    assert len(spin) == 1 and "INSTRUCTOR_INTEGRATIONS_TUNE_CPU=0" in spin[0]
    if ctypes.util.find_library("c") and "LD_PRELOAD" not in os.environ:  # glibc's malloc, not a preloaded one
        malloc = [line for line in out.splitlines() if "Tuned glibc malloc" in line]
        assert len(malloc) == 1 and "INSTRUCTOR_INTEGRATIONS_TUNE_CPU=0" in malloc[0]


def test_the_issue_acceptance_line_holds() -> None:
    """The exact check of the "one owner for each thing" issue: importing the package and its doors keeps os.environ."""
    code = (
        "import os; e = dict(os.environ); import instructor_integrations, instructor_integrations.langchain, "
        "instructor_integrations.llama_index, instructor_integrations.chroma; assert dict(os.environ) == e; print('ok')"
    )
    assert _run(code, env=_clean_env()) == "ok"
