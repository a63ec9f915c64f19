"""Plot the benchmark results in docs/benchmarks/*.json into docs/img/performance.png.

python benchmarks/plot.py
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "benchmarks"


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def bars(ax, title: str, results: dict, key: str, label: str) -> None:  # type: ignore[no-untyped-def]
    names = list(results)
    values = [results[n].get(key, 0) for n in names]
    colours = ["#9e9e9e" if n.startswith("st-") or "sentence-transformers" in n else "#1f77b4" for n in names]
    ax.barh(range(len(names)), values, color=colours)
    ax.set_yticks(
        range(len(names)),
        [
            n.replace("instructor-integrations", "ours")
            .replace(" + collection.add", "")
            .replace("st-", "ST ")
            .replace("1 feeder thread(s)", "1 thread")
            .replace(" feeder thread(s)", " threads")
            .replace(" worker processes", " workers")
            for n in names
        ],
        fontsize=8,
    )
    ax.invert_yaxis()
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(label, fontsize=8)
    for i, value in enumerate(values):
        ax.text(value, i, f" {value:,.0f}" if value >= 100 else f" {value:.1f}", va="center", fontsize=7)


def main() -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
    # The 2-core CPU benchmarks on both VMs they ran on: the AMX Xeon, and the Zen 5 EPYC (no AMX).
    cpu = dict(load("encoder_throughput.json")["results"])
    cpu.update({f"{n} (Zen 5)": r for n, r in load("encoder_throughput_zen5.json")["results"].items()})
    bars(axes[0], "T5-base encoder, SciFact mix, 2-core Xeon / Zen 5", cpu, "tokens_per_s", "tokens/s")
    ingest = dict(load("scifact_ingest.json")["results"])
    ingest.update({f"{n} (Zen 5)": r for n, r in load("scifact_ingest_zen5.json")["results"].items()})
    bars(axes[1], "SciFact into Chroma, MiniLM, 2-core Xeon / Zen 5", ingest, "docs_per_s", "docs/s")
    # Run 1 has the sentence-transformers baselines; run 5 the current default and the best setting.
    gpu = dict(load("gpu_throughput_h200.json")["results"])
    gpu.update({f"{name} (run 5)": row for name, row in load("gpu_throughput_h200_run5.json")["results"].items()})
    bars(axes[2], "instructor-large, 121 tokens, H200 (runs 1, 5)", gpu, "tokens_per_s", "tokens/s")
    fig.tight_layout()
    out = ROOT / "docs" / "img" / "performance.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
