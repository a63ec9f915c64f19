"""Benchmark 1: encoder throughput on the instructor-base architecture (random weights).

Workload: SciFact abstracts with the SciFact document instruction and SciFact queries with the
query instruction (instructor-base's preset), mixed lengths. Variants (``--variants``):

* ``st-fp32``: the baseline, plain ``SentenceTransformer.encode(prompt=...)``, float32, default settings;
* ``st-fp32+cpu``: the same with this package's CPU process settings (OpenMP spin count set before
  torch loads, glibc allocator tuned; see ``instructor_integrations/_engine/cpu.py``): what those settings
  alone give a plain sentence-transformers user;
* ``exact``: this package, ``precision="exact"`` (float32, reference semantics);
* ``fast``: this package, ``precision="fast"`` (bfloat16 where the hardware runs it fast);
* ``fast+compile``: ``fast`` with ``compile=True`` (Inductor, weights frozen, on the CPU).

Every measurement runs in a fresh process (the CPU settings are process-wide; the baseline runs with
``INSTRUCTOR_INTEGRATIONS_TUNE_CPU=0`` so it never gets them), after a warm-up call; ``setup`` is
loading + compilation + warm-up.
The variants are interleaved over ``--rounds`` rounds, because this machine's speed drifts by tens
of percent over minutes; each variant's ratio is the median of its per-round ratios to the baseline
of the same round.

    python benchmarks/encoder_throughput.py [--docs 160 --queries 300 --rounds 2 --arch base]

Prints seconds, tokens/s and ratios to the baseline; writes docs/benchmarks/encoder_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from _common import (
    BASELINE,
    ROOT,
    build_random_instructor,
    machine,
    parse_variants,
    round_stats,
    run_variant,
    scifact_workload,
    write_json,
)

VARIANTS = ("st-fp32", "st-fp32+cpu", "exact", "fast", "fast+compile")


def worker(args: argparse.Namespace) -> None:
    """One measurement in this process; writes seconds and vectors to ``--result``."""
    from instructor_integrations.instructions import get_preset

    preset = get_preset("SciFact", "hkunlp/instructor-base")
    docs, queries = scifact_workload(args.docs, args.queries)
    variant = args.worker
    started = time.perf_counter()
    if variant.startswith("st-fp32"):
        from sentence_transformers import SentenceTransformer

        if variant.endswith("+cpu"):
            from instructor_integrations import tune_cpu_allocator

            tune_cpu_allocator()
        st = SentenceTransformer(args.model, device=args.device)

        def run(d: list[str], q: list[str]) -> np.ndarray:
            return np.concatenate([st.encode(d, prompt=preset.document), st.encode(q, prompt=preset.query)])

    else:
        from instructor_integrations import InstructorEncoder

        precision, _, option = variant.partition("+")
        kwargs: dict[str, Any] = {}
        if option == "compile":
            kwargs["compile"] = True
        if args.token_budget is not None:
            kwargs["token_budget"] = args.token_budget
        encoder = InstructorEncoder(args.model, device=args.device, precision=precision, **kwargs)

        def run(d: list[str], q: list[str]) -> np.ndarray:
            return np.concatenate([encoder.encode(d, preset.document), encoder.encode(q, preset.query)])

    run(docs[:8], queries[:8])  # warm-up (and compilation)
    setup = time.perf_counter() - started
    start = time.perf_counter()
    out = run(docs, queries)
    seconds = time.perf_counter() - start
    np.save(args.result + ".npy", out)
    Path(args.result).write_text(json.dumps({"seconds": seconds, "setup_seconds": setup}))


def measure(args: argparse.Namespace, model: str, variant: str, result: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", variant, "--model", model, "--result", result]
    command += ["--docs", str(args.docs), "--queries", str(args.queries), "--device", args.device]
    if args.token_budget is not None:
        command += ["--token-budget", str(args.token_budget)]
    return run_variant(command, variant, Path(result), TOKENIZERS_PARALLELISM="false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=160)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--arch", choices=["base", "large"], default="base")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {VARIANTS}")
    parser.add_argument("--token-budget", type=int, default=None, help="override the encoder's token budget")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "encoder_throughput.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    from sentence_transformers import SentenceTransformer

    from instructor_integrations.instructions import get_preset

    variants = parse_variants(parser, args.variants, VARIANTS)
    preset = get_preset("SciFact", "hkunlp/instructor-base")
    docs, queries = scifact_workload(args.docs, args.queries)
    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_random_instructor(Path(tmp), args.arch))
        tokenizer = SentenceTransformer(model, device="cpu").tokenizer
        tokens = sum(
            min(512, len(tokenizer(instruction + text)["input_ids"]))
            for instruction, texts in ((preset.document, docs), (preset.query, queries))
            for text in texts
        )
        print(f"workload: {len(docs)} abstracts + {len(queries)} queries, {tokens} tokens", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        vectors: dict[str, np.ndarray] = {}
        for round_index in range(args.rounds):
            for variant in variants:
                result = str(Path(tmp) / f"{variant}-{round_index}.json")
                row = measure(args, model, variant, result)
                runs[variant].append(row)
                if round_index == 0:
                    vectors[variant] = np.load(result + ".npy")
                print(
                    f"round {round_index + 1} {variant:>15}: {row['seconds']:7.2f} s  "
                    f"{tokens / row['seconds']:8.1f} tokens/s  (setup {row['setup_seconds']:.1f} s)",
                    flush=True,
                )
    results: dict[str, dict[str, Any]] = {}
    for variant, stats in round_stats(runs).items():
        median = stats["median_seconds"]
        results[variant] = {
            "seconds": stats["seconds"],
            "median_seconds": round(median, 2),
            "tokens_per_s": round(tokens / median, 1),
            "setup_seconds": stats["setup_seconds"],
            "speedup_per_round": stats["speedup_per_round"],
            "speedup": stats["speedup"],
            "speedup_with_setup": stats["speedup_with_setup"],
        }
    exact = vectors.get("exact", vectors[BASELINE])
    cosines: dict[str, dict[str, float]] = {}
    for variant, out in vectors.items():
        cosine = (exact * out).sum(1) / (np.linalg.norm(exact, axis=1) * np.linalg.norm(out, axis=1))
        cosines[variant] = {"min": round(float(cosine.min()), 6), "mean": round(float(cosine.mean()), 6)}
    print("\nspeedup vs plain sentence-transformers fp32 (median of per-round ratios):")
    for variant, row in results.items():
        print(
            f"  {variant:>15}: {row['speedup']:.2f}x  (rounds {row['speedup_per_round']}), "
            f"cosine to exact min {cosines[variant]['min']:.5f}"
        )
    write_json(
        Path(args.out),
        {
            "benchmark": "encoder_throughput",
            "command": " ".join(["python", "benchmarks/encoder_throughput.py", *sys.argv[1:]]),
            "arch": args.arch,
            "workload": {"docs": len(docs), "queries": len(queries), "tokens": tokens},
            "device": args.device,
            "rounds": args.rounds,
            "results": results,
            "cosine_to_exact": cosines,
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
