"""What the package's glibc malloc settings do to page faults and resident memory (moved from the tests).

    python benchmarks/experiments/cpu_allocator.py [--out docs/benchmarks/cpu_allocator.json]

Two measurements, each against the untuned allocator in the same run:

* page faults while a 64 MiB tensor is allocated and freed 30 times, default vs tuned
  (``tune_cpu_allocator``): tuned, the freed heap is reused;
* resident memory after 800 MiB of tensors are freed, before and after ``release_free_memory``.

Both depend on the kernel (transparent huge pages fault 2 MiB at a time) and on the allocator (a
preloaded jemalloc or tcmalloc is left alone): the machine record says which applied.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py
from _common import ROOT, machine, write_json

CHURN = textwrap.dedent(
    """
    import resource, sys, torch
    if sys.argv[1] == "tuned":
        from instructor_integrations import tune_cpu_allocator
        assert tune_cpu_allocator(), "the allocator settings did not apply here"
    torch.ones(16 * 1024 * 1024)  # warm up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(30):
        torch.ones(16 * 1024 * 1024)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)

RELEASE = textwrap.dedent(
    """
    import resource, torch
    from instructor_integrations._engine import cpu as _cpu
    assert _cpu.tune_cpu_allocator(), "the allocator settings did not apply here"
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


def run(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, cwd=ROOT)
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "cpu_allocator.json")
    args = parser.parse_args()
    default, tuned = int(run(CHURN, "default")), int(run(CHURN, "tuned"))
    held, released = map(int, run(RELEASE).split())
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    result = {
        "benchmark": "cpu_allocator",
        "machine": machine(),
        "transparent_hugepage": thp.read_text().strip() if thp.exists() else None,
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
        "page_faults": {"default": default, "tuned": tuned, "ratio": round(default / max(tuned, 1), 1)},
        "rss_mib": {"after_free": held, "after_release": released, "returned": held - released},
    }
    print(
        f"page faults over 30 x 64 MiB: default {default}, tuned {tuned} ({result['page_faults']['ratio']}x fewer); "
        f"RSS after freeing 800 MiB: {held} MiB, after release_free_memory {released} MiB"
    )
    write_json(args.out, result)


if __name__ == "__main__":
    main()
