"""Run a command on an AVX2-only view of this CPU: AVX-512, VNNI, AMX and bf16 hidden from its libraries.

For measuring what users of AVX2-only CPUs (AMD Zen 2 and 3, Intel before Ice Lake) get, on a machine
that has more: ONNX Runtime, oneDNN, MKL, PyTorch and numpy choose their kernels by the CPUID
instruction, and ``avx2only.c`` (preloaded) answers CPUID with those features cleared. The kernels
then run natively, so their timings are real, on this CPU's cores, caches and clocks: a ratio measured
this way is the AVX2 code path on this machine, not a measurement of another CPU model.

Needs Linux on x86-64 with CPUID faulting (the ``cpuid_fault`` flag in ``/proc/cpuinfo``: Intel CPUs
since Ivy Bridge, under KVM too) and a C compiler (``cc``, or ``$CC``). The library is compiled once
into the temporary folder, named by a hash of its source.

    python scripts/avx2only/run.py --check                       # what torch and numpy see
    python scripts/avx2only/run.py python benchmarks/int8.py --out docs/benchmarks/int8_avx2.json

Python's fault handler is left off in the command (``PYTHONFAULTHANDLER`` removed): it would take
over SIGSEGV, which carries the trapped CPUID instructions. Under pytest pass ``-p no:faulthandler``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("avx2only.c")
#: What a process that runs under the mask reports as torch's CPU capability.
TORCH_CAPABILITY = "AVX2"
_CHECK = (
    "import json, numpy, torch; from numpy._core._multiarray_umath import __cpu_features__ as f;"
    "print(json.dumps({'torch': torch.backends.cpu.get_cpu_capability(),"
    "'numpy_avx512f': bool(f.get('AVX512F')), 'numpy_avx2': bool(f.get('AVX2'))}))"
)


def compiler() -> str | None:
    """The C compiler to build the library with (``$CC``, else ``cc`` or ``gcc``), if there is one."""
    for name in (os.environ.get("CC"), "cc", "gcc"):
        if name and shutil.which(name):
            return name
    return None


def unavailable() -> str | None:
    """Why the mask cannot run here (``None``: it can)."""
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        return f"needs Linux on x86-64, this is {sys.platform} on {platform.machine()}"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError as exc:
        return f"cannot read /proc/cpuinfo: {exc}"
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    if "cpuid_fault" not in flags:
        return "this CPU or kernel has no CPUID faulting (no 'cpuid_fault' flag in /proc/cpuinfo)"
    if compiler() is None:
        return "no C compiler (cc, gcc or $CC) to build scripts/avx2only/avx2only.c"
    return None


def library(folder: Path | None = None) -> Path:
    """The compiled library (built on first use, atomically, named by its source's hash).

    Raises:
        RuntimeError: The mask cannot run here (:func:`unavailable` says why), or the build failed.
    """
    reason = unavailable()
    if reason:
        raise RuntimeError(f"avx2only: {reason}")
    source = SOURCE.read_bytes()
    folder = folder or Path(tempfile.gettempdir()) / "instructor-integrations-avx2only"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"avx2only-{hashlib.sha256(source).hexdigest()[:16]}.so"
    if target.is_file():
        return target
    partial = folder / f".{target.name}.{os.getpid()}"
    command = [str(compiler()), "-O2", "-shared", "-fPIC", "-o", str(partial), str(SOURCE)]
    built = subprocess.run(command, capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise RuntimeError(f"avx2only: {' '.join(command)} failed: {built.stderr.strip()}")
    os.replace(partial, target)
    return target


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the library preloaded and no fault handler."""
    env = dict(os.environ if base is None else base)
    env["LD_PRELOAD"] = " ".join(filter(None, [str(library()), env.get("LD_PRELOAD", "")]))
    env.pop("PYTHONFAULTHANDLER", None)
    return env


def check() -> dict[str, object]:
    """What torch and numpy see in a Python process under the mask (and outside it, to compare)."""
    seen: dict[str, object] = {}
    for label, env in (("unmasked", dict(os.environ)), ("masked", environment())):
        out = subprocess.run([sys.executable, "-c", _CHECK], env=env, capture_output=True, text=True, check=True)
        seen[label] = out.stdout.strip()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="print what torch and numpy see, masked and not")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run under the mask")
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        sys.exit(f"avx2only: {reason}")
    if args.check:
        for label, seen in check().items():
            print(f"{label:>8}: {seen}")
        return
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name a command to run, or --check")
    os.execvpe(command[0], command, environment())


if __name__ == "__main__":
    main()
