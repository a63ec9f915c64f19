"""GPU benchmark: instructor-large architecture (random weights), mixed lengths near 128 tokens, bf16.

Compares, in one run on one GPU: plain ``SentenceTransformer.encode`` in float32 and in bfloat16
(default settings) against this package's ``precision="fast"`` (bf16 weights, length-sorted
token-budget batches), run as the staged pipeline (the default: a second thread tokenizes ahead)
and in line (one thread), optionally with ``torch.compile``. Reports
tokens/s and model FLOP utilisation (MFU) against the card's dense bf16 peak, the model-only
ceiling (pre-tokenized 512 x 128 batches), and optionally a kernel-time summary (``--profile``).
``--mask-rounds`` alternates T5's attention mask shared across layers (the CUDA default) with the
mask rebuilt per layer, ``--compile-masks on,off`` compiles an encoder for each, and ``--workers`` /
``--compile-workers`` time ``num_workers`` processes on the same GPU. Results are written after
every row, so a run cut short keeps what it measured.

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
from typing import Any

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


def model_only(
    backbone: object, rows: int, length: int, sync: Callable[[], None], device: str, padded: bool = False
) -> tuple[float, list[int]]:
    """Seconds per forward of ``backbone`` on pre-tokenized ``rows x length`` batches (no host work).

    ``padded``: row lengths spread evenly over [3/4 length, length], as in a length-sorted batch of real
    texts, so the attention gets a padding mask. Returns the seconds and the rows' real lengths.
    """
    import torch

    ids = torch.randint(5, 1000, (rows, length), device=device)
    lengths = [length - (i * (length // 4)) // max(rows - 1, 1) if padded else length for i in range(rows)]
    mask = (torch.arange(length, device=device)[None, :] < torch.tensor(lengths, device=device)[:, None]).long()
    with torch.inference_mode():
        for _ in range(3):
            backbone(input_ids=ids, attention_mask=mask)  # type: ignore[operator]
        sync()
        start = time.perf_counter()
        for _ in range(10):
            backbone(input_ids=ids, attention_mask=mask)  # type: ignore[operator]
        sync()
    return (time.perf_counter() - start) / 10, lengths


def share_mask(encoder: object, on: bool) -> None:
    """Switch the encoder's T5 backbone between the shared-mask attention and transformers' SDPA."""
    from instructor_integrations._engine.t5 import ATTENTION_NAME, share_t5_attention_mask

    backbone = encoder.model[0].auto_model  # type: ignore[attr-defined]
    if on:
        share_t5_attention_mask(backbone)
    else:
        backbone.set_attn_implementation("sdpa")
    assert (backbone.config._attn_implementation == ATTENTION_NAME) == on


def _sweep_limits(encoder: Any, token_budget: int, batch_size: int) -> None:
    """Change the batch limits of one compiled encoder between timed passes.

    An encoder's settings are fixed once it is built (the public API refuses to change them); this sweep
    times several limits over one compiled graph, which a rebuild would compile again, so it replaces
    the encoder's settings object directly. Only between calls, with the queue idle.
    """
    fixed = encoder._settings.replace(token_budget=token_budget, batch_size=batch_size)
    object.__setattr__(encoder, "_settings", fixed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=8192)
    parser.add_argument("--mean-tokens", type=int, default=128)
    parser.add_argument("--arch", default="large", choices=sorted(ARCHS))
    parser.add_argument("--token-budget", type=int, default=65536)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--baselines", default="float32,bfloat16", help="plain sentence-transformers dtypes to time")
    parser.add_argument(
        "--pipeline", default="staged,inline", help="ways to run precision='fast' batches: staged, inline or both"
    )
    parser.add_argument("--compile", action="store_true", help="also time precision='fast' with torch.compile")
    parser.add_argument(
        "--compile-sweep",
        default="staged:65536:1024",
        help="pipeline:token_budget:batch_size settings to time on one compiled encoder (the first compiles)",
    )
    parser.add_argument("--profile", action="store_true", help="kernel-time summary of one fast pass (torch.profiler)")
    parser.add_argument("--deadline", type=float, default=float("inf"), help="seconds; skip compile after this")
    parser.add_argument("--ceiling-rows", type=int, default=512, help="rows of the model-only 128-token batches")
    parser.add_argument(
        "--mask-rounds",
        type=int,
        default=0,
        help="rounds of the T5 attention mask shared across layers (default) vs rebuilt per layer, eager",
    )
    parser.add_argument(
        "--workers", default="", help="num_workers values to time for precision='fast' (worker processes), e.g. 2,3"
    )
    parser.add_argument("--compile-workers", type=int, default=0, help="also time compile=True with this num_workers")
    parser.add_argument(
        "--compile-masks", default="on", help="mask settings to compile an encoder for: on, off or on,off"
    )
    parser.add_argument("--out", default="gpu_throughput.json")
    parser.add_argument("--device", default="cuda", help="cpu only to dry-run this script")
    args = parser.parse_args()
    began = time.perf_counter()

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
    results: dict[str, dict[str, float | str]] = {}
    notes: dict[str, object] = {}

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

        def save() -> None:
            base = results.get("sentence-transformers float32", {}).get("seconds")
            for row in results.values():
                if isinstance(base, float) and isinstance(row.get("seconds"), float):
                    row["speedup_vs_st_fp32"] = round(base / float(row["seconds"]), 2)
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
                    "notes": notes,
                    "machine": machine(),
                },
            )

        def timed(label: str, run: Callable[[list[str]], np.ndarray], warm: list[str]) -> np.ndarray:
            if label in results:  # a repeat of the same setting
                label += f" (run {sum(key.startswith(label) for key in results) + 1})"
            run(warm)  # warm-up (and compilation)
            sync()
            start = time.perf_counter()
            vectors = run(texts)
            sync()
            seconds = time.perf_counter() - start
            achieved = flops / seconds / 1e12
            results[label] = {
                "seconds": round(seconds, 3),
                "tokens_per_s": round(tokens / seconds),
                "tflops": round(achieved, 1),
                "mfu": round(achieved / peak, 4),
            }
            save()
            ratio = results[label].get("speedup_vs_st_fp32")
            print(
                f"{label:>44}: {seconds:7.2f} s {tokens / seconds:12.0f} tokens/s {achieved:7.1f} TFLOP/s "
                f"MFU {achieved / peak:6.1%}" + (f"  {ratio:.2f}x ST fp32" if ratio is not None else ""),
                flush=True,
            )
            return vectors

        warm = texts[:2048]
        for dtype in [getattr(torch, name.strip()) for name in args.baselines.split(",") if name.strip()]:
            st = SentenceTransformer(path, device=device)
            st.to(dtype)
            timed(
                f"sentence-transformers {str(dtype)[6:]}",
                lambda t, st=st: st.encode(t, prompt=instruction),
                warm[:256],
            )
            del st
            if device.startswith("cuda"):
                torch.cuda.empty_cache()

        def fast_encoder(**kwargs: object) -> InstructorEncoder:
            return InstructorEncoder(
                path,
                device=device,
                precision="fast",
                batch_size=args.batch_size,
                token_budget=args.token_budget,
                **kwargs,  # type: ignore[arg-type]
            )

        encoder = fast_encoder()
        default_staged = encoder._runner.staged
        reference: np.ndarray | None = None
        for mode in [m.strip() for m in args.pipeline.split(",") if m.strip()]:
            encoder._runner.staged = mode == "staged"
            vectors = timed(
                f"instructor-integrations fast, {mode}",
                lambda t, e=encoder: e.encode(t, instruction),
                warm,
            )
            if reference is None:
                reference = vectors
            else:  # the pipeline changes the schedule, not the results
                notes[f"max_abs_diff_{mode}_vs_first"] = float(np.abs(vectors - reference).max())
        encoder._runner.staged = default_staged

        def ceiling(label: str, backbone: object, padded: bool = False) -> None:
            """The model alone on pre-tokenized ``ceiling_rows x 128`` batches: the MFU ceiling."""
            seconds, real = model_only(backbone, args.ceiling_rows, 128, sync, device, padded)
            mfu = sum(flops_per_text(n, arch) for n in real) / seconds / 1e12 / peak
            label += ", padded 96-128" if padded else ""
            notes[f"model_only_{label}_{args.ceiling_rows}x128"] = {
                "ms": round(seconds * 1000, 2),
                "mfu": round(mfu, 4),
            }
            print(f"model only, {label}, {args.ceiling_rows}x128: {seconds * 1000:.1f} ms, MFU {mfu:.1%}", flush=True)
            save()

        if args.mask_rounds:
            for _ in range(args.mask_rounds):
                for on in (True, False):
                    share_mask(encoder, on)
                    vectors = timed(
                        f"instructor-integrations fast, mask {'shared' if on else 'per layer'}",
                        lambda t, e=encoder: e.encode(t, instruction),
                        warm,
                    )
                    if reference is not None:
                        key = f"max_abs_diff_mask_{'shared' if on else 'per_layer'}_vs_first"
                        notes[key] = max(float(np.abs(vectors - reference).max()), float(notes.get(key, 0.0)))
            for on in (True, False):
                share_mask(encoder, on)
                ceiling(f"eager, mask {'shared' if on else 'per layer'}", encoder.model[0].auto_model, padded=True)
            share_mask(encoder, device.startswith("cuda"))

        ceiling("eager", encoder.model[0].auto_model)

        def profiled(label: str, encoder: InstructorEncoder) -> None:
            from torch.autograd import DeviceType
            from torch.profiler import ProfilerActivity, profile

            subset = texts[:4096]
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                start = time.perf_counter()
                encoder.encode(subset, instruction)
                sync()
                wall = time.perf_counter() - start
            kernels = [e for e in prof.key_averages() if e.device_type == DeviceType.CUDA]
            busy = sum(e.self_device_time_total for e in kernels) / 1e6
            notes[f"profile_{label}_4096_texts"] = {"wall_s": round(wall, 3), "kernel_time_s": round(busy, 3)}
            print(f"profile, {label}, 4096 texts: wall {wall:.2f} s, kernel time {busy:.2f} s ({busy / wall:.0%})")
            table = prof.key_averages().table(sort_by="self_device_time_total", row_limit=14, max_name_column_width=60)
            print(table, flush=True)
            Path(args.out).with_suffix(f".profile_{label}.txt").write_text(table)
            save()

        if args.profile and device.startswith("cuda"):
            profiled("fast", encoder)

        def with_workers(workers: int, compile: bool = False) -> None:
            """``num_workers`` processes, each with its own model on the device, fed by this process."""
            pooled = fast_encoder(num_workers=workers, compile=compile)
            try:
                vectors = timed(
                    f"instructor-integrations fast{'+compile' if compile else ''}, {workers} worker processes",
                    lambda t: pooled.encode(t, instruction),
                    warm,
                )
                if reference is not None:
                    notes[f"max_abs_diff_workers_{workers}{'_compiled' if compile else ''}_vs_first"] = float(
                        np.abs(vectors - reference).max()
                    )
            finally:
                pooled.close()
                save()

        for workers in [int(n) for n in args.workers.split(",") if n.strip()]:
            with_workers(workers)

        def compile_one(shared: bool) -> None:
            """Compile an encoder (shared mask or not), time the sweep, then its ceilings and profile."""
            compiled = fast_encoder(compile=True)
            share_mask(compiled, shared)  # before the first call, which compiles with the attention chosen
            mask = "shared" if shared else "per layer"
            for index, setting in enumerate(args.compile_sweep.split(",")):
                mode, budget_text, rows_text = setting.split(":")
                budget, rows = int(budget_text), int(rows_text)
                compiled._runner.staged = mode == "staged"
                _sweep_limits(compiled, budget, rows)
                start = time.perf_counter()
                label = f"instructor-integrations fast+compile, mask {mask}, {mode}, budget {budget}"
                timed(label, lambda t: compiled.encode(t, instruction), texts if index == 0 else warm)
                if index == 0:
                    notes[f"compile_mask_{mask}_warmup_plus_timed_pass_s"] = round(time.perf_counter() - start, 1)
            compiled._runner.staged = default_staged
            _sweep_limits(compiled, args.token_budget, args.batch_size)
            ceiling(f"compiled, mask {mask}", compiled.model[0].auto_model, padded=True)
            if args.profile and device.startswith("cuda"):
                profiled(f"compiled_mask_{'shared' if shared else 'per_layer'}", compiled)

        del encoder
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        if args.compile_workers:
            if time.perf_counter() - began > args.deadline:
                notes["compile_workers"] = "skipped: deadline"
                print("compile with workers skipped: past the deadline", flush=True)
            else:
                try:
                    with_workers(args.compile_workers, compile=True)
                except Exception as exc:  # report, do not hide
                    print(f"torch.compile with workers failed: {type(exc).__name__}: {exc}")
                    notes["compile_workers"] = f"{type(exc).__name__}: {exc}"[:500]
                save()
        if args.compile:
            if time.perf_counter() - began > args.deadline:
                notes["compile"] = "skipped: deadline"
                print("compile skipped: past the deadline", flush=True)
            else:
                for setting in [m.strip() for m in args.compile_masks.split(",") if m.strip()]:
                    if time.perf_counter() - began > args.deadline:
                        notes[f"compile_mask_{setting}"] = "skipped: deadline"
                        print(f"compile (mask {setting}) skipped: past the deadline", flush=True)
                        continue
                    try:
                        compile_one(setting == "on")
                    except Exception as exc:  # report, do not hide
                        print(f"torch.compile failed: {type(exc).__name__}: {exc}")
                        results[f"instructor-integrations fast+compile, mask {setting}"] = {
                            "error": f"{type(exc).__name__}: {exc}"[:500]
                        }
                    if device.startswith("cuda"):
                        torch.cuda.empty_cache()
                save()


if __name__ == "__main__":
    main()
