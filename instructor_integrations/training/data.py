"""Training rows from the formats users have, grouped so that every batch holds one task.

One row is a query, a positive document and optional hard negatives, each side with its instruction
(:class:`TrainingExample`). :func:`load_examples` reads:

* a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``): one row per judged pair
  with a score above 0;
* JSONL rows ``{"query", "positive", "negatives"?, "query_instruction"?, "document_instruction"?, "task"?}``;
* the authors' MEDI rows (``{"query": [instruction, text], "pos": [...], "neg": [...], "task_id"}``),
  in a JSON list or JSONL;
* LlamaIndex's ``EmbeddingQAFinetuneDataset`` JSON (``queries``, ``corpus``, ``relevant_docs``), so
  its synthetic-question generators feed this;
* a ``datasets.Dataset`` or a list of dicts with the JSONL fields.

A row's own instructions win; then those given to :func:`load_examples`; then the task preset
(``task=``, the authors' instructions for that dataset). A malformed row raises
:class:`~instructor_integrations.sources.SourceError` naming its file and line, before any training.

Examples:
    >>> rows = load_examples([{"query": "what do tides follow?", "positive": "Tides follow the moon."}],
    ...                      query_instruction="Represent the question: ", document_instruction="Represent the fact: ")
    >>> rows[0].query_instruction, rows[0].task
    ('Represent the question: ', 'default')
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._validation import short
from ..evaluation.datasets import load_retrieval
from ..ingest.sources import SourceError
from ..instructions import resolve_task

__all__ = ["TrainingExample", "group_by_task", "load_examples", "read_relevance"]

#: The task of rows that name none.
DEFAULT_TASK = "default"


@dataclass(frozen=True)
class TrainingExample:
    """One training row: a query, its positive document, hard negatives, and each side's instruction.

    Attributes:
        query: The query text.
        positive: A document relevant to the query.
        negatives: Documents that are not (hard negatives), possibly none.
        query_instruction: The instruction of the query (``None``: plain mean pooling).
        document_instruction: The instruction of the positive and the negatives.
        task: The task the row belongs to; every batch holds rows of one task.
        where: The row's place in its source (``file:line``), for messages.

    Examples:
        >>> TrainingExample("q", "p", ("n",), "Represent the query: ", "Represent the doc: ").negatives
        ('n',)
    """

    query: str
    positive: str
    negatives: tuple[str, ...] = ()
    query_instruction: str | None = None
    document_instruction: str | None = None
    task: str = DEFAULT_TASK
    where: str = field(default="", compare=False)


@dataclass(frozen=True)
class _Defaults:
    task: str | None
    query_instruction: str | None
    document_instruction: str | None
    model: str | None

    def instructions(self) -> tuple[str | None, str | None]:
        """The instructions given, else the task preset's (generic retrieval without a task)."""
        if self.query_instruction is not None and self.document_instruction is not None:
            return self.query_instruction, self.document_instruction
        pair = resolve_task(self.task, self.model)
        return (
            pair.query if self.query_instruction is None else self.query_instruction,
            pair.document if self.document_instruction is None else self.document_instruction,
        )


def load_examples(
    source: str | Path | Any,
    *,
    split: str = "train",
    task: str | None = None,
    query_instruction: str | None = None,
    document_instruction: str | None = None,
    model: str | None = None,
) -> list[TrainingExample]:
    """Read training rows from a BEIR folder, a JSONL / JSON file, a ``datasets.Dataset`` or a list of dicts.

    Args:
        source: The data (see the module doc for the formats).
        split: The qrels split of a BEIR folder.
        task: The task preset whose instructions rows without their own get (e.g. ``"SciFact"``), and
            the task of rows that name none.
        query_instruction: The query instruction of rows without one (wins over the preset's).
        document_instruction: The document instruction of rows without one (wins over the preset's).
        model: The model being trained, whose instruction set the preset is taken from.

    Returns:
        The rows, in the source's order.

    Raises:
        SourceError: A missing file or a malformed row (the message names the file and line).
        ValueError: An unknown ``task``; no rows at all.
    """
    defaults = _Defaults(task, query_instruction, document_instruction, model)
    defaults.instructions()  # an unknown task fails here, before any file is read
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.exists():
            raise SourceError(f"training data {str(source)!r} does not exist")
        if path.is_dir():
            rows = list(_beir(path, split, defaults))
        elif path.suffix.lower() in (".jsonl", ".ndjson"):
            rows = [_row(obj, where, defaults) for obj, where in _jsonl_objects(path)]
        else:
            rows = list(_json_file(path, defaults))
    else:
        rows = [_row(obj, f"row {index}", defaults) for index, obj in enumerate(_mappings(source))]
    if not rows:
        raise ValueError(f"no training rows in {short(source)}")
    return rows


def group_by_task(examples: Sequence[TrainingExample]) -> dict[str, list[TrainingExample]]:
    """Rows grouped so that each group shares its task, both instructions and its number of negatives.

    The trainer draws every batch from one group: the instructions of a column are then one prompt per
    batch (as sentence-transformers' pooling needs) and the paper's "one task per batch" holds. A task
    that mixes instructions or negative counts is split into groups ``task``, ``task#2``...

    Examples:
        >>> rows = [TrainingExample("q", "p", task="a"), TrainingExample("q2", "p2", ("n",), task="a")]
        >>> {name: len(group) for name, group in group_by_task(rows).items()}
        {'a': 1, 'a#2': 1}
    """
    keyed: dict[tuple[str, str | None, str | None, int], list[TrainingExample]] = {}
    for example in examples:
        key = (example.task, example.query_instruction, example.document_instruction, len(example.negatives))
        keyed.setdefault(key, []).append(example)
    groups: dict[str, list[TrainingExample]] = {}
    seen: dict[str, int] = {}
    for (task, *_), members in keyed.items():
        seen[task] = seen.get(task, 0) + 1
        groups[task if seen[task] == 1 else f"{task}#{seen[task]}"] = members
    return groups


def read_relevance(folder: str | Path, split: str) -> dict[str, set[str]]:
    """Every document judged relevant (score above 0) to each query in a BEIR split: for mining."""
    data = load_retrieval(Path(folder), split=split)
    return {query: {doc for doc, score in docs.items() if score > 0} for query, docs in data.qrels.items()}


# ---------------------------------------------------------------------------------------------- formats
def _beir(folder: Path, split: str, defaults: _Defaults) -> Iterator[TrainingExample]:
    try:
        data = load_retrieval(folder, split=split)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise SourceError(f"{folder}: not a BEIR folder with a {split!r} split ({exc})") from None
    qi, di = defaults.instructions()
    name = defaults.task or folder.name
    for query_id, docs in data.qrels.items():
        for doc_id, score in docs.items():
            if score <= 0:
                continue
            if doc_id not in data.corpus:
                raise SourceError(f"{folder}/qrels/{split}.tsv: document {doc_id!r} is not in the corpus")
            where = f"{folder}/qrels/{split}.tsv ({query_id}, {doc_id})"
            yield TrainingExample(data.queries[query_id], data.corpus[doc_id], (), qi, di, name, where)


def _jsonl_objects(path: Path) -> Iterator[tuple[Any, str]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                yield json.loads(line), where
            except json.JSONDecodeError as exc:
                raise SourceError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None


def _json_file(path: Path, defaults: _Defaults) -> Iterator[TrainingExample]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise SourceError(f"{path}: not UTF-8 text") from None
    if isinstance(data, dict) and {"queries", "corpus", "relevant_docs"} <= set(data):
        yield from _llama_index(path, data, defaults)
    elif isinstance(data, list):
        for index, obj in enumerate(data):
            yield _row(obj, f"{path}[{index}]", defaults)
    else:
        raise SourceError(
            f"{path}: expected a JSON list of rows or LlamaIndex's EmbeddingQAFinetuneDataset "
            f"(queries, corpus, relevant_docs), got {short(data)}"
        )


def _llama_index(path: Path, data: dict[str, Any], defaults: _Defaults) -> Iterator[TrainingExample]:
    queries, corpus, relevant = data["queries"], data["corpus"], data["relevant_docs"]
    for name, part in (("queries", queries), ("corpus", corpus), ("relevant_docs", relevant)):
        if not isinstance(part, dict):
            raise SourceError(f"{path}: {name!r} must be an object, got {short(part)}")
    qi, di = defaults.instructions()
    task = defaults.task or DEFAULT_TASK
    for query_id, docs in relevant.items():
        where = f"{path} (relevant_docs[{query_id!r}])"
        if query_id not in queries:
            raise SourceError(f"{where}: query {query_id!r} is not in 'queries'")
        if not isinstance(docs, list) or not docs:
            raise SourceError(f"{where}: expected a non-empty list of corpus ids, got {short(docs)}")
        for doc_id in docs:
            if doc_id not in corpus:
                raise SourceError(f"{where}: document {doc_id!r} is not in 'corpus'")
            yield TrainingExample(
                _text(queries[query_id], where, "query"),
                _text(corpus[doc_id], where, "corpus"),
                (),
                qi,
                di,
                task,
                where,
            )


def _mappings(source: Any) -> Iterable[Any]:
    if isinstance(source, Mapping):
        raise TypeError(f"training data must be rows, a file, a folder or a datasets.Dataset, got {short(source)}")
    if not isinstance(source, Iterable):
        raise TypeError(f"training data must be rows, a file, a folder or a datasets.Dataset, got {short(source)}")
    return source


# ---------------------------------------------------------------------------------------------- rows
def _text(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SourceError(f"{where}: {name!r} must be a non-empty string, got {short(value)}")
    return value


def _instruction(value: Any, where: str, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise SourceError(f"{where}: {name!r} must be a string or null, got {short(value)}")


def _row(obj: Any, where: str, defaults: _Defaults) -> TrainingExample:
    if not isinstance(obj, Mapping):
        raise SourceError(f"{where}: expected a JSON object, got {short(obj)}")
    if "pos" in obj or "task_id" in obj:
        return _medi_row(obj, where)
    unknown = sorted(set(obj) - {"query", "positive", "negatives", "query_instruction", "document_instruction", "task"})
    if unknown:
        raise SourceError(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; a row has query, positive, negatives, "
            "query_instruction, document_instruction, task (or MEDI's query, pos, neg, task_id)"
        )
    negatives = obj.get("negatives") or []
    if isinstance(negatives, str) or not isinstance(negatives, Sequence):
        raise SourceError(f"{where}: 'negatives' must be a list of strings, got {short(negatives)}")
    qi, di = defaults.instructions()
    task = obj.get("task", defaults.task or DEFAULT_TASK)
    if not isinstance(task, (str, int)):
        raise SourceError(f"{where}: 'task' must be a string, got {short(task)}")
    return TrainingExample(
        _text(obj.get("query"), where, "query"),
        _text(obj.get("positive"), where, "positive"),
        tuple(_text(item, where, "negatives[]") for item in negatives),
        _instruction(obj["query_instruction"], where, "query_instruction") if "query_instruction" in obj else qi,
        _instruction(obj["document_instruction"], where, "document_instruction")
        if "document_instruction" in obj
        else di,
        str(task),
        where,
    )


def _pair(value: Any, where: str, name: str) -> tuple[str, str]:
    if not (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2):
        raise SourceError(f"{where}: MEDI's {name!r} must be [instruction, text], got {short(value)}")
    instruction = value[0]
    if not isinstance(instruction, str):
        raise SourceError(f"{where}: MEDI's {name!r} instruction must be a string, got {short(instruction)}")
    return instruction, _text(value[1], where, f"{name}[1]")


def _medi_row(obj: Mapping[str, Any], where: str) -> TrainingExample:
    query_instruction, query = _pair(obj.get("query"), where, "query")
    document_instruction, positive = _pair(obj.get("pos"), where, "pos")
    negatives: tuple[str, ...] = ()
    if obj.get("neg") is not None:
        neg_instruction, negative = _pair(obj["neg"], where, "neg")
        if neg_instruction != document_instruction:
            raise SourceError(
                f"{where}: MEDI's 'neg' instruction {neg_instruction!r} differs from 'pos' {document_instruction!r} "
                "(a negative is embedded as a document of the same task)"
            )
        negatives = (negative,)
    task = obj.get("task_id", obj.get("task_name", DEFAULT_TASK))
    return TrainingExample(
        query, positive, negatives, query_instruction or None, document_instruction or None, str(task), where
    )
