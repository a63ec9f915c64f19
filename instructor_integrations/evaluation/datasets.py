"""Loaders for BEIR-format retrieval folders, the STS Benchmark and classification folders."""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ClassificationData",
    "RetrievalData",
    "StsData",
    "detect_kind",
    "load_classification",
    "load_retrieval",
    "load_sts",
]


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


@dataclass
class ClassificationData:
    """Labelled texts: a training split (to fit a classifier on) and a test split."""

    train_texts: list[str]
    train_labels: list[str]
    test_texts: list[str]
    test_labels: list[str]


#: Accepted names of the label column of a classification CSV (Banking77's own files say "category").
LABEL_COLUMNS = ("label", "category")


def detect_kind(folder: Path) -> str:
    """``"retrieval"`` (BEIR folder), ``"sts"`` (STS Benchmark) or ``"classification"`` (train/test CSVs).

    Raises:
        FileNotFoundError: The folder is neither; the message lists what was looked for.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder {str(folder)!r} does not exist")
    if (folder / "corpus.jsonl").exists() or (folder / "corpus.jsonl.gz").exists():
        return "retrieval"
    if (folder / "sts-test.csv").exists():
        return "sts"
    if (folder / "train.csv").exists() and (folder / "test.csv").exists():
        return "classification"
    raise FileNotFoundError(
        f"{str(folder)!r} is neither a BEIR folder (corpus.jsonl[.gz], queries.jsonl, qrels/test.tsv), an "
        "STS Benchmark folder (sts-test.csv) nor a classification folder (train.csv and test.csv)"
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


def _labelled_csv(path: Path) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:  # -sig: spreadsheet exports start with a BOM
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        label = next((name for name in LABEL_COLUMNS if name in columns), None)
        if "text" not in columns or label is None:
            raise ValueError(
                f"{path}: needs a header with a 'text' column and a 'label' or 'category' column, got {columns}"
            )
        texts: list[str] = []
        labels: list[str] = []
        for number, row in enumerate(reader, 2):
            if not row.get("text") or not row.get(label):
                raise ValueError(f"{path}:{number}: empty text or {label}")
            texts.append(row["text"])
            labels.append(row[label])
    if not texts:
        raise ValueError(f"{path}: no rows")
    return texts, labels


def load_classification(folder: Path) -> ClassificationData:
    """Load ``train.csv`` and ``test.csv`` (a header naming ``text`` and ``label`` or ``category``).

    Banking77's own files (PolyAI) have this layout. Labels are read as strings.
    """
    for name in ("train.csv", "test.csv"):
        if not (folder / name).exists():
            raise FileNotFoundError(f"classification file {str(folder / name)!r} is missing")
    train_texts, train_labels = _labelled_csv(folder / "train.csv")
    test_texts, test_labels = _labelled_csv(folder / "test.csv")
    unseen = sorted(set(test_labels) - set(train_labels))
    if unseen:
        raise ValueError(f"{folder}: {len(unseen)} test labels never occur in train.csv, e.g. {unseen[0]!r}")
    return ClassificationData(train_texts, train_labels, test_texts, test_labels)
