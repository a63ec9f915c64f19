"""Event-loop lag while 200 concurrent async queries are embedded (moved from the tests).

    python benchmarks/experiments/async_queries.py [--out docs/benchmarks/async_queries.json]

For LangChain's ``aembed_query`` and LlamaIndex's ``aget_query_embedding`` on the tiny checkpoint: the
wall time of 200 concurrent queries, how often a 10 ms ticker task ran meanwhile and its largest lag,
against the same 200 queries made one after another without a loop (the baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py
from _common import ROOT, TINY, machine, write_json

QUERIES = [f"question number {i} about {['tides', 'bees', 'volcanoes', 'vaccines'][i % 4]}?" for i in range(200)]


async def concurrent(call, queries: list[str]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    gc.collect()
    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    await asyncio.gather(*(call(q) for q in queries))
    elapsed = time.perf_counter() - started
    stop.set()
    await tick
    return {"seconds": elapsed, "ticks": len(lags), "max_lag_ms": 1000 * max(lags, default=0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "async_queries.json")
    args = parser.parse_args()
    from instructor_integrations.langchain import InstructorEmbeddings
    from instructor_integrations.llama_index import InstructorEmbedding

    results = {}
    for name, model, sync, call in (
        ("langchain", lc := InstructorEmbeddings(model_name=str(TINY), device="cpu"), lc.embed_query, lc.aembed_query),
        (
            "llama-index",
            li := InstructorEmbedding(model_name=str(TINY), device="cpu"),
            li.get_query_embedding,
            li.aget_query_embedding,
        ),
    ):
        del model
        started = time.perf_counter()
        for query in QUERIES:
            sync(query)
        serial = time.perf_counter() - started
        stats = asyncio.run(concurrent(call, QUERIES))
        stats["serial_seconds"] = serial
        stats["ratio_to_serial"] = round(serial / stats["seconds"], 2)
        results[name] = stats
        print(
            f"{name}: {len(QUERIES)} concurrent queries in {stats['seconds']:.2f}s ({stats['ratio_to_serial']}x the "
            f"queries/s of serial calls), {stats['ticks']} loop ticks, max lag {stats['max_lag_ms']:.1f} ms"
        )
    write_json(args.out, {"benchmark": "async_queries", "machine": machine(), "results": results})


if __name__ == "__main__":
    main()
