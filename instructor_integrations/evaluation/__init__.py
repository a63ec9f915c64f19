"""Evaluation harness: reproduce published scores through the same code path an application uses.

* BEIR retrieval folders give nDCG@10, Recall@100 and MRR@10;
* the STS Benchmark gives the cosine Spearman;
* classification folders (``train.csv``, ``test.csv``; Banking77's layout) give the accuracy and macro
  F1 of MTEB's logistic-regression protocol (:mod:`.classification`).

Scores are on MTEB's x100 scale. Retrieval runs through one of four paths (``via``): the raw
encoder, a Chroma collection, a LangChain vector store, or a LlamaIndex index; the embeddings are
the same, so the scores should agree up to the stores' approximate search.

Examples:
    >>> from instructor_integrations.evaluation import evaluate
    >>> result = evaluate("tests/fixtures/mini-beir", model="tests/fixtures/tiny-instructor", device="cpu")
    >>> sorted(result.metrics)
    ['mrr@10', 'ndcg@10', 'recall@100']
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..encoder import InstructorEncoder, get_encoder
from ..instructions import get_preset
from ..settings import EncoderSettings
from .classification import EXPERIMENTS, logistic_regression_scores, undersample
from .datasets import RetrievalData, detect_kind, load_classification, load_retrieval, load_sts
from .metrics import mrr_at_k, ndcg_at_k, recall_at_k, spearman

__all__ = ["VIAS", "EvalResult", "evaluate", "resolve_eval_instructions", "retrieval_metrics"]

logger = logging.getLogger(__name__)

VIAS = ("raw", "chroma", "langchain", "llama-index")
_EVERY_TEXT = " (document_instruction, formerly doc_instruction, is the instruction of every text)"
TOP_K = 100
#: Exhaustive enough HNSW settings for evaluation (Chroma's defaults trade recall for speed).
EVAL_HNSW = {"space": "cosine", "ef_construction": 400, "ef_search": 400, "max_neighbors": 32}


@dataclass
class EvalResult:
    """One evaluation: metrics (x100), what was run, counts and timings."""

    dataset: str
    task: str
    model: str
    via: str
    precision: str
    instructions: dict[str, str | None]
    metrics: dict[str, float]
    counts: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with each metric also at the top level under its name."""
        data = asdict(self)
        data.update(self.metrics)
        data["scale"] = "x100"
        return data


def resolve_eval_instructions(
    *,
    model: str,
    preset: str | None,
    query_instruction: str | None,
    doc_instruction: str | None,
    no_instructions: bool,
) -> tuple[str | None, str | None]:
    """(query, document) instructions for an evaluation; ``None`` means no instruction."""
    if no_instructions:
        if preset or query_instruction or doc_instruction:
            raise ValueError("no_instructions cannot be combined with a task (preset) or explicit instructions")
        return None, None
    query, document = query_instruction, doc_instruction
    if preset is not None:
        found = get_preset(preset, model)
        query = found.query if query is None else query
        document = found.document if document is None else document
    return query, document


def _topk(scores: np.ndarray, ids: list[str], k: int) -> list[list[str]]:
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    out = []
    for row, candidates in enumerate(part):
        order = candidates[np.argsort(-scores[row, candidates], kind="stable")]
        out.append([ids[i] for i in order])
    return out


def _cosine_run(
    query_ids: list[str], queries: np.ndarray, doc_ids: list[str], docs: np.ndarray, k: int = TOP_K
) -> dict[str, list[str]]:
    """Exact cosine search: the ``k`` best document ids per query (normalises both arrays in place)."""
    docs /= np.linalg.norm(docs, axis=1, keepdims=True).clip(min=1e-12)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True).clip(min=1e-12)
    return dict(zip(query_ids, _topk(queries @ docs.T, doc_ids, k), strict=True))


def _search_raw(
    encoder: InstructorEncoder,
    data: RetrievalData,
    query: str | None,
    document: str | None,
    batch_size: int,
    known: Mapping[str, np.ndarray] | None = None,
) -> dict[str, list[str]]:
    doc_ids = list(data.corpus)
    texts = [data.corpus[d] for d in doc_ids]
    if known is None:
        docs = encoder.encode(texts, document, batch_size=batch_size)
    else:
        missing = list(dict.fromkeys(text for text in texts if text not in known))
        fresh: dict[str, np.ndarray] = {}
        if missing:
            fresh = dict(zip(missing, encoder.encode(missing, document, batch_size=batch_size), strict=True))
        docs = np.stack([fresh[text] if text in fresh else known[text] for text in texts])  # a copy of its own
    query_ids = list(data.queries)
    queries = encoder.encode([data.queries[q] for q in query_ids], query, batch_size=batch_size)
    return _cosine_run(query_ids, queries, doc_ids, docs)


def _search_chroma(
    encoder: InstructorEncoder,
    data: RetrievalData,
    query: str | None,
    document: str | None,
    batch_size: int,
    workdir: Path,
) -> dict[str, list[str]]:
    from ..chroma import InstructorEmbeddingFunction
    from ..ingest.vectorstores import chroma_client, get_collection, ingest_texts

    client = chroma_client(workdir / "chroma")
    ef = InstructorEmbeddingFunction(
        encoder.model_name,
        document_instruction=document or "",
        query_instruction=query or "",
        batch_size=batch_size,
        encoder=encoder,
    )
    collection = get_collection(client, "eval", embedding=ef, hnsw=EVAL_HNSW)
    ids = list(data.corpus)
    ingest_texts(collection, [data.corpus[d] for d in ids], ids=ids, client=client, progress=None)
    query_ids = list(data.queries)
    run: dict[str, list[str]] = {}
    step = 64
    for start in range(0, len(query_ids), step):
        chunk = query_ids[start : start + step]
        result = collection.query(
            query_texts=[data.queries[q] for q in chunk], n_results=min(TOP_K, len(ids)), include=[]
        )
        run.update(zip(chunk, result["ids"], strict=True))
    return run


def _search_langchain(
    encoder: InstructorEncoder,
    data: RetrievalData,
    query: str | None,
    document: str | None,
    batch_size: int,
    workdir: Path,
) -> dict[str, list[str]]:
    from ..ingest.vectorstores import chroma_client, langchain_vectorstore
    from ..langchain import InstructorEmbeddings

    embeddings = InstructorEmbeddings(
        model_name=encoder.model_name,
        document_instruction=document or "",
        query_instruction=query or "",
        batch_size=batch_size,
        encoder=encoder,
    )
    store = langchain_vectorstore(
        f"eval-{uuid.uuid4().hex[:8]}",
        embedding=embeddings,
        client=chroma_client(workdir / "langchain"),
        hnsw=EVAL_HNSW,
    )
    ids = list(data.corpus)
    store.add_texts([data.corpus[d] for d in ids], ids=ids)
    k = min(TOP_K, len(ids))
    return {q: [doc.id for doc in store.similarity_search(text, k=k)] for q, text in data.queries.items()}


def _search_llama_index(
    encoder: InstructorEncoder,
    data: RetrievalData,
    query: str | None,
    document: str | None,
    batch_size: int,
    workdir: Path,
) -> dict[str, list[str]]:
    from llama_index.core.schema import TextNode

    from ..ingest.vectorstores import chroma_client, llama_index_index
    from ..llama_index import InstructorEmbedding

    client = chroma_client(workdir / "llama-index")
    collection = client.create_collection("eval", configuration={"hnsw": EVAL_HNSW})
    embed_model = InstructorEmbedding(
        model_name=encoder.model_name,
        document_instruction=document or "",
        query_instruction=query or "",
        embed_batch_size=batch_size,
        encoder=encoder,
    )
    nodes = [TextNode(text=text, id_=doc_id) for doc_id, text in data.corpus.items()]
    index = llama_index_index(collection, embedding=embed_model, nodes=nodes, client=client)
    retriever = index.as_retriever(similarity_top_k=min(TOP_K, len(nodes)))
    return {q: [hit.node.node_id for hit in retriever.retrieve(text)] for q, text in data.queries.items()}


def _classify(
    encoder: InstructorEncoder, folder: Path, instruction: str | None, batch_size: int
) -> tuple[dict[str, float], dict[str, int]]:
    """MTEB's classification scores (x100: means over the experiments, and their spread) and counts.

    Each distinct text is embedded once.
    """
    data = load_classification(folder)
    picks = undersample(data.train_labels)
    rows = sorted({index for pick in picks for index in pick})
    vectors = encoder.encode([data.train_texts[i] for i in rows], instruction, batch_size=batch_size)
    position = {index: n for n, index in enumerate(rows)}
    test = encoder.encode(data.test_texts, instruction, batch_size=batch_size)
    runs = [
        logistic_regression_scores(
            vectors[[position[i] for i in pick]], [data.train_labels[i] for i in pick], test, data.test_labels
        )
        for pick in picks
    ]
    metrics: dict[str, float] = {}
    for name in ("accuracy", "f1"):
        values = [run[name] for run in runs]
        metrics[name] = round(100 * float(np.mean(values)), 4)
        # MTEB 1.x reports the spread of the experiments as "<metric>_stderr": their standard deviation.
        metrics[f"{name}_stderr"] = round(100 * float(np.std(values)), 4)
    counts = {
        "train_embedded": len(rows),
        "test": len(data.test_texts),
        "labels": len(set(data.train_labels)),
        "experiments": EXPERIMENTS,
    }
    return metrics, counts


def _check_not_retrieval(kind: str, via: str, retrieval_only: dict[str, Any]) -> None:
    """Refuse, naming it, each argument that only retrieval data takes."""
    if via != "raw":
        raise ValueError(f"via={via!r} applies to retrieval data; {kind} is evaluated with via='raw'")
    for name, value in retrieval_only.items():
        if value is not None:
            raise ValueError(
                f"{name}={value!r} applies to retrieval data; {kind} data has no queries"
                + (_EVERY_TEXT if name == "query_instruction" else "")
            )


def _sts(
    encoder: InstructorEncoder, folder: Path, instruction: str | None, batch_size: int
) -> tuple[dict[str, float], dict[str, int]]:
    """Spearman correlation of the pairs' cosine with the gold scores (x100)."""
    sts = load_sts(folder)
    a = encoder.encode(sts.first, instruction, batch_size=batch_size)
    b = encoder.encode(sts.second, instruction, batch_size=batch_size)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)).clip(min=1e-12)
    return {"cos_spearman": round(100 * spearman(cosine, sts.scores), 4)}, {"pairs": len(sts.scores)}


def _retrieve(
    encoder: InstructorEncoder,
    data: RetrievalData,
    query: str | None,
    document: str | None,
    batch_size: int,
    via: str,
    known: Mapping[str, np.ndarray] | None = None,
) -> tuple[dict[str, float], dict[str, int]]:
    """nDCG@10, recall@100 and MRR@10 (x100) of a search through ``via`` (``known``: raw search only)."""
    with tempfile.TemporaryDirectory(prefix="instructor-eval-") as tmp:
        if via == "raw":
            run = _search_raw(encoder, data, query, document, batch_size, known)
        else:
            search = {"chroma": _search_chroma, "langchain": _search_langchain, "llama-index": _search_llama_index}
            run = search[via](encoder, data, query, document, batch_size, Path(tmp))
    metrics = {
        "ndcg@10": round(100 * ndcg_at_k(data.qrels, run, 10), 4),
        "recall@100": round(100 * recall_at_k(data.qrels, run, 100), 4),
        "mrr@10": round(100 * mrr_at_k(data.qrels, run, 10), 4),
    }
    return metrics, {"queries": len(data.queries), "documents": len(data.corpus)}


def retrieval_metrics(
    encoder: InstructorEncoder,
    data: RetrievalData,
    query_instruction: str | None,
    document_instruction: str | None,
    *,
    batch_size: int = 32,
    document_vectors: Mapping[str, np.ndarray] | None = None,
) -> dict[str, float]:
    """nDCG@10, recall@100 and MRR@10 (x100) of ``encoder`` on an in-memory retrieval set, exact search.

    What :func:`evaluate` computes for a BEIR folder, for data that is already loaded (a held-out
    split of training rows, for example).

    Args:
        encoder: The encoder to score.
        data: Corpus, queries and judgements.
        query_instruction: The queries' instruction.
        document_instruction: The documents' instruction.
        batch_size: Rows per batch.
        document_vectors: Vectors of document texts this encoder has already embedded with
            ``document_instruction`` (several sets over one corpus embed it once); texts not in it are
            embedded here.

    Examples:
        >>> from instructor_integrations import InstructorEncoder
        >>> from instructor_integrations.evaluation.datasets import RetrievalData
        >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
        >>> data = RetrievalData({"d1": "The moon pulls the sea."}, {"q1": "tides"}, {"q1": {"d1": 1}})
        >>> retrieval_metrics(encoder, data, None, None)["ndcg@10"]
        100.0
    """
    return _retrieve(encoder, data, query_instruction, document_instruction, batch_size, "raw", document_vectors)[0]


def _renamed(old: str, old_value: Any, new: str, value: Any) -> Any:
    """The value of a renamed argument: the new name's, or the old one's with a ``DeprecationWarning``."""
    if old_value is None:
        return value
    if value is not None:
        raise ValueError(f"give {new}= or its deprecated name {old}=, not both")
    warnings.warn(f"{old}= is deprecated, use {new}=", DeprecationWarning, stacklevel=3)
    return old_value


def evaluate(
    data_dir: str | Path,
    *,
    model: str = "hkunlp/instructor-large",
    task: str | None = None,
    query_instruction: str | None = None,
    document_instruction: str | None = None,
    no_instructions: bool = False,
    via: str = "raw",
    limit_queries: int | None = None,
    max_corpus: int | None = None,
    device: str | None = None,
    precision: str | None = None,
    batch_size: int = 32,
    compile: bool = False,
    num_workers: int = 1,
    encoder: InstructorEncoder | None = None,
    settings: EncoderSettings | None = None,
    preset: str | None = None,
    doc_instruction: str | None = None,
) -> EvalResult:
    """Evaluate ``model`` on a BEIR folder (retrieval), an STS Benchmark folder or a classification folder.

    Args:
        data_dir: The data folder.
        model: Hub name or local folder.
        task: Dataset whose authors' instructions to use (e.g. ``"SciFact"``), as the adapters' ``task``.
        query_instruction: Explicit query instruction (wins over the task's; retrieval only).
        document_instruction: Explicit document instruction; for STS and classification, the instruction of
            every text.
        no_instructions: Embed plain texts.
        via: ``"raw"``, ``"chroma"``, ``"langchain"`` or ``"llama-index"`` (retrieval only).
        limit_queries: Keep only the first N judged queries (retrieval only).
        max_corpus: Keep the judged documents plus a fixed sample of others, this many in all (retrieval
            only).
        device: Device for the model.
        precision: ``"exact"``, ``"fast"``, ``"int8"`` or ``None``.
        batch_size: Rows per forward pass.
        compile: Compile the model's forward (about 30 s once; pays off on large corpora).
        num_workers: Worker processes (CPU or CUDA), each with its own copy of the model (1: none).
        encoder: An existing encoder to use instead of loading ``model``.
        settings: The encoder settings to load the model with (instead of ``model``, ``device``,
            ``precision``, ``batch_size``, ``compile`` and ``num_workers``).
        preset: Deprecated name of ``task``.
        doc_instruction: Deprecated name of ``document_instruction``.

    Returns:
        An :class:`EvalResult`.
    """
    task = _renamed("preset", preset, "task", task)
    document_instruction = _renamed("doc_instruction", doc_instruction, "document_instruction", document_instruction)
    if via not in VIAS:
        raise ValueError(f"via must be one of {', '.join(VIAS)}, got {via!r}")
    if settings is not None:
        model, batch_size = settings.model_name_or_path, settings.batch_size
    folder = Path(data_dir)
    kind = detect_kind(folder)
    if kind != "retrieval":
        _check_not_retrieval(
            kind,
            via,
            {"limit_queries": limit_queries, "max_corpus": max_corpus, "query_instruction": query_instruction},
        )
    query, document = resolve_eval_instructions(
        model=model,
        preset=task,
        query_instruction=query_instruction,
        doc_instruction=document_instruction,
        no_instructions=no_instructions,
    )
    started = time.perf_counter()
    if settings is None:
        settings = EncoderSettings(
            model, device=device, precision=precision, compile=compile, num_workers=num_workers, batch_size=batch_size
        )
    enc = encoder or get_encoder(settings)
    loaded = time.perf_counter()
    # STS and classification embed every text with the document instruction.
    instructions = {"query": query if kind == "retrieval" else document, "document": document}
    if kind == "classification":
        metrics, counts = _classify(enc, folder, document, batch_size)
    elif kind == "sts":
        metrics, counts = _sts(enc, folder, document, batch_size)
    else:
        data = load_retrieval(folder, limit_queries=limit_queries, max_corpus=max_corpus)
        metrics, counts = _retrieve(enc, data, query, document, batch_size, via)
    finished = time.perf_counter()
    return EvalResult(
        dataset=folder.name,
        task=kind,
        model=enc.model_name,
        via=via,
        precision=enc.precision,
        instructions=instructions,
        metrics=metrics,
        counts=counts,
        seconds={"load": round(loaded - started, 3), "evaluate": round(finished - loaded, 3)},
    )
