"""Loaders for BEIR-format retrieval folders and the STS Benchmark."""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RetrievalData", "StsData", "detect_kind", "load_retrieval", "load_sts"]


@dataclass
class RetrievalData:
    """A BEIR retrieval set: ``corpus`` id -> document text (``title + " " + text``)."""

    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


@dataclass
class StsData:
    """Sentence pairs with gold similarity scores (0-5)."""

    first: list[str]
    second: list[str]
    scores: list[float]


def detect_kind(folder: Path) -> str:
    """``"retrieval"`` for a BEIR folder, ``"sts"`` for an STS Benchmark folder.

    Raises:
        FileNotFoundError: The folder is neither; the message lists what was looked for.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder {str(folder)!r} does not exist")
    if (folder / "corpus.jsonl").exists() or (folder / "corpus.jsonl.gz").exists():
        return "retrieval"
    if (folder / "sts-test.csv").exists():
        return "sts"
    raise FileNotFoundError(
        f"{str(folder)!r} is neither a BEIR folder (corpus.jsonl[.gz], queries.jsonl, qrels/test.tsv) nor an "
        "STS Benchmark folder (sts-test.csv)"
    )


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from None


def load_retrieval(
    folder: Path,
    *,
    split: str = "test",
    limit_queries: int | None = None,
    max_corpus: int | None = None,
    seed: int = 0,
) -> RetrievalData:
    """Load a BEIR folder.

    Args:
        folder: Holds ``corpus.jsonl`` or ``corpus.jsonl.gz``, ``queries.jsonl`` and ``qrels/<split>.tsv``.
        split: The qrels split.
        limit_queries: Keep only the first N judged queries (in qrels order).
        max_corpus: Keep the judged documents of the kept queries plus other documents (a fixed random
            sample) up to this many in all.
        seed: Seed of that sample.
    """
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        raise FileNotFoundError(f"qrels file {str(qrels_path)!r} is missing (BEIR layout: qrels/{split}.tsv)")
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path, encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for number, fields in enumerate(reader, 1):
            if number == 1 and fields and fields[0] == "query-id":
                continue
            if len(fields) < 3:
                raise ValueError(f"{qrels_path}:{number}: expected query-id, corpus-id, score")
            qrels.setdefault(fields[0], {})[fields[1]] = int(fields[2])
    if limit_queries is not None:
        qrels = dict(list(qrels.items())[:limit_queries])
    queries = {str(row["_id"]): str(row["text"]) for row in _jsonl(folder / "queries.jsonl")}
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise ValueError(f"{len(missing)} judged queries are missing from queries.jsonl, e.g. {missing[0]!r}")
    queries = {q: queries[q] for q in qrels}
    corpus_path = folder / "corpus.jsonl"
    if not corpus_path.exists():
        corpus_path = folder / "corpus.jsonl.gz"
    corpus: dict[str, str] = {}
    for row in _jsonl(corpus_path):
        title = str(row.get("title") or "")
        corpus[str(row["_id"])] = (title + " " + str(row.get("text") or "")).strip()
    if max_corpus is not None:
        judged = {doc for docs in qrels.values() for doc in docs if doc in corpus}
        others = sorted(set(corpus) - judged)
        random.Random(seed).shuffle(others)
        keep = judged | set(others[: max(0, max_corpus - len(judged))])
        corpus = {doc: text for doc, text in corpus.items() if doc in keep}
    return RetrievalData(corpus=corpus, queries=queries, qrels=qrels)


def load_sts(folder: Path, *, split: str = "test") -> StsData:
    """Load ``sts-<split>.csv`` (tab separated: genre, file, year, id, score, s1, s2[, ...])."""
    path = folder / f"sts-{split}.csv"
    if not path.exists():
        raise FileNotFoundError(f"STS file {str(path)!r} is missing")
    first: list[str] = []
    second: list[str] = []
    scores: list[float] = []
    with open(path, encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if len(row) < 7:
                raise ValueError(f"{path}:{number}: expected at least 7 tab-separated columns, got {len(row)}")
            scores.append(float(row[4]))
            first.append(row[5])
            second.append(row[6])
    return StsData(first=first, second=second, scores=scores)
