"""Classification through the evaluation harness: real model on a small set; Banking77 from ../shared (slow)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from instructor_integrations import InstructorEncoder
from instructor_integrations.evaluation import evaluate
from instructor_integrations.evaluation.classification import logistic_regression_scores, undersample
from instructor_integrations.evaluation.datasets import load_classification

from ..conftest import FIXTURES, SHARED

MINI = FIXTURES / "mini-classification"
BANKING77 = SHARED / "data" / "banking77"
# all-MiniLM-L6-v2's published Banking77 accuracy (MTEB results, ../shared/data/REFERENCE_SCORES.md).
PUBLISHED_MINILM_BANKING77 = 80.04

pytestmark = pytest.mark.integration


def test_minilm_tells_the_mini_intents_apart(minilm: str) -> None:
    result = evaluate(MINI, model=minilm, no_instructions=True, device="cpu")
    assert result.task == "classification"
    assert result.counts == {"train_embedded": 30, "test": 12, "labels": 3, "experiments": 10}
    assert result.metrics["accuracy"] >= 80.0  # three plain intents; chance is 33
    assert set(result.metrics) == {"accuracy", "accuracy_stderr", "f1", "f1_stderr"}


def test_every_text_is_embedded_once_with_the_instruction(
    tiny_encoder: InstructorEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[list[str], Any]] = []
    original = tiny_encoder.encode

    def spy(texts: list[str], instruction: Any = None, **kwargs: Any) -> Any:
        calls.append((list(texts), instruction))
        return original(texts, instruction, **kwargs)

    monkeypatch.setattr(tiny_encoder, "encode", spy)
    result = evaluate(MINI, encoder=tiny_encoder, doc_instruction="Represent the bank purpose for classification: ")
    data = load_classification(MINI)
    picked = {i for rows in undersample(data.train_labels) for i in rows}
    assert [instruction for _, instruction in calls] == ["Represent the bank purpose for classification: "] * 2
    assert sorted(calls[0][0]) == sorted(data.train_texts[i] for i in picked)
    assert calls[1][0] == data.test_texts
    assert result.instructions["document"] == "Represent the bank purpose for classification: "


def test_scores_are_the_mean_and_spread_of_the_experiments(tiny_encoder: InstructorEncoder, tmp_path: Path) -> None:
    # 200 training texts per label, so that most are never sampled and the harness, which embeds only
    # the sampled ones, has to map them back to their rows.
    with open(MINI / "train.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(tmp_path / "train.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "category"])
        writer.writeheader()
        writer.writerows(
            {"text": f"{row['text']} ({k})", "category": row["category"]} for k in range(20) for row in rows
        )
    shutil.copy(MINI / "test.csv", tmp_path / "test.csv")
    instruction = "Represent the bank purpose for classification: "
    data = load_classification(tmp_path)
    train = tiny_encoder.encode(data.train_texts, instruction)  # every text; the harness embeds the sampled ones
    test = tiny_encoder.encode(data.test_texts, instruction)
    runs = [
        logistic_regression_scores(train[rows], [data.train_labels[i] for i in rows], test, data.test_labels)
        for rows in undersample(data.train_labels)
    ]
    result = evaluate(tmp_path, encoder=tiny_encoder, doc_instruction=instruction)
    assert result.counts["train_embedded"] < len(data.train_texts)
    for name in ("accuracy", "f1"):
        values = [100 * run[name] for run in runs]
        assert result.metrics[name] == pytest.approx(np.mean(values), abs=1e-4)
        assert result.metrics[f"{name}_stderr"] == pytest.approx(np.std(values), abs=1e-4)
    assert len({run["accuracy"] for run in runs}) > 1  # the experiments differ, so the spread means something


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"via": "chroma"}, "classification is evaluated with via='raw'"),
        ({"limit_queries": 5}, "limit_queries=5 applies to retrieval data; classification data has no queries"),
        ({"max_corpus": 100}, "max_corpus=100 applies to retrieval data"),
        ({"query_instruction": "Represent: "}, r"document_instruction.*is the instruction of every text"),
    ],
)
def test_retrieval_options_are_refused_before_the_model_loads(option: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(MINI, model="no/such-model", **option)


@pytest.mark.slow
def test_banking77_reproduces_the_published_minilm_accuracy(minilm: str) -> None:
    if not (BANKING77 / "train.csv").exists():
        pytest.skip(f"Banking77 not found at {BANKING77}")
    result = evaluate(BANKING77, model=minilm, no_instructions=True, device="cpu", precision="exact")
    assert result.counts["labels"] == 77 and result.counts["test"] == 3080
    # Another sampling of the same size (a continuing generator) gives 79.66: 0.2 still tells them apart,
    # and leaves room for 6 of the 3,080 test texts (0.032 each) to flip between CPUs whose float32
    # kernels round differently (AVX2, AVX-512) and scikit-learn's solver on their BLAS.
    assert abs(result.metrics["accuracy"] - PUBLISHED_MINILM_BANKING77) <= 0.2
