"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

# A benchmark measures the package as a CPU service runs it: opted in to its process settings, as
# `instructor-embed` opts in for itself (a library import never tunes the process). Set it to 0 to measure without.
os.environ.setdefault("INSTRUCTOR_INTEGRATIONS_TUNE_CPU", "1")

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "fixtures" / "tiny-instructor"
SHARED = ROOT.parent / "shared"
SCIFACT = SHARED / "data" / "scifact"

ARCHS = {
    # hkunlp/instructor-base (GTR-T5-base encoder) and instructor-large (GTR-T5-large encoder).
    "base": {"d_model": 768, "num_layers": 12, "num_heads": 12, "d_kv": 64, "d_ff": 3072},
    "large": {"d_model": 1024, "num_layers": 24, "num_heads": 16, "d_kv": 64, "d_ff": 4096},
}


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    from instructor_integrations._engine.runtime import cpu_flags

    info: dict[str, Any] = {
        "cpu": cpu,
        # What decides the CPU's bfloat16 path (AMX tiles, AVX512-BF16) and the attention "fast" uses.
        "cpu_bf16_flags": sorted({"amx_bf16", "avx512_bf16"} & cpu_flags()),
        # The kernels this process can use: "AVX2" on an AVX-512 CPU means a CPUID mask (scripts/avx2only).
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpuid_mask": "avx2only" if "avx2only" in os.environ.get("LD_PRELOAD", "") else None,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import sentence_transformers
        import transformers

        info["sentence_transformers"] = sentence_transformers.__version__
        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    with contextlib.suppress(OSError):
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    return info


def build_random_instructor(folder: Path, arch: str = "base", seed: int = 0) -> Path:
    """An INSTRUCTOR-layout checkpoint with random weights (T5 encoder + mean pooling + Dense + Normalize)."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    dims = ARCHS[arch]
    path = folder / f"instructor-{arch}-random"
    if (path / "modules.json").exists():
        return path
    raw = folder / f"t5-{arch}-raw"
    config = T5Config(vocab_size=32128, feed_forward_proj="relu", is_encoder_decoder=False, use_cache=False, **dims)
    T5EncoderModel(config).save_pretrained(raw)
    for name in ("spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(TINY / name, raw / name)
    d = dims["d_model"]
    modules = [
        models.Transformer(str(raw), max_seq_length=512),
        models.Pooling(d, pooling_mode="mean"),
        models.Dense(d, 768, bias=False, activation_function=torch.nn.Identity()),
        models.Normalize(),
    ]
    SentenceTransformer(modules=modules, device="cpu").save(str(path))
    return path


def scifact_workload(n_docs: int, n_queries: int) -> tuple[list[str], list[str]]:
    """The first ``n_docs`` SciFact abstracts (title + text) and ``n_queries`` test queries."""
    docs: list[str] = []
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            docs.append((row.get("title", "") + " " + row["text"]).strip())
            if len(docs) >= n_docs:
                break
    queries: list[str] = []
    with open(SCIFACT / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            queries.append(json.loads(line)["text"])
            if len(queries) >= n_queries:
                break
    return docs, queries


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------- interleaved rounds of fresh processes
BASELINE = "st-fp32"


def parse_variants(parser: argparse.ArgumentParser, text: str, allowed: tuple[str, ...]) -> list[str]:
    """The comma-separated ``--variants``; the baseline must be among them."""
    variants = [v.strip() for v in text.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(allowed))
    if unknown or BASELINE not in variants:
        parser.error(f"--variants must include {BASELINE!r} and name only {allowed}; got {unknown or variants}")
    return variants


def run_variant(command: list[str], variant: str, result: Path, **env: str) -> dict[str, Any]:
    """Run one measurement in a fresh process and read its JSON result.

    The package's variants run as a CPU service would, opted in to its process-wide CPU settings
    (``INSTRUCTOR_INTEGRATIONS_TUNE_CPU=1``, as ``instructor-embed`` does for itself); the baseline runs
    with ``INSTRUCTOR_INTEGRATIONS_TUNE_CPU=0``: it never gets them, even though the worker imports the package.
    """
    full_env = {**os.environ, **env}
    full_env["INSTRUCTOR_INTEGRATIONS_TUNE_CPU"] = "0" if variant == BASELINE else "1"
    subprocess.run(command, check=True, env=full_env)
    data: dict[str, Any] = json.loads(result.read_text())
    return data


def round_stats(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per variant: seconds and setup seconds of each round, the median seconds, the per-round ratios to
    the baseline and their median, and the median ratio counting setup (load, warm-up, compilation)."""
    stats: dict[str, dict[str, Any]] = {}
    for variant, rows in runs.items():
        seconds = [r["seconds"] for r in rows]
        pairs = list(zip(runs[BASELINE], rows, strict=True))
        ratios = [b["seconds"] / r["seconds"] for b, r in pairs]
        with_setup = [(b["seconds"] + b["setup_seconds"]) / (r["seconds"] + r["setup_seconds"]) for b, r in pairs]
        stats[variant] = {
            "seconds": [round(s, 2) for s in seconds],
            "median_seconds": statistics.median(seconds),
            "setup_seconds": [round(r["setup_seconds"], 1) for r in rows],
            "speedup_per_round": [round(x, 2) for x in ratios],
            "speedup": round(statistics.median(ratios), 2),
            "speedup_with_setup": round(statistics.median(with_setup), 2),
        }
    return stats
