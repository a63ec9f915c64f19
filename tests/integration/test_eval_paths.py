"""SciFact, reduced: every --via path agrees with the raw encoder (real data from ../shared)."""

from __future__ import annotations

import pytest

from instructor_integrations.evaluation import evaluate

from ..conftest import SHARED

SCIFACT = SHARED / "data" / "scifact"

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def results(minilm: str) -> dict:
    if not (SCIFACT / "qrels" / "test.tsv").exists():
        pytest.skip(f"SciFact not found at {SCIFACT}")
    out = {}
    for via in ("raw", "chroma", "langchain", "llama-index"):
        out[via] = evaluate(
            SCIFACT, model=minilm, no_instructions=True, via=via, device="cpu", limit_queries=40, max_corpus=1040
        )
    return out


def test_reduced_scifact_shape(results: dict) -> None:
    raw = results["raw"]
    assert raw.counts["queries"] == 40
    assert raw.counts["documents"] == 1040
    assert 30.0 < raw.metrics["ndcg@10"] <= 100.0  # a real model on real data, not noise


@pytest.mark.parametrize("via", ["chroma", "langchain", "llama-index"])
def test_paths_agree_with_raw(results: dict, via: str) -> None:
    for metric in ("ndcg@10", "recall@100", "mrr@10"):
        assert abs(results[via].metrics[metric] - results["raw"].metrics[metric]) <= 0.1, (via, metric)
