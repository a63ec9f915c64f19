"""Process settings that decide CPU inference speed: OpenMP thread waiting and glibc ``malloc``.

Both change the whole process, so both are listed, with their switch, in docs/install.md ("What the
package changes in your process"), and logged once at INFO when applied:

* **OpenMP workers that go to sleep between operators.** PyTorch's OpenMP pool (GNU libgomp) spins
  only briefly before a worker sleeps; a sleeping vCPU is slow to come back, and every operator
  starts with its threads waking up (the performance log has the measurements).
  ``GOMP_SPINCOUNT=10000000`` lets a worker spin for up to about half a second before sleeping.
  libgomp reads the variable once, when torch is imported, so
  :func:`apply_openmp_defaults` sets it (if unset) on ``import instructor_integrations`` *before*
  torch is imported; when torch was imported first it cannot, and the encoder logs how to set it.
* **Freed memory returned to the kernel after every operator.** With glibc's defaults, blocks above
  the dynamic mmap threshold are fresh ``mmap`` s and the heap top is trimmed, so each batch
  page-faults its working memory in again.
  :func:`tune_cpu_allocator` raises the mmap and trim thresholds (``mallopt``) so freed blocks are
  reused within a call; :func:`release_free_memory` (``malloc_trim``) hands the free heap back at the
  end of each ``encode`` call, so memory does not pile up across calls.

``INSTRUCTOR_INTEGRATIONS_TUNE_CPU=0`` turns both off. Neither applies off glibc/libgomp (macOS,
Windows, musl), and the allocator is left alone when jemalloc or tcmalloc is preloaded.
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
#: What ``import instructor_integrations`` set in the environment (logged by the first CPU encoder).
_set_at_import: dict[str, str] = {}


def cpu_tuning_enabled() -> bool:
    """Whether the CPU settings are applied (``INSTRUCTOR_INTEGRATIONS_TUNE_CPU`` is not 0/false/no/off).

    Examples:
        >>> import os
        >>> os.environ["INSTRUCTOR_INTEGRATIONS_TUNE_CPU"] = "0"
        >>> cpu_tuning_enabled()
        False
        >>> del os.environ["INSTRUCTOR_INTEGRATIONS_TUNE_CPU"]
    """
    return os.environ.get(_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def apply_openmp_defaults() -> dict[str, str]:
    """Set :data:`OPENMP_DEFAULTS` in ``os.environ`` where unset, if torch is not imported yet.

    Called by ``import instructor_integrations``. Variables the user set are never changed.

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

    Called at the end of each CPU ``encode`` call: within a call, freed blocks are reused (no page
    faults); between calls, the memory goes back, so a long ingestion does not accumulate it.
    """
    if _libc is not None:
        _libc.malloc_trim(0)


def tune_cpu_process() -> None:
    """What a CPU encoder does on creation: tune the allocator; say once per process if OpenMP is not set up."""
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
                    "import instructor_integrations set %s (OpenMP threads wait spinning between operators, for CPU "
                    "speed); set %s=0 before the import to leave the environment alone",
                    " ".join(f"{key}={value}" for key, value in _set_at_import.items()),
                    _ENV,
                )
            return
        logger.info(
            "torch was imported before instructor_integrations, so OpenMP threads sleep between operators "
            "(slower on many CPUs): set %s in the environment before starting Python, or import "
            "instructor_integrations first. See docs/performance.md.",
            " ".join(f"{key}={value}" for key, value in OPENMP_DEFAULTS.items()),
        )
