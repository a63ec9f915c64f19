"""Evaluation results checked by value: recomputed from the encoder's vectors with scipy and pytrec_eval."""

from __future__ import annotations

import numpy as np
import pytest

from instructor_integrations import get_encoder
from instructor_integrations.evaluation import evaluate
from instructor_integrations.evaluation.datasets import load_retrieval, load_sts
from instructor_integrations.instructions import get_preset

from ..conftest import FIXTURES, SHARED, TINY

pytestmark = pytest.mark.integration

STS_BENCHMARK = SHARED / "data" / "stsbenchmark"
#: MTEB's published STSBenchmark score for all-MiniLM-L6-v2 (../shared/data/REFERENCE_SCORES.md).
PUBLISHED_MINILM_STSB = 82.03


def test_load_sts_reads_the_benchmark_layout() -> None:
    data = load_sts(FIXTURES / "mini-sts")
    assert len(data.first) == len(data.second) == len(data.scores) == 24
    assert (data.first[0], data.second[0], data.scores[0]) == (
        "A man is playing a guitar.",
        "A man plays the guitar.",
        5.0,
    )
    assert len(set(data.scores)) < len(data.scores)  # the gold scores have ties


def test_load_sts_names_a_short_row(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "sts-test.csv").write_text("a\tb\tc\td\t1.0\tonly one sentence\n")
    with pytest.raises(ValueError, match=r"sts-test.csv:1: expected at least 7 tab-separated columns, got 6"):
        load_sts(tmp_path)


def test_sts_score_is_the_spearman_of_the_cosines() -> None:
    from scipy.stats import spearmanr

    result = evaluate(FIXTURES / "mini-sts", model=str(TINY), device="cpu", doc_instruction="Represent the sentence: ")
    data = load_sts(FIXTURES / "mini-sts")
    encoder = get_encoder(str(TINY), device="cpu")
    a = encoder.encode(data.first, "Represent the sentence: ")
    b = encoder.encode(data.second, "Represent the sentence: ")
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    expected = 100 * float(spearmanr(cosine, data.scores).statistic)
    assert result.task == "sts" and result.counts == {"pairs": 24}
    assert result.metrics["cos_spearman"] == pytest.approx(expected, abs=1e-4)


def test_retrieval_scores_equal_pytrec_eval_on_the_encoder_vectors() -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    result = evaluate(FIXTURES / "mini-beir", model=str(TINY), device="cpu", preset="SciFact")
    data = load_retrieval(FIXTURES / "mini-beir")
    preset = get_preset("SciFact")
    encoder = get_encoder(str(TINY), device="cpu")
    doc_ids = list(data.corpus)
    docs = encoder.encode([data.corpus[d] for d in doc_ids], preset.document)
    query_ids = list(data.queries)
    queries = encoder.encode([data.queries[q] for q in query_ids], preset.query)
    scores = queries @ docs.T / np.outer(np.linalg.norm(queries, axis=1), np.linalg.norm(docs, axis=1))
    run = {q: {d: float(scores[i, j]) for j, d in enumerate(doc_ids)} for i, q in enumerate(query_ids)}
    per_query = pytrec_eval.RelevanceEvaluator(data.qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    assert result.metrics["ndcg@10"] == pytest.approx(
        100 * np.mean([v["ndcg_cut_10"] for v in per_query.values()]), abs=1e-3
    )
    assert result.metrics["recall@100"] == pytest.approx(
        100 * np.mean([v["recall_100"] for v in per_query.values()]), abs=1e-3
    )
    assert result.instructions == {"query": preset.query, "document": preset.document}


@pytest.mark.slow
def test_minilm_reproduces_the_published_sts_benchmark_score(minilm: str) -> None:
    if not (STS_BENCHMARK / "sts-test.csv").exists():
        pytest.skip(f"STS Benchmark not found at {STS_BENCHMARK}")
    result = evaluate(STS_BENCHMARK, model=minilm, no_instructions=True, device="cpu", precision="exact")
    assert result.counts == {"pairs": 1379}
    assert round(result.metrics["cos_spearman"], 2) == PUBLISHED_MINILM_STSB
