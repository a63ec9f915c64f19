"""Process settings that decide CPU inference speed: OpenMP thread waiting and glibc ``malloc``.

Both change the whole process, so a library import never makes them: a program opts in. The CLI
(``instructor-embed``) and the server opt in for their own process; a library user calls
:func:`tune_cpu` (or starts Python with ``INSTRUCTOR_INTEGRATIONS_TUNE_CPU=1``). What they do:

* **OpenMP workers that go to sleep between operators.** PyTorch's OpenMP pool (GNU libgomp) spins
  only briefly before a worker sleeps; a sleeping vCPU is slow to come back, and every operator
  starts with its threads waking up (the performance log has the measurements).
  ``GOMP_SPINCOUNT=10000000`` lets a worker spin for up to about half a second before sleeping.
  libgomp reads the variable once, when torch is imported, so :func:`tune_cpu` sets it (if unset)
  only while torch is not imported yet; when torch came first the encoder logs how to set it.
* **Freed memory returned to the kernel after every operator.** With glibc's defaults, blocks above
  the dynamic mmap threshold are fresh ``mmap`` s and the heap top is trimmed, so each batch
  page-faults its working memory in again. :func:`tune_cpu_allocator` raises the mmap and trim
  thresholds (``mallopt``) when the first CPU model loads, so freed blocks are reused within a call;
  :func:`release_free_memory` (``malloc_trim``) hands the free heap back when an encoder's queue
  runs empty, so memory does not pile up across calls.

``INSTRUCTOR_INTEGRATIONS_TUNE_CPU=0`` turns both off, in programs too. Neither applies off
glibc/libgomp (macOS, Windows, musl), and the allocator is left alone when jemalloc or tcmalloc is
preloaded. Each change is logged once at INFO.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform
import sys
import threading

__all__ = [
    "MMAP_THRESHOLD",
    "OPENMP_DEFAULTS",
    "TRIM_THRESHOLD",
    "apply_openmp_defaults",
    "cpu_tuning_enabled",
    "tune_cpu",
    "openmp_defaults_in_force",
    "release_free_memory",
    "tune_cpu_allocator",
    "tune_cpu_process",
]

logger = logging.getLogger(__name__)

#: Environment the OpenMP runtime reads when torch is imported (only set where unset).
OPENMP_DEFAULTS = {"GOMP_SPINCOUNT": "10000000"}
#: Blocks up to this size come from the heap (and are reused) rather than from a fresh ``mmap``.
MMAP_THRESHOLD = 512 * 1024 * 1024
#: Free memory at the top of the heap kept for reuse before it is returned to the kernel.
TRIM_THRESHOLD = 1024 * 1024 * 1024
_TOP_PAD = 64 * 1024 * 1024
# mallopt parameter numbers from <malloc.h>.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_ENV = "INSTRUCTOR_INTEGRATIONS_TUNE_CPU"

_lock = threading.Lock()
_allocator_applied: bool | None = None
_libc: ctypes.CDLL | None = None
_openmp_hint_logged = False
#: tune_cpu() was called in this process.
_requested = False
#: A CPU model has loaded in this process (the allocator is tuned then, if opted in).
_cpu_model_loaded = False
#: What :func:`tune_cpu` set in the environment (logged by the first CPU encoder).
_set_at_import: dict[str, str] = {}


def _env_choice() -> bool | None:
    """``INSTRUCTOR_INTEGRATIONS_TUNE_CPU``: True (1/true/yes/on), False (0/false/no/off) or None (unset or empty)."""
    value = os.environ.get(_ENV, "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    return None


def cpu_tuning_enabled() -> bool:
    """Whether this process opted in to the CPU settings (:func:`tune_cpu`, or the variable set to 1).

    ``INSTRUCTOR_INTEGRATIONS_TUNE_CPU=0`` turns them off whatever was called.

    Examples:
        >>> import os
        >>> os.environ["INSTRUCTOR_INTEGRATIONS_TUNE_CPU"] = "0"
        >>> cpu_tuning_enabled()
        False
        >>> del os.environ["INSTRUCTOR_INTEGRATIONS_TUNE_CPU"]
    """
    choice = _env_choice()
    return _requested if choice is None else choice


def tune_cpu() -> dict[str, str]:
    """Opt this process in to the CPU settings: OpenMP spinning, glibc's allocator, the idle heap trim.

    For programs and services that run CPU inference; ``instructor-embed`` and its server call it for
    their own process. Call it before torch is imported (first thing in ``main``) for the OpenMP
    setting to take effect; the allocator settings apply when the first CPU model loads (now, if one
    already did). Variables the user set are never changed, and ``INSTRUCTOR_INTEGRATIONS_TUNE_CPU=0``
    makes it do nothing.

    Returns:
        The environment variables it set (empty when switched off, torch was imported already, or
        they were set already).

    Examples:
        >>> import os
        >>> os.environ["INSTRUCTOR_INTEGRATIONS_TUNE_CPU"] = "0"
        >>> tune_cpu()
        {}
        >>> del os.environ["INSTRUCTOR_INTEGRATIONS_TUNE_CPU"]
    """
    global _requested
    if _env_choice() is False:
        return {}
    with _lock:
        _requested = True
    changed = apply_openmp_defaults()
    if _cpu_model_loaded:
        tune_cpu_allocator()
    return changed


def apply_openmp_defaults() -> dict[str, str]:
    """Set :data:`OPENMP_DEFAULTS` in ``os.environ`` where unset, if tuning is on and torch is not imported yet.

    Called by :func:`tune_cpu` (and by ``import instructor_integrations`` with
    ``INSTRUCTOR_INTEGRATIONS_TUNE_CPU=1``). Variables the user set are never changed.

    Returns:
        The variables set by this call (empty when tuning is off, torch was already imported, or
        everything was set already).
    """
    if not cpu_tuning_enabled() or "torch" in sys.modules:
        return {}
    changed = {key: value for key, value in OPENMP_DEFAULTS.items() if key not in os.environ}
    os.environ.update(changed)
    _set_at_import.update(changed)
    return changed


def openmp_defaults_in_force() -> bool:
    """Whether every variable of :data:`OPENMP_DEFAULTS` is in the environment.

    This package sets them before torch is imported; a value the user set is trusted to have been
    there before torch was imported (the runtime reads its environment once, then).

    Examples:
        >>> import os
        >>> saved = {key: os.environ.pop(key, None) for key in OPENMP_DEFAULTS}
        >>> openmp_defaults_in_force()
        False
        >>> os.environ.update(OPENMP_DEFAULTS)
        >>> openmp_defaults_in_force()
        True
        >>> for key, value in saved.items():
        ...     _ = os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    """
    return all(key in os.environ for key in OPENMP_DEFAULTS)


def tune_cpu_allocator() -> bool:
    """Set glibc's mmap and trim thresholds for inference; once per process.

    Returns:
        True when the settings are in force (set now or by an earlier call), False where they do not
        apply: not glibc, an allocator preloaded with ``LD_PRELOAD``, or ``mallopt`` refused.

    See ``tests/unit/test_cpu_tuning.py`` for the calls it makes, and ``benchmarks/experiments/cpu_allocator.py`` for
    their effect on page faults and resident memory.
    """
    global _allocator_applied
    with _lock:
        if _allocator_applied is None:
            _allocator_applied = _apply_allocator()
        return _allocator_applied


def _apply_allocator() -> bool:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        logger.debug("Allocator tuning skipped: not glibc")
        return False
    preload = os.environ.get("LD_PRELOAD", "")
    if "jemalloc" in preload or "tcmalloc" in preload:
        logger.debug("Allocator tuning skipped: %s is preloaded", preload)
        return False
    global _libc
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, _TOP_PAD))
    if not all(mallopt(param, value) == 1 for param, value in settings):
        logger.debug("Allocator tuning: mallopt refused a setting")
        return False
    _libc = libc
    logger.info(
        "Tuned glibc malloc for CPU inference (mmap threshold %d MiB, trim threshold %d MiB); "
        "set %s=0 to leave the defaults",
        MMAP_THRESHOLD >> 20,
        TRIM_THRESHOLD >> 20,
        _ENV,
    )
    return True


def release_free_memory() -> None:
    """Return the free heap to the kernel (``malloc_trim``), where :func:`tune_cpu_allocator` applied.

    Called when a CPU encoder's queue runs empty: within a drain, freed blocks are reused (no page
    faults); between them, the memory goes back, so a long ingestion does not accumulate it.
    """
    if _libc is not None:
        _libc.malloc_trim(0)


def tune_cpu_process() -> None:
    """What loading a CPU model does: if the process opted in, tune the allocator and say once how OpenMP is set."""
    global _cpu_model_loaded
    _cpu_model_loaded = True
    if not cpu_tuning_enabled():
        return
    tune_cpu_allocator()
    global _openmp_hint_logged
    with _lock:
        if _openmp_hint_logged:
            return
        _openmp_hint_logged = True
        if openmp_defaults_in_force():
            if _set_at_import:  # said once, now that logging is likely set up
                logger.info(
                    "CPU tuning set %s (OpenMP threads wait spinning between operators, for CPU speed); "
                    "set %s=0 to leave the environment alone",
                    " ".join(f"{key}={value}" for key, value in _set_at_import.items()),
                    _ENV,
                )
            return
        logger.info(
            "torch was imported before the CPU tuning was asked for, so OpenMP threads sleep between operators "
            "(slower on many CPUs): set %s in the environment before starting Python, or call "
            "instructor_integrations.tune_cpu() before importing torch. See docs/performance.md.",
            " ".join(f"{key}={value}" for key, value in OPENMP_DEFAULTS.items()),
        )
