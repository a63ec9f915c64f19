"""The maintained benchmark suite: each benchmark against its baseline in the same run, one JSON each.

    python benchmarks/run.py [--quick] [--gpu] [--only NAME,...] [--out DIR]
    make bench [QUICK=1] [GPU=1]

Each benchmark runs as its own process and writes ``DIR/NAME.json`` (the machine, the commit and the
settings are in it). Full runs write to ``docs/benchmarks`` (what the docs' tables are generated from);
``--quick`` runs small workloads (under 10 minutes on 2 cores in all) into ``build/bench-quick``, so a
quick run never replaces a full result. Afterwards the plot is redrawn (full runs) and ``DIR/SUMMARY.md``
is written from the same renderers as the docs' tables. One-off experiments live in
``benchmarks/experiments/`` and are not run here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: name -> (full arguments, quick arguments)
SUITE: dict[str, tuple[list[str], list[str]]] = {
    "encoder_throughput": (
        ["--docs", "160", "--queries", "300", "--rounds", "2"],
        ["--docs", "16", "--queries", "48", "--rounds", "1", "--variants", "st-fp32,exact,fast"],
    ),
    "scifact_ingest": (
        ["--variants", "st-fp32,exact,fast,fast+workers", "--rounds", "2"],
        ["--limit-docs", "300", "--variants", "st-fp32,fast", "--rounds", "1"],
    ),
    "ingest_memory": ([], ["--sizes", "300", "1200"]),
    "adapter_overhead": ([], ["--texts", "300"]),
    "concurrency": ([], ["--docs", "200", "--queries", "200", "--calls", "8"]),
    "serve_load": ([], ["--requests", "400"]),
    "chunking": ([], []),
}


def run(name: str, args: list[str], out: Path) -> dict[str, object]:
    command = [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args, "--out", str(out / f"{name}.json")]
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, check=False)
    seconds = round(time.perf_counter() - started, 1)
    print(f"== {name}: exit {done.returncode} in {seconds} s", flush=True)
    return {"name": name, "returncode": done.returncode, "seconds": seconds}


def summary(out: Path) -> str:
    sys.path.insert(0, str(ROOT / "scripts"))
    import mkdocs_hooks

    mkdocs_hooks.BENCHMARKS = out
    parts = []
    for name in mkdocs_hooks.RENDERERS:
        if (out / f"{name}.json").exists():
            parts += [f"## {name}", "", mkdocs_hooks.results_block(name), ""]
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small workloads, into build/bench-quick")
    parser.add_argument("--gpu", action="store_true", help="also the GPU benchmark (benchmarks/gpu.sh; needs CUDA)")
    parser.add_argument("--only", default=None, help="comma-separated names (default: all)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or (ROOT / "build" / "bench-quick" if args.quick else ROOT / "docs" / "benchmarks")
    out.mkdir(parents=True, exist_ok=True)
    names = args.only.split(",") if args.only else list(SUITE)
    unknown = sorted(set(names) - set(SUITE))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(SUITE)}")
    runs = [run(name, SUITE[name][1 if args.quick else 0], out) for name in names]
    if args.gpu:
        started = time.perf_counter()
        done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), str(out)], cwd=ROOT, check=False)
        runs.append({"name": "gpu", "returncode": done.returncode, "seconds": round(time.perf_counter() - started, 1)})
    if not args.quick and args.out is None:
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "plot.py")], cwd=ROOT, check=False)
    (out / "SUMMARY.md").write_text(summary(out), encoding="utf-8")
    (out / "runs.json").write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")
    failed = [r["name"] for r in runs if r["returncode"] != 0]
    total = sum(float(str(r["seconds"])) for r in runs)
    print(f"{len(runs) - len(failed)} of {len(runs)} benchmarks ran in {total:.0f} s; tables in {out / 'SUMMARY.md'}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
