"""Four batching choices of the encoder, weighed against the alternative on Benchmark 1's workload.

The instructor-base architecture (random weights, the test fixture's tokenizer), ``precision="fast"``
on the CPU; SciFact abstracts with the document instruction and queries with the query instruction,
two ``encode`` calls per measurement as in Benchmark 1. One process; the variants are interleaved over
``--rounds`` rounds and the ratios are medians of per-round ratios.

* **sort by token count** (what the encoder does) against **sort by characters** (what plain
  sentence-transformers does). For the latter the encoder is given, for every text, its character
  count divided by the workload's mean characters per token in place of its token count, so batches
  are still cut at the same token budget, but on estimates. Also printed: the padded tokens each plan
  makes the model process, per real token.
* **batches bounded by a token budget** (4,096 padded tokens on the CPU, and ``batch_size`` rows)
  against **``batch_size`` rows only** (``token_budget=None``; the default 32 rows).
* **identical inputs embedded once per call**: the same workload with a quarter of the abstracts
  repeated (1.25x the rows): with the deduplication it should take the time of the plain workload.
* **instruction token counts once per distinct instruction**: the time to count the instruction again
  for every row, which the cache saves, against the time of the whole call.

    python benchmarks/experiments/batching_choices.py [--docs 160 --queries 300 --rounds 3]

Writes docs/benchmarks/batching_choices.json.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import instructor_integrations  # noqa: F401  (the package's CPU settings, before torch loads)

# isort: split
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py
from _common import ROOT, build_random_instructor, machine, scifact_workload, write_json


def padded_tokens(encoder: Any, prompts: list[str], estimates: list[int], true: list[int], size: int) -> int:
    """Tokens the model processes (rows x longest row, capped) for the plan made from ``estimates``."""
    total = 0
    for _, members in encoder._plan_batches(prompts, estimates, size):
        total += len(members) * min(max(true[i] for i in members), encoder.max_seq_length)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=160)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "batching_choices.json")
    args = parser.parse_args()

    from instructor_integrations import InstructorEncoder
    from instructor_integrations.instructions import get_preset

    preset = get_preset("SciFact", "hkunlp/instructor-base")
    docs, queries = scifact_workload(args.docs, args.queries)
    repeated = docs + docs[: len(docs) // 4]
    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_random_instructor(Path(tmp), "base"))
        by_tokens = InstructorEncoder(model, device="cpu", precision="fast")
        by_characters = InstructorEncoder(model, device="cpu", precision="fast")
        rows_only = InstructorEncoder(model, device="cpu", precision="fast", token_budget=None)

        # The workload's mean characters per token, over the texts as the encoder counts them.
        texts = [preset.document + d for d in docs] + [preset.query + q for q in queries]
        counts = by_tokens._token_counts(texts)
        per_token = sum(len(t) for t in texts) / sum(counts)

        def estimate(bodies: list[str]) -> list[int]:
            return [max(1, math.ceil(len(body) / per_token)) for body in bodies]

        by_characters._token_counts = estimate  # type: ignore[method-assign]

        # The plans' padding, from the true counts (instruction tokens included, as the encoder adds them).
        padding: dict[str, float] = {}
        real = sum(min(c, by_tokens.max_seq_length) for c in counts)
        for name, lengths in (("tokens", counts), ("characters", estimate(texts))):
            prompts = ["d"] * len(docs) + ["q"] * len(queries)
            padded = padded_tokens(by_tokens, prompts, lengths, counts, by_tokens.batch_size)
            padding[name] = round(padded / real, 4)

        def call(encoder: Any, documents: list[str]) -> np.ndarray:
            return np.concatenate([encoder.encode(documents, preset.document), encoder.encode(queries, preset.query)])

        variants = {
            "tokens": lambda: call(by_tokens, docs),
            "characters": lambda: call(by_characters, docs),
            "rows only, no token budget": lambda: call(rows_only, docs),
            "tokens, a quarter of the abstracts repeated": lambda: call(by_tokens, repeated),
        }
        outputs = {name: run() for name, run in variants.items()}  # warm-up, and the vectors to compare
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for round_number in range(args.rounds):
            order = names[round_number % len(names) :] + names[: round_number % len(names)]
            for name in order:
                start = time.perf_counter()
                variants[name]()
                seconds[name].append(time.perf_counter() - start)

        # The cache's saving: counting the instruction again for every row.
        rows = len(docs) + len(queries)
        start = time.perf_counter()
        by_tokens._token_counts([preset.document] * len(docs) + [preset.query] * len(queries))
        per_row_counting = time.perf_counter() - start

    cosine = float((outputs["characters"] * outputs["tokens"]).sum(1).min())
    ratios = {
        name: round(statistics.median(t / b for t, b in zip(seconds[name], seconds["tokens"], strict=True)), 3)
        for name in names
    }
    result = {
        "machine": machine(),
        "workload": {"abstracts": len(docs), "queries": len(queries), "tokens": real, "chars_per_token": per_token},
        "seconds": {name: [round(s, 2) for s in values] for name, values in seconds.items()},
        "time_vs_tokens_median": ratios,
        "padded_per_real_token": padding,
        "min_cosine_characters_vs_tokens": cosine,
        "rows_repeated": len(repeated) - len(docs),
        "instruction_counted_per_row_seconds": round(per_row_counting, 4),
        "rows": rows,
    }
    print(f"workload: {len(docs)} abstracts + {len(queries)} queries, {real} tokens, {per_token:.2f} characters/token")
    for name in names:
        print(f"  {name:45s} {seconds[name]} s  time {ratios[name]:.2f}x of 'tokens'")
    print(f"  padded tokens per real token: by tokens {padding['tokens']}, by characters {padding['characters']}")
    print(f"  lowest cosine between the two sorts' vectors: {cosine:.6f}")
    print(f"  counting the instruction for each of {rows} rows: {per_row_counting * 1000:.1f} ms")
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
