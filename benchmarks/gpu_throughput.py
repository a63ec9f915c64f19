"""GPU benchmark: instructor-large architecture (random weights), mixed lengths near 128 tokens, bf16.

Compares, in one run on one GPU: plain ``SentenceTransformer.encode`` in float32 and in bfloat16
(default settings) against this package's ``precision="fast"`` (bf16 weights, length-sorted
token-budget batches), optionally with ``torch.compile``. Reports tokens/s and model FLOP
utilisation (MFU) against the card's dense bf16 peak.

    python benchmarks/gpu_throughput.py --texts 8192 --out gpu.json   (run by benchmarks/gpu.sh)
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from _common import ARCHS, build_random_instructor, machine, write_json

#: Dense bf16 peak (TFLOP/s) by device name fragment (NVIDIA data sheets, SXM parts, no sparsity).
PEAKS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}
WORDS = (
    "protein cell gene expression tumour growth signal pathway immune response patients study results show "
    "increased reduced risk treatment model data analysis method network structure energy matter field"
).split()


def workload(tokenizer: object, n: int, mean: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """``n`` texts whose token counts are spread uniformly over [mean/4, 7*mean/4]."""
    rng = random.Random(seed)
    texts, lengths = [], []
    for _ in range(n):
        target = rng.randint(mean // 4, 7 * mean // 4)
        words = [rng.choice(WORDS) for _ in range(target)]
        ids = tokenizer(" ".join(words))["input_ids"]  # type: ignore[operator]
        if len(ids) > target:
            words = words[: max(1, int(len(words) * target / len(ids)))]
            ids = tokenizer(" ".join(words))["input_ids"]  # type: ignore[operator]
        while len(ids) > target and len(words) > 1:
            words.pop()
            ids = tokenizer(" ".join(words))["input_ids"]  # type: ignore[operator]
        texts.append(" ".join(words))
        lengths.append(len(ids))
    return texts, lengths


def flops_per_text(length: int, arch: dict[str, int]) -> float:
    """Forward FLOPs of a T5 encoder (matmuls and attention) plus the Dense head for one text."""
    d, ff, layers = arch["d_model"], arch["d_ff"], arch["num_layers"]
    inner = arch["num_heads"] * arch["d_kv"]
    per_token = layers * 2 * (4 * d * inner + 2 * d * ff) + 2 * d * 768
    attention = layers * 2 * 2 * length * length * inner
    return float(per_token * length + attention)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=8192)
    parser.add_argument("--mean-tokens", type=int, default=128)
    parser.add_argument("--arch", default="large", choices=sorted(ARCHS))
    parser.add_argument("--token-budget", type=int, default=65536)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--compile", action="store_true", help="also time precision='fast' with torch.compile")
    parser.add_argument("--out", default="gpu_throughput.json")
    parser.add_argument("--device", default="cuda", help="cpu only to dry-run this script")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from instructor_integrations import InstructorEncoder

    device = args.device
    if device.startswith("cuda"):
        assert torch.cuda.is_available(), "this benchmark needs a CUDA GPU"
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu (dry run)"

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    peak = next((value for key, value in PEAKS.items() if key in name), float("nan"))
    arch = ARCHS[args.arch]
    instruction = "Represent the Science document for retrieval: "
    with tempfile.TemporaryDirectory() as tmp:
        path = str(build_random_instructor(Path(tmp), args.arch))
        tokenizer = SentenceTransformer(path, device="cpu").tokenizer
        texts, lengths = workload(tokenizer, args.texts, args.mean_tokens)
        prompt_tokens = len(tokenizer(instruction.strip())["input_ids"]) - 1
        total_lengths = [min(512, n + prompt_tokens) for n in lengths]
        tokens = sum(total_lengths)
        flops = sum(flops_per_text(n, arch) for n in total_lengths)
        print(
            f"{name}: {len(texts)} texts, {tokens} tokens (mean {tokens / len(texts):.1f}), "
            f"{flops / 1e12:.1f} TFLOP per pass, peak {peak} TFLOP/s",
            flush=True,
        )
        results: dict[str, dict[str, float]] = {}

        def timed(label: str, run: Callable[[list[str]], np.ndarray]) -> None:
            run(texts[:256])  # warm-up (and compilation)
            sync()
            start = time.perf_counter()
            run(texts)
            sync()
            seconds = time.perf_counter() - start
            achieved = flops / seconds / 1e12
            results[label] = {
                "seconds": round(seconds, 3),
                "tokens_per_s": round(tokens / seconds),
                "tflops": round(achieved, 1),
                "mfu": round(achieved / peak, 4),
            }
            print(
                f"{label:>34}: {seconds:7.2f} s {tokens / seconds:12.0f} tokens/s {achieved:7.1f} TFLOP/s "
                f"MFU {achieved / peak:6.1%}",
                flush=True,
            )

        for dtype in (torch.float32, torch.bfloat16):
            st = SentenceTransformer(path, device=device)
            st.to(dtype)
            timed(f"sentence-transformers {str(dtype)[6:]}", lambda t, st=st: st.encode(t, prompt=instruction))
            del st
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
        encoder = InstructorEncoder(
            path, device=device, precision="fast", batch_size=args.batch_size, token_budget=args.token_budget
        )
        timed("instructor-integrations fast", lambda t: encoder.encode(t, instruction))
        if args.compile:
            try:
                compiled = InstructorEncoder(
                    path,
                    device=device,
                    precision="fast",
                    batch_size=args.batch_size,
                    token_budget=args.token_budget,
                    compile=True,
                )
                timed("instructor-integrations fast+compile", lambda t: compiled.encode(t, instruction))
            except Exception as exc:  # report, do not hide
                print(f"torch.compile failed: {type(exc).__name__}: {exc}")
                results["instructor-integrations fast+compile"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        base = results["sentence-transformers float32"]["seconds"]
        for row in results.values():
            if "seconds" in row:
                row["speedup_vs_st_fp32"] = round(base / row["seconds"], 2)
        write_json(
            Path(args.out),
            {
                "benchmark": "gpu_throughput",
                "device": name,
                "peak_bf16_tflops": peak,
                "arch": args.arch,
                "workload": {
                    "texts": len(texts),
                    "tokens": tokens,
                    "mean_tokens": tokens / len(texts),
                    "token_budget": args.token_budget,
                    "batch_size": args.batch_size,
                },
                "results": results,
                "machine": machine(),
            },
        )


if __name__ == "__main__":
    main()
