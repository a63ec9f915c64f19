"""Retrieval and STS metrics, computed as trec_eval (through pytrec_eval, as BEIR and MTEB) computes them.

A run maps each query id to its retrieved documents: either a ranked list of document ids, or a mapping
of document id to score. A mapping is ranked the trec_eval way: by score, highest first, and equal
scores by document id in descending order.

The mean is taken over the queries that trec_eval reports: those that are in the run and have at least
one judged document in the qrels. A query whose judged documents are all non-relevant (relevance 0)
counts, with a score of 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

__all__ = ["mrr_at_k", "ndcg_at_k", "ranked", "recall_at_k", "spearman"]

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Sequence[str] | Mapping[str, float]]


def ranked(retrieved: Sequence[str] | Mapping[str, float]) -> list[str]:
    """Document ids in rank order: a list as it is, a score mapping by score then id (both descending).

    Examples:
        >>> ranked({"d1": 0.5, "d2": 0.9, "d3": 0.5})
        ['d2', 'd3', 'd1']
        >>> ranked(["d3", "d1"])
        ['d3', 'd1']
    """
    if isinstance(retrieved, Mapping):
        return [doc for doc, _ in sorted(retrieved.items(), key=lambda item: (item[1], item[0]), reverse=True)]
    return list(retrieved)


def _evaluated(qrels: Qrels, run: Run) -> Iterator[tuple[Mapping[str, int], list[str]]]:
    """``(judgements, ranked ids)`` of every query trec_eval reports (in the run, with judgements)."""
    for query, judged in qrels.items():
        if judged and query in run:
            yield judged, ranked(run[query])


def _mean(scores: list[float]) -> float:
    return float(np.mean(scores)) if scores else 0.0


def ndcg_at_k(qrels: Qrels, run: Run, k: int) -> float:
    """Mean nDCG@k (trec_eval's ``ndcg_cut``: linear gain, the ideal ranking from all judged documents).

    Examples:
        >>> ndcg_at_k({"q": {"d1": 1}}, {"q": ["d2", "d1"]}, 10)
        0.6309297535714575
        >>> ndcg_at_k({"q": {"d1": 2, "d2": 1}}, {"q": {"d1": 0.3, "d2": 0.9}}, 10)  # graded, by score
        0.8597186998521972
    """
    scores = []
    for judged, ids in _evaluated(qrels, run):
        gains = (judged.get(doc, 0) for doc in ids[:k])
        dcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains) if gain > 0)
        ideal = sorted((rel for rel in judged.values() if rel > 0), reverse=True)[:k]
        idcg = sum(rel / math.log2(rank + 2) for rank, rel in enumerate(ideal))
        scores.append(dcg / idcg if idcg > 0 else 0.0)
    return _mean(scores)


def recall_at_k(qrels: Qrels, run: Run, k: int) -> float:
    """Mean fraction of a query's relevant documents found in its top ``k`` (0 for a query with none).

    Examples:
        >>> recall_at_k({"q": {"d1": 1, "d3": 1}}, {"q": ["d2", "d1"]}, 100)
        0.5
        >>> recall_at_k({"q": {"d1": 1}, "r": {"d2": 0}}, {"q": ["d1"], "r": ["d2"]}, 100)  # r has no relevant
        0.5
    """
    scores = []
    for judged, ids in _evaluated(qrels, run):
        relevant = {doc for doc, rel in judged.items() if rel > 0}
        scores.append(len(relevant.intersection(ids[:k])) / len(relevant) if relevant else 0.0)
    return _mean(scores)


def mrr_at_k(qrels: Qrels, run: Run, k: int) -> float:
    """Mean reciprocal rank of the first relevant document within the top ``k`` (0 when none is there).

    Examples:
        >>> mrr_at_k({"q": {"d1": 1}}, {"q": ["d2", "d1"]}, 10)
        0.5
    """
    scores = []
    for judged, ids in _evaluated(qrels, run):
        first = next((rank for rank, doc in enumerate(ids[:k]) if judged.get(doc, 0) > 0), None)
        scores.append(0.0 if first is None else 1.0 / (first + 1))
    return _mean(scores)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as scipy.stats.rankdata)."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation with ties averaged.

    Examples:
        >>> spearman([1, 2, 3, 4], [10, 20, 30, 40])
        1.0
    """
    x = _ranks(np.asarray(a, dtype=np.float64))
    y = _ranks(np.asarray(b, dtype=np.float64))
    x -= x.mean()
    y -= y.mean()
    denominator = math.sqrt(float((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denominator) if denominator else 0.0
