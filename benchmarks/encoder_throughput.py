"""Benchmark 1: encoder throughput on the instructor-base architecture (random weights).

Workload: SciFact abstracts with the SciFact document instruction and SciFact queries with the
query instruction (instructor-base's preset), mixed lengths. Compared in one run:

* baseline: plain ``SentenceTransformer.encode(prompt=...)``, float32, default settings;
* this package, ``precision="exact"`` (float32, reference semantics);
* this package, ``precision="fast"`` (bfloat16 where the hardware runs it fast).

    python benchmarks/encoder_throughput.py [--docs 160 --queries 300 --arch base]

Prints seconds, tokens/s and ratios to the baseline; writes docs/benchmarks/encoder_throughput.json.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from _common import ROOT, build_random_instructor, machine, scifact_workload, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=160)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--arch", choices=["base", "large"], default="base")
    parser.add_argument("--token-budget", type=int, default=None, help="override the encoder's token budget")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "encoder_throughput.json"))
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from instructor_integrations import InstructorEncoder
    from instructor_integrations.instructions import get_preset

    preset = get_preset("SciFact", "hkunlp/instructor-base")
    docs, queries = scifact_workload(args.docs, args.queries)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(build_random_instructor(Path(tmp), args.arch))
        tokenizer = SentenceTransformer(path, device="cpu").tokenizer
        tokens = sum(
            min(512, len(tokenizer(instruction + text)["input_ids"]))
            for instruction, texts in ((preset.document, docs), (preset.query, queries))
            for text in texts
        )
        results: dict[str, dict[str, float]] = {}
        outputs: dict[str, np.ndarray] = {}

        def timed(name: str, run: Callable[[list[str], list[str]], np.ndarray]) -> None:
            run(docs[:8], queries[:8])  # warm-up
            gc.collect()
            start = time.perf_counter()
            out = run(docs, queries)
            seconds = time.perf_counter() - start
            outputs[name] = out
            results[name] = {"seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1)}
            print(f"{name:>22}: {seconds:7.2f} s  {tokens / seconds:9.1f} tokens/s", flush=True)

        plain = SentenceTransformer(path, device=args.device)

        def baseline(d: list[str], q: list[str], st: SentenceTransformer = plain) -> np.ndarray:
            a = st.encode(d, prompt=preset.document)
            b = st.encode(q, prompt=preset.query)
            return np.concatenate([a, b])

        timed("sentence-transformers fp32", baseline)
        del plain, baseline
        for precision in ("exact", "fast"):
            kwargs = {} if args.token_budget is None else {"token_budget": args.token_budget}
            encoder = InstructorEncoder(path, device=args.device, precision=precision, **kwargs)

            def ours(d: list[str], q: list[str], encoder: InstructorEncoder = encoder) -> np.ndarray:
                return np.concatenate([encoder.encode(d, preset.document), encoder.encode(q, preset.query)])

            timed(f"instructor-integrations {precision}", ours)
            results[f"instructor-integrations {precision}"]["token_budget"] = encoder.token_budget or 0
            del encoder
        base = results["sentence-transformers fp32"]["seconds"]
        for row in results.values():
            row["speedup"] = round(base / row["seconds"], 2)
        exact, fast = outputs["instructor-integrations exact"], outputs["instructor-integrations fast"]
        cosine = (exact * fast).sum(1) / (np.linalg.norm(exact, axis=1) * np.linalg.norm(fast, axis=1))
        print("\nspeedup vs plain sentence-transformers fp32:")
        for name, row in results.items():
            print(f"  {name:>32}: {row['speedup']:.2f}x")
        print(f"fast vs exact cosine: min {cosine.min():.5f}, mean {cosine.mean():.5f}")
        write_json(
            Path(args.out),
            {
                "benchmark": "encoder_throughput",
                "arch": args.arch,
                "workload": {"docs": len(docs), "queries": len(queries), "tokens": tokens},
                "device": args.device,
                "results": results,
                "fast_vs_exact_cosine": {"min": float(cosine.min()), "mean": float(cosine.mean())},
                "machine": machine(),
                "torch_threads": torch.get_num_threads(),
            },
        )


if __name__ == "__main__":
    main()
