"""Device, dtype and precision resolution (the only place that decides where and how the model runs)."""

from __future__ import annotations

import functools
import logging
import sys
from dataclasses import dataclass
from typing import Literal

import torch

from .._validation import short

__all__ = [
    "DTYPES",
    "PRECISIONS",
    "Plan",
    "cpu_flags",
    "cpu_has_amx",
    "cpu_has_fast_bf16",
    "resolve_device",
    "resolve_plan",
]

logger = logging.getLogger(__name__)

DtypeName = Literal["auto", "float32", "bfloat16", "float16"]
PrecisionName = Literal["exact", "fast", "int8"]

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
PRECISIONS = ("exact", "fast", "int8")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags Linux reports in ``/proc/cpuinfo``, as this process's kernels can use them.

    Where torch's kernels run below AVX-512 on a CPU that reports it (``ATEN_CPU_CAPABILITY=avx2``, or a
    CPUID mask such as ``scripts/avx2only``), the AVX-512, AMX and VNNI flags are left out: the process is
    treated as the AVX2 machine its libraries see. Empty off Linux, or when ``/proc/cpuinfo`` is unreadable.
    """
    flags = _reported_cpu_flags()
    if "avx512f" in flags and not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return frozenset(flag for flag in flags if not flag.startswith(_BEYOND_AVX2))
    return flags


#: Flags of the extensions an AVX2-only CPU lacks: AVX-512, AMX and the VEX-coded VNNI family.
_BEYOND_AVX2 = ("avx512", "amx", "avx_vnni", "avx_ifma", "avx_ne_convert", "avx10")


def _reported_cpu_flags() -> frozenset[str]:
    if not sys.platform.startswith("linux"):
        return frozenset()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU runs bfloat16 matrix work natively (Intel AMX or AVX512-BF16)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def cpu_has_amx() -> bool:
    """Whether this CPU has Intel AMX tiles for bfloat16 (Sapphire Rapids and newer Xeons)."""
    return "amx_bf16" in cpu_flags()


def resolve_device(device: str | torch.device | None, precision: str | None = None) -> torch.device:
    """Resolve ``device``: ``None`` picks cuda, then mps, then cpu (always cpu for ``precision="int8"``).

    Raises:
        ValueError: An unknown device string, or a device that is not available here.
    """
    if device is None:
        if precision == "int8":
            return torch.device("cpu")
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device must be None, 'cpu', 'cuda', 'cuda:N' or 'mps', got {short(device)}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(resolved)!r} was requested but CUDA is not available on this machine")
    if resolved.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device 'mps' was requested but MPS is not available on this machine")
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {str(resolved)!r}")
    return resolved


def _cuda_bf16(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def _int8_plan(device: torch.device) -> Plan:
    if device.type != "cpu":
        raise ValueError(
            f"precision='int8' runs on the CPU only (ONNX Runtime), got device {str(device)!r}; "
            "use precision='fast' on an accelerator"
        )
    return Plan(device, torch.float32, "int8")


@dataclass(frozen=True)
class Plan:
    """How the model runs: device, weight (and compute) dtype, and the precision label."""

    device: torch.device
    weight_dtype: torch.dtype
    precision: str

    def describe(self) -> str:
        """One line for logs and reports."""
        return f"{self.device} weights {self.weight_dtype} (precision={self.precision})"


def resolve_plan(device: torch.device, dtype: str | torch.dtype, precision: str | None) -> Plan:
    """Resolve ``dtype`` and ``precision`` into a :class:`Plan`.

    * ``precision="exact"``: float32 everywhere (reference parity).
    * ``precision="fast"``: bfloat16 weights on CUDA devices with bf16 and on CPUs with AMX or
      AVX512-BF16 (bfloat16 weights rather than float32 weights under bf16 autocast: faster there);
      float32 elsewhere (never float16: T5 overflows).
    * ``precision="int8"``: the CPU only; float32 weights in torch (for everything but the
      transformer), the transformer as an int8 ONNX Runtime graph (see ``int8.py``).
    * ``precision=None``: ``dtype`` decides; ``"auto"`` is bfloat16 on CUDA with bf16, else float32.

    Raises:
        ValueError: An unknown dtype or precision, or both given in conflict.
    """
    if isinstance(dtype, torch.dtype):
        names = {value: key for key, value in DTYPES.items()}
        if dtype not in names:
            raise ValueError(f"dtype must be one of 'auto', {', '.join(map(repr, DTYPES))}, got {dtype}")
        dtype = names[dtype]
    if dtype != "auto" and dtype not in DTYPES:
        raise ValueError(f"dtype must be one of 'auto', {', '.join(map(repr, DTYPES))}, got {short(dtype)}")
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be None, 'exact', 'fast' or 'int8', got {short(precision)}")
    if precision is not None and dtype != "auto":
        raise ValueError(f"pass either dtype={dtype!r} or precision={precision!r}, not both: precision picks the dtype")
    if precision == "exact":
        return Plan(device, torch.float32, "exact")
    if precision == "int8":
        return _int8_plan(device)
    if precision == "fast":
        if _cuda_bf16(device) or (device.type == "cpu" and cpu_has_fast_bf16()):
            return Plan(device, torch.bfloat16, "fast")
        logger.info("precision='fast': no fast bfloat16 on %s, running float32", device)
        return Plan(device, torch.float32, "fast")
    weight = (torch.bfloat16 if _cuda_bf16(device) else torch.float32) if dtype == "auto" else DTYPES[dtype]
    return Plan(device, weight, "exact" if weight == torch.float32 else str(dtype))
