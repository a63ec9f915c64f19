"""Retrieval metrics against pytrec_eval (the trec_eval binding BEIR and MTEB score with), Spearman against scipy."""

from __future__ import annotations

import random

import numpy as np
import pytest

from instructor_integrations.evaluation.metrics import mrr_at_k, ndcg_at_k, ranked, recall_at_k, spearman

pytrec_eval = pytest.importorskip("pytrec_eval", reason="pip install pytrec-eval-terrier (the [test] extra)")

DOCS = [f"d{i:02d}" for i in range(40)]


def random_case(rng: random.Random, *, ties: bool) -> tuple[dict, dict]:
    """Graded qrels (0-3, some queries with no relevant or no judged document) and a scored run."""
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(8):
        query = f"q{q}"
        qrels[query] = {doc: rng.choice([0, 0, 1, 2, 3]) for doc in rng.sample(DOCS, rng.randint(0, 10))}
        if rng.random() < 0.9:  # some judged queries are missing from the run
            levels = [0.1, 0.25, 0.5, 0.75, 0.9] if ties else None
            run[query] = {
                doc: (rng.choice(levels) if levels else rng.random()) for doc in rng.sample(DOCS, rng.randint(1, 30))
            }
    run["unjudged"] = {"d00": 1.0}  # a run query with no qrels is not scored
    return qrels, run


def trec(qrels: dict, run: dict, measure: str) -> float:
    results = pytrec_eval.RelevanceEvaluator(qrels, {measure}).evaluate(run)
    key = measure.replace(".", "_")
    return float(np.mean([scores[key] for scores in results.values()])) if results else 0.0


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(25))
def test_ndcg_and_recall_equal_pytrec_eval(seed: int, ties: bool) -> None:
    qrels, run = random_case(random.Random(seed), ties=ties)
    for k in (1, 3, 10):
        assert ndcg_at_k(qrels, run, k) == pytest.approx(trec(qrels, run, f"ndcg_cut.{k}"), abs=1e-12)
        assert recall_at_k(qrels, run, k) == pytest.approx(trec(qrels, run, f"recall.{k}"), abs=1e-12)


@pytest.mark.parametrize("seed", range(25))
def test_mrr_at_k_equals_pytrec_eval_recip_rank_on_the_top_k(seed: int) -> None:
    qrels, run = random_case(random.Random(seed), ties=True)
    for k in (1, 3, 10):
        top = {query: ranked(scores)[:k] for query, scores in run.items()}
        as_scores = {query: {doc: float(k - rank) for rank, doc in enumerate(ids)} for query, ids in top.items()}
        assert mrr_at_k(qrels, run, k) == pytest.approx(trec(qrels, as_scores, "recip_rank"), abs=1e-12)


def test_ranked_lists_and_score_maps_give_the_same_metrics() -> None:
    qrels, run = random_case(random.Random(7), ties=True)
    lists = {query: ranked(scores) for query, scores in run.items()}
    for metric in (ndcg_at_k, recall_at_k, mrr_at_k):
        assert metric(qrels, lists, 10) == metric(qrels, run, 10)


def test_ties_are_broken_by_document_id_descending_as_trec_eval() -> None:
    qrels = {"q": {"a": 1}}
    run = {"q": {"a": 0.5, "b": 0.5}}  # trec_eval ranks "b" first
    assert ranked(run["q"]) == ["b", "a"]
    assert mrr_at_k(qrels, run, 10) == 0.5 == trec(qrels, run, "recip_rank")


def test_queries_without_relevant_documents_count_as_zero_and_unjudged_ones_do_not_count() -> None:
    qrels = {"q": {"a": 1}, "none-relevant": {"x": 0}, "unjudged": {}}
    run = {"q": ["a"], "none-relevant": ["x"], "unjudged": ["a"]}
    assert recall_at_k(qrels, run, 10) == 0.5  # q: 1, none-relevant: 0; unjudged is not averaged
    assert ndcg_at_k(qrels, run, 10) == 0.5
    assert mrr_at_k(qrels, run, 10) == 0.5


def test_no_scored_query_gives_zero() -> None:
    assert ndcg_at_k({"q": {"a": 1}}, {"other": ["a"]}, 10) == 0.0


@pytest.mark.parametrize("seed", range(10))
def test_spearman_equals_scipy_with_ties(seed: int) -> None:
    from scipy.stats import spearmanr

    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 6, size=200).astype(float)  # STS gold scores repeat (0-5 in steps)
    predicted = np.round(gold + rng.normal(0, 1.5, size=200), 1)  # rounded: ties on both sides
    assert spearman(predicted, gold) == pytest.approx(float(spearmanr(predicted, gold).statistic), abs=1e-12)


def test_spearman_of_constant_input_is_zero_not_nan() -> None:
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) == 0.0
