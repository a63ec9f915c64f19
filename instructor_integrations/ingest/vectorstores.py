"""Vector-store helpers: Chroma clients, idempotent ingestion, LangChain and LlamaIndex stores.

Everything that writes to a store in this package (:func:`ingest_texts`, :func:`ingest_stream`, the CLI,
the examples, the Ray workers) goes through one batch writer, so batching, ids and idempotence are the
same everywhere:

* ids default to a hash of the content, so re-ingesting a corpus adds nothing;
* every input is validated before anything is written;
* each batch is one ``upsert`` (whole batches only), within the client's maximum batch size;
* one skip rule (``skip_existing=None``, the default of every writer): a row whose id is stored with
  the same text and metadata is skipped before embedding, so a re-run after a crash embeds only what
  is missing; a stored id whose text or metadata changed is embedded again and updated.
  ``skip_existing=True`` keeps whatever is stored under an id; ``False`` rewrites every row.

Requires the ``[chroma]`` extra (plus ``[langchain]`` / ``[llama-index]`` for those stores).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._ids import content_id
from .._optional import require
from .._validation import check_positive_int, check_texts, short

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "IngestResult",
    "add_texts",
    "chroma_client",
    "content_id",
    "delete_stale",
    "get_collection",
    "ingest_stream",
    "ingest_texts",
    "langchain_vectorstore",
    "llama_index_index",
    "llama_index_vector_store",
    "reembed_collection",
]

# The module's public name, which logging configurations name (the code moved into ingest/).
logger = logging.getLogger("instructor_integrations.vectorstores")

#: Rows per upsert when the client's limit is not known (below every Chroma build's limit).
DEFAULT_BATCH_SIZE = 1024
_COLLECTION_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")


def _collection_names(client: Any) -> list[str]:
    """The names of the collections in ``client``'s store (chromadb lists names or collection objects)."""
    return sorted(c if isinstance(c, str) else c.name for c in client.list_collections())


def chroma_client(path: str | Path | None = None, *, host: str | None = None, port: int | None = None) -> Any:
    """A Chroma client: embedded at ``path``, or a server's when ``host`` is given.

    An embedded ``PersistentClient`` at ``path`` (default ``./.chroma``), or an ``HttpClient`` to a
    Chroma server at ``host``/``port``. Telemetry is off.

    Examples:
        >>> import tempfile
        >>> client = chroma_client(tempfile.mkdtemp())
        >>> client.get_max_batch_size() > 0
        True
    """
    chromadb = require("chromadb", "chroma")
    settings = chromadb.config.Settings(anonymized_telemetry=False)
    if host is not None:
        if path is not None:
            raise ValueError("give either path (embedded Chroma) or host/port (a Chroma server), not both")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
            raise ValueError(f"port must be an int in 1..65535, got {short(port)}")
        return chromadb.HttpClient(host=host, port=port or 8000, settings=settings)
    if port is not None:
        raise ValueError("port was given without host; pass host= for a Chroma server")
    # Absolute, because Chroma caches clients by the path string: "./.chroma" from two working
    # directories would otherwise share one client.
    folder = (Path(path) if path is not None else Path(".chroma")).expanduser().resolve()
    return chromadb.PersistentClient(path=str(folder), settings=settings)


def _check_collection_name(name: Any) -> str:
    if not isinstance(name, str) or not _COLLECTION_NAME.match(name):
        raise ValueError(
            f"collection name must be 3-512 characters of [a-zA-Z0-9._-], starting and ending with a letter or "
            f"digit, got {short(name)}"
        )
    return name


def get_collection(client: Any, name: str, *, embedding: Any, hnsw: dict[str, Any] | None = None) -> Any:
    """Get or create collection ``name`` with ``embedding`` (cosine space for new collections).

    ``hnsw`` adds Chroma HNSW settings for a new collection (e.g. ``{"ef_search": 200}``).

    Examples:
        >>> import chromadb
        >>> from instructor_integrations.chroma import InstructorEmbeddingFunction
        >>> ef = InstructorEmbeddingFunction("tests/fixtures/tiny-instructor", device="cpu")
        >>> collection = get_collection(chromadb.EphemeralClient(), "doctest-get", embedding=ef)
        >>> collection.configuration["hnsw"]["space"]
        'cosine'
    """
    _check_collection_name(name)
    if embedding is None:
        raise TypeError("embedding must be an embedding function, e.g. InstructorEmbeddingFunction(...), got None")
    space = embedding.default_space() if hasattr(embedding, "default_space") else "cosine"
    return client.get_or_create_collection(
        name=name, embedding_function=embedding, configuration={"hnsw": {"space": space, **(hnsw or {})}}
    )


@dataclass
class IngestResult:
    """What an ingestion did.

    Attributes:
        ids: The id of every input row, in input order.
        written: Rows embedded and written in this call.
        skipped: Rows whose id was already in the collection (not embedded again).
        duplicates: Input rows that repeated an earlier row's id in the same call.
        seconds: Wall time.
    """

    ids: list[str] = field(default_factory=list)
    written: int = 0
    skipped: int = 0
    duplicates: int = 0
    seconds: float = 0.0


def _check_metadatas(metadatas: Any, n: int) -> list[dict[str, Any]] | None:
    if metadatas is None:
        return None
    if isinstance(metadatas, (str, bytes, dict)) or not isinstance(metadatas, Sequence):
        raise TypeError(f"metadatas must be a list of dicts (one per text), got {type(metadatas).__name__}")
    if len(metadatas) != n:
        raise ValueError(f"metadatas has {len(metadatas)} items but there are {n} texts")
    types = require("chromadb.api.types", "chroma")
    out: list[dict[str, Any]] = []
    for index, metadata in enumerate(metadatas):
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict):
            raise TypeError(f"metadatas[{index}] must be a dict, got {type(metadata).__name__}: {short(metadata)}")
        if metadata:
            try:
                types.validate_metadata(metadata)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"metadatas[{index}] is not valid Chroma metadata: {exc}") from None
        out.append(metadata)
    return out


def _check_ids(ids: Any, n: int) -> list[str] | None:
    if ids is None:
        return None
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise TypeError(f"ids must be a list of str (one per text), got {type(ids).__name__}: {short(ids)}")
    if len(ids) != n:
        raise ValueError(f"ids has {len(ids)} items but there are {n} texts")
    seen: dict[str, int] = {}
    for index, value in enumerate(ids):
        if not isinstance(value, str) or not value:
            raise TypeError(f"ids[{index}] must be a non-empty str, got {short(value)}")
        if value in seen:
            raise ValueError(f"ids[{index}] repeats ids[{seen[value]}]: {value!r}; ids must be unique")
        seen[value] = index
    return list(ids)


def _max_batch(client: Any | None, batch_size: int | None) -> int:
    size = check_positive_int(batch_size, "batch_size", allow_none=True) or DEFAULT_BATCH_SIZE
    if client is not None:
        size = min(size, int(client.get_max_batch_size()))
    return size


def _stored(collection: Any, rows: list[tuple[str, str, dict[str, Any] | None]], skip: bool | None) -> set[str]:
    """The ids of ``rows`` to skip: those stored (``skip=True``), or stored unchanged (``None``)."""
    ids = [rid for rid, _, _ in rows]
    if skip:
        return set(collection.get(ids=ids, include=[])["ids"])
    found = collection.get(ids=ids, include=["documents", "metadatas"])
    stored = {
        rid: (text, meta or None)
        for rid, text, meta in zip(found["ids"], found["documents"], found["metadatas"], strict=True)
    }
    return {rid for rid, text, meta in rows if stored.get(rid) == (text, meta or None)}


def ingest_texts(
    collection: Any,
    texts: Sequence[str],
    *,
    metadatas: Sequence[dict[str, Any] | None] | None = None,
    ids: Sequence[str] | None = None,
    batch_size: int | None = None,
    client: Any | None = None,
    skip_existing: bool | None = None,
    progress: bool | None = None,
) -> IngestResult:
    """Add ``texts`` to a Chroma ``collection`` idempotently, in whole batches. See the module doc.

    Args:
        collection: A Chroma collection with an embedding function (see :func:`get_collection`).
        texts: The documents.
        metadatas: Optional metadata dict per text.
        ids: Optional unique id per text; default: :func:`content_id` of text and metadata.
        batch_size: Rows per upsert (capped by ``client.get_max_batch_size()`` when ``client`` is given).
        client: The collection's client, to respect its maximum batch size.
        skip_existing: ``None`` (the default): skip rows stored with the same text and metadata, without
            embedding them, and update a stored id whose content changed; ``True``: keep whatever is
            stored under an id; ``False``: rewrite every row.
        progress: Show a progress bar (``None``: on a terminal only). While it is shown and no
            ``batch_size`` is given, rows are written 256 at a time, so that it moves as they are embedded.

    Returns:
        An :class:`IngestResult`.

    Raises:
        TypeError, ValueError: Bad texts, ids or metadata; raised before anything is written.
    """
    started = time.perf_counter()
    items = check_texts(texts)
    metas = _check_metadatas(metadatas, len(items))
    given = _check_ids(ids, len(items))
    row_ids = given or [content_id(text, metas[i] if metas else None) for i, text in enumerate(items)]
    # A content-hash id names its content: stored means stored unchanged, and the cheaper check says so.
    skip = True if skip_existing is None and given is None else skip_existing
    size = _max_batch(client, batch_size)
    if batch_size is None and _shown(progress):
        size = min(size, PROGRESS_BATCH_SIZE)
    rows = [(row_ids[i], items[i], metas[i] if metas else None) for i in range(len(items))]
    result = IngestResult(ids=row_ids)
    with _bar(progress, len(rows)) as bar:
        _write_rows(collection, (rows[i : i + size] for i in range(0, len(rows), size)), skip, result, bar)
    return _finish(collection, result, started)


def ingest_stream(
    collection: Any,
    records: Iterable[Any],
    *,
    batch_size: int | None = None,
    client: Any | None = None,
    skip_existing: bool | None = None,
    progress: bool | Any | None = None,
    embed: Callable[[list[str]], Any] | None = None,
) -> IngestResult:
    """Add records from an iterable without holding them all in memory.

    Each record is a ``str`` (id from its content), an ``(id, text, metadata)`` tuple, or an object
    with ``id``, ``text`` and ``metadata`` attributes (:class:`~instructor_integrations.sources.Record`).
    Each batch is validated before it is written; batches already written stay when a later one
    fails (a re-run skips them). The result holds counts, not ids. ``skip_existing`` is the rule of
    :func:`ingest_texts`: by default a record stored with the same text and metadata is skipped without
    being embedded, and a stored id whose content changed is embedded again and updated.

    ``embed``, when given, embeds each batch's texts here (one call per batch, after the stored ids are
    skipped) and the vectors are written with them: for a collection opened without its embedding
    function, as the Ray workers do with an encoder of their own. Everything else (the record and
    metadata checks, the id and skip rules, the batch splitting) is the same write path.

    ``progress`` is :func:`ingest_texts`' rule, or a tqdm bar of the caller's, which is advanced by the
    rows written (the CLI's, whose total grows as files are read).

    Examples:
        >>> import chromadb
        >>> from instructor_integrations.chroma import InstructorEmbeddingFunction
        >>> ef = InstructorEmbeddingFunction("tests/fixtures/tiny-instructor", device="cpu")
        >>> collection = get_collection(chromadb.EphemeralClient(), "doctest-stream", embedding=ef)
        >>> result = ingest_stream(collection, (f"text {i}" for i in range(10)), batch_size=4, progress=False)
        >>> result.written, collection.count()
        (10, 10)
    """
    started = time.perf_counter()
    size = _max_batch(client, batch_size)
    if batch_size is None and _shown(progress):
        size = min(size, PROGRESS_BATCH_SIZE)
    result = IngestResult()

    def batches() -> Iterator[list[tuple[str, str, dict[str, Any] | None]]]:
        chunk: list[Any] = []
        for record in records:
            chunk.append(record)
            if len(chunk) == size:
                yield _check_records(chunk)
                chunk = []
        if chunk:
            yield _check_records(chunk)

    with _bar(progress, None) as bar:
        _write_rows(collection, batches(), skip_existing, result, bar, embed)
    return _finish(collection, result, started)


def _check_records(chunk: list[Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    rows: list[tuple[str, str, dict[str, Any] | None]] = []
    for record in chunk:
        if isinstance(record, str):
            rows.append((content_id(record), record, None))
            continue
        if isinstance(record, tuple) and len(record) == 3:
            rid, text, metadata = record
        elif all(hasattr(record, name) for name in ("id", "text", "metadata")):
            rid, text, metadata = record.id, record.text, record.metadata
        else:
            raise TypeError(
                "records must be str, (id, text, metadata) tuples or objects with id/text/metadata, "
                f"got {short(record)}"
            )
        rows.append((rid, text, metadata or None))
    texts = check_texts([text for _, text, _ in rows], "records[].text")
    ids = _check_ids([rid for rid, _, _ in rows], len(rows)) or []
    metas = _check_metadatas([meta for _, _, meta in rows], len(rows)) or []
    return [(ids[i], texts[i], metas[i] or None) for i in range(len(rows))]


#: Rows per write while a progress bar is shown, so that it moves as the embedding goes on.
PROGRESS_BATCH_SIZE = 256


def _bar(progress: bool | Any | None, total: int | None) -> Any:
    """A tqdm bar counting rows: ``progress`` itself when it is a bar, else one shown by the rule."""
    if progress is not None and not isinstance(progress, bool):
        return contextlib.nullcontext(progress)  # the caller's bar (the CLI's, which also counts files)
    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    return tqdm(total=total, disable=not show, desc="Ingesting", unit="row")


def _shown(progress: bool | Any | None) -> bool:
    if progress is None:
        return sys.stderr.isatty()
    return bool(progress) if isinstance(progress, bool) else not getattr(progress, "disable", False)


def _write_rows(
    collection: Any,
    batches: Iterable[list[tuple[str, str, dict[str, Any] | None]]],
    skip: bool | None,
    result: IngestResult,
    bar: Any,
    embed: Callable[[list[str]], Any] | None = None,
) -> None:
    """Upsert each batch (one call each); rows with an id seen earlier in this call are one record.

    The one writer of this package: :func:`ingest_texts`, :func:`ingest_stream` (the CLI) and the Ray
    workers all write through it.
    """
    seen: set[str] = set()
    for batch in batches:
        rows = []
        for row in batch:
            if row[0] in seen:
                result.duplicates += 1
                continue
            seen.add(row[0])
            rows.append(row)
        if skip is not False and rows:
            present = _stored(collection, rows, skip)
            if present:
                result.skipped += len(present)
                rows = [row for row in rows if row[0] not in present]
        if rows:
            metadatas = [meta for _, _, meta in rows]
            documents = [text for _, text, _ in rows]
            vectors = {} if embed is None else {"embeddings": embed(documents)}
            collection.upsert(
                ids=[rid for rid, _, _ in rows],
                documents=documents,
                metadatas=metadatas if any(metadatas) else None,
                **vectors,
            )
            result.written += len(rows)
        bar.update(len(batch))


def _finish(collection: Any, result: IngestResult, started: float) -> IngestResult:
    result.seconds = time.perf_counter() - started
    logger.info(
        "Ingested into %s: %d written, %d already present, %d duplicate rows, %.1fs",
        getattr(collection, "name", "?"),
        result.written,
        result.skipped,
        result.duplicates,
        result.seconds,
    )
    return result


def delete_stale(collection: Any, source: str, keep: Sequence[str], *, batch_size: int = 1000) -> int:
    """Delete the records of ``source`` (their ``source`` metadata) whose id is not in ``keep``.

    Run after a file's current chunks are written: the chunks of its earlier versions go, so the
    collection holds exactly the file's current chunks. Returns how many were deleted.

    Examples:
        >>> import chromadb
        >>> collection = chromadb.EphemeralClient().get_or_create_collection("doctest-stale")
        >>> collection.add(ids=["a", "b"], documents=["x", "y"], embeddings=[[0.0, 1.0], [1.0, 0.0]],
        ...                metadatas=[{"source": "f.md"}, {"source": "f.md"}])
        >>> delete_stale(collection, "f.md", ["a"]), collection.get()["ids"]
        (1, ['a'])
    """
    stored = collection.get(where={"source": source}, include=[])["ids"]
    keep_set = set(keep)
    stale = [rid for rid in stored if rid not in keep_set]
    for start in range(0, len(stale), batch_size):
        collection.delete(ids=stale[start : start + batch_size])
    if stale:
        logger.info("Deleted %d stale chunk(s) of %s", len(stale), source)
    return len(stale)


def reembed_collection(
    source: Any,
    target: Any,
    *,
    batch_size: int | None = None,
    client: Any | None = None,
    progress: bool | None = None,
) -> IngestResult:
    """Embed every row of ``source`` again into ``target`` with ``target``'s embedding function.

    The way to move a collection made by another embedding function (the old ``InstructorEmbedding``
    wrappers, another model, other instructions) onto this package's: each row keeps its id, text and
    metadata, so references to the ids stay valid. It is the one store writer
    (:func:`ingest_stream`): idempotent, so an interrupted run, run again, embeds only what is missing.
    ``source`` is read a page at a time and is not changed.

    Args:
        source: The Chroma collection to read (opened with any embedding function, or none).
        target: The Chroma collection to write, with its embedding function (see :func:`get_collection`).
        batch_size: Rows per read and per upsert (capped by ``client.get_max_batch_size()`` when given).
        client: The collections' client, to respect its maximum batch size.
        progress: Show a progress bar over the rows (``None``: on a terminal only).

    Returns:
        An :class:`IngestResult` (counts; ``ids`` is left empty).

    Raises:
        ValueError: ``source`` and ``target`` are one collection, or a row of ``source`` holds no text
            (only vectors); raised before anything is written.

    Examples:
        >>> import chromadb
        >>> from instructor_integrations.chroma import InstructorEmbeddingFunction
        >>> client = chromadb.EphemeralClient()
        >>> old = client.get_or_create_collection("doctest-old", embedding_function=None)
        >>> old.upsert(ids=["a"], documents=["Tides follow the moon."], embeddings=[[0.0, 1.0]])
        >>> ef = InstructorEmbeddingFunction("tests/fixtures/tiny-instructor", device="cpu")
        >>> new = get_collection(client, "doctest-new", embedding=ef)
        >>> reembed_collection(old, new, progress=False).written, new.get(ids=["a"])["documents"]
        (1, ['Tides follow the moon.'])
    """
    if source.id == target.id:
        raise ValueError(f"source and target are the same collection {source.name!r}: re-embed into a new one")
    size = _max_batch(client, batch_size)
    total = source.count()
    missing = [rid for page in _pages(source, size, total, ["documents"]) for rid, text, _ in page if text is None]
    if missing:
        raise ValueError(
            f"collection {source.name!r} holds {len(missing)} row(s) without text (e.g. id {missing[0]!r}): only "
            "rows stored with their documents can be embedded again"
        )
    rows = (row for page in _pages(source, size, total, ["documents", "metadatas"]) for row in page)
    with _bar(progress, total) as bar:
        return ingest_stream(target, rows, batch_size=size, client=client, progress=bar)


def _pages(collection: Any, size: int, total: int, include: list[str]) -> Iterator[list[tuple[str, Any, Any]]]:
    """The rows of ``collection`` as ``(id, document, metadata)``, ``size`` at a time."""
    for offset in range(0, total, size):
        found = collection.get(limit=size, offset=offset, include=include)
        metadatas = found.get("metadatas") or [None] * len(found["ids"])
        yield list(zip(found["ids"], found["documents"], metadatas, strict=True))


def add_texts(
    collection: Any,
    texts: Sequence[str],
    *,
    metadatas: Sequence[dict[str, Any] | None] | None = None,
    ids: Sequence[str] | None = None,
    batch_size: int | None = None,
    client: Any | None = None,
    progress: bool | None = None,
) -> list[str]:
    """Add ``texts`` idempotently (see :func:`ingest_texts`) and return their ids, in input order.

    Examples:
        >>> import chromadb
        >>> from instructor_integrations.chroma import InstructorEmbeddingFunction
        >>> ef = InstructorEmbeddingFunction("tests/fixtures/tiny-instructor", device="cpu")
        >>> collection = get_collection(chromadb.EphemeralClient(), "doctest-add", embedding=ef)
        >>> ids = add_texts(collection, ["one", "two"], progress=False)
        >>> ids == add_texts(collection, ["one", "two"], progress=False), collection.count()
        (True, 2)
    """
    return ingest_texts(
        collection, texts, metadatas=metadatas, ids=ids, batch_size=batch_size, client=client, progress=progress
    ).ids


def _embedder(embedding: Any | None, old_name: str, old_value: Any | None) -> Any | None:
    """``embedding=``, the one name of the embedder in every helper; ``old_name=`` still works, with a warning."""
    if old_value is None:
        return embedding
    warnings.warn(
        f"{old_name}= is deprecated; pass the same object as embedding= (the name every store helper uses)",
        DeprecationWarning,
        stacklevel=3,
    )
    if embedding is not None:
        raise TypeError(f"pass either embedding= or {old_name}= (its old name), not both")
    return old_value


def langchain_vectorstore(
    collection_name: str,
    *,
    embedding: Any | None = None,
    embeddings: Any | None = None,
    client: Any | None = None,
    path: str | Path | None = None,
    host: str | None = None,
    port: int | None = None,
    hnsw: dict[str, Any] | None = None,
    **embedding_kwargs: Any,
) -> Any:
    """A ``langchain_chroma.Chroma`` store using INSTRUCTOR embeddings (cosine space).

    Args:
        collection_name: The Chroma collection.
        embedding: LangChain embeddings; default ``InstructorEmbeddings(**embedding_kwargs)``.
        embeddings: The old name of ``embedding`` (deprecated).
        client: An existing Chroma client; else one from ``path`` / ``host`` / ``port``.
        path: Folder of an embedded Chroma.
        host: Host of a Chroma server.
        port: Port of a Chroma server.
        hnsw: Extra Chroma HNSW settings for a new collection.
        **embedding_kwargs: Passed to :class:`~instructor_integrations.langchain.InstructorEmbeddings`.

    Examples:
        >>> import chromadb
        >>> store = langchain_vectorstore(
        ...     "doctest-lc", client=chromadb.EphemeralClient(),
        ...     model_name="tests/fixtures/tiny-instructor", device="cpu",
        ... )
        >>> ids = store.add_texts(["INSTRUCTOR embeds text with instructions."])
        >>> store.similarity_search("What does INSTRUCTOR do?", k=1)[0].page_content
        'INSTRUCTOR embeds text with instructions.'
    """
    langchain_chroma = require("langchain_chroma", "langchain")
    _check_collection_name(collection_name)
    embedding = _embedder(embedding, "embeddings", embeddings)
    if embedding is None:
        from ..langchain import InstructorEmbeddings

        embedding = InstructorEmbeddings(**embedding_kwargs)
    elif embedding_kwargs:
        raise TypeError(f"pass either embedding= or embedding settings, not both: {sorted(embedding_kwargs)}")
    if client is None:
        client = chroma_client(path, host=host, port=port)
    return langchain_chroma.Chroma(
        collection_name=collection_name,
        embedding_function=embedding,
        client=client,
        collection_configuration={"hnsw": {"space": "cosine", **(hnsw or {})}},
    )


def llama_index_vector_store(collection: Any) -> Any:
    """A LlamaIndex ``ChromaVectorStore`` over a Chroma collection."""
    chroma_store = require("llama_index.vector_stores.chroma", "llama-index")
    return chroma_store.ChromaVectorStore(chroma_collection=collection)


def llama_index_index(
    collection: Any,
    *,
    embedding: Any | None = None,
    embed_model: Any | None = None,
    documents: Sequence[Any] | None = None,
    nodes: Sequence[Any] | None = None,
    client: Any | None = None,
    show_progress: bool = False,
    **embedding_kwargs: Any,
) -> Any:
    """A LlamaIndex ``VectorStoreIndex`` stored in a Chroma collection, with INSTRUCTOR embeddings.

    With ``documents`` (split into nodes that fit the model: ``InstructorEmbedding.node_parser()``) or
    ``nodes`` (inserted as they are), the inserts go in batches within the client's maximum batch size
    (LlamaIndex's ``ChromaVectorStore`` alone would send up to 41,665 rows at once).

    Insertion is idempotent, like :func:`ingest_texts`: a document's nodes get ids from their content
    (:func:`content_id` of the node's text, with the document's content and the node's place in it), and
    nodes whose id is stored already are neither embedded nor written again. So running the same code
    twice stores each document once. Given ``nodes`` keep their own ids, under the same rule.

    Args:
        collection: The Chroma collection.
        embedding: A LlamaIndex embed model; default ``InstructorEmbedding(**embedding_kwargs)``.
        embed_model: The old name of ``embedding`` (deprecated).
        documents: Optional LlamaIndex documents to insert.
        nodes: Optional LlamaIndex nodes to insert as they are.
        client: The collection's client, to respect its maximum batch size.
        show_progress: Show LlamaIndex's progress bars.
        **embedding_kwargs: Passed to :class:`~instructor_integrations.llama_index.InstructorEmbedding`.

    Examples:
        >>> import chromadb
        >>> from llama_index.core import Document
        >>> from instructor_integrations.chroma import InstructorEmbeddingFunction
        >>> ef = InstructorEmbeddingFunction("tests/fixtures/tiny-instructor", device="cpu")
        >>> collection = get_collection(chromadb.EphemeralClient(), "doctest-li", embedding=ef)
        >>> index = llama_index_index(
        ...     collection, documents=[Document(text="INSTRUCTOR embeds text.")],
        ...     model_name="tests/fixtures/tiny-instructor", device="cpu",
        ... )
        >>> index.as_retriever(similarity_top_k=1).retrieve("What is INSTRUCTOR?")[0].text
        'INSTRUCTOR embeds text.'
        >>> again = llama_index_index(
        ...     collection, documents=[Document(text="INSTRUCTOR embeds text.")],
        ...     model_name="tests/fixtures/tiny-instructor", device="cpu",
        ... )
        >>> collection.count()  # the same document, stored once
        1
    """
    core = require("llama_index.core", "llama-index")
    embed_model = _embedder(embedding, "embed_model", embed_model)
    if embed_model is None:
        from ..llama_index import InstructorEmbedding

        embed_model = InstructorEmbedding(**embedding_kwargs)
    elif embedding_kwargs:
        raise TypeError(f"pass either embedding= or embedding settings, not both: {sorted(embedding_kwargs)}")
    store = llama_index_vector_store(collection)
    if documents is not None and nodes is not None:
        raise TypeError("pass either documents= or nodes=, not both")
    if documents is None and nodes is None:
        return core.VectorStoreIndex.from_vector_store(store, embed_model=embed_model)
    given = list(nodes) if nodes is not None else _document_nodes(core, embed_model, documents or [], show_progress)
    rows = list({node.node_id: node for node in reversed(given)}.values())[::-1]  # an id repeated: its first node
    stored = _stored_ids(collection, [node.node_id for node in rows], _max_batch(client, None))
    if stored:
        logger.info("%d of %d nodes are stored already: not embedded again", len(stored), len(rows))
    return core.VectorStoreIndex(
        [node for node in rows if node.node_id not in stored],
        storage_context=core.StorageContext.from_defaults(vector_store=store),
        embed_model=embed_model,
        insert_batch_size=_max_batch(client, None),
        show_progress=show_progress,
    )


def _document_nodes(core: Any, embed_model: Any, documents: Sequence[Any], show_progress: bool) -> list[Any]:
    """LlamaIndex documents as nodes whose ids come from content: the document's, and the node's place in it."""

    def node_id(place: int, document: Any) -> str:
        text = document.get_content(metadata_mode=core.schema.MetadataMode.NONE)
        return content_id(text, {"document_metadata": repr(sorted(document.metadata.items())), "node": place})

    # Documents are cut by the model's tokens (nothing truncated) when the embed model can say how.
    parser = None
    node_parser = getattr(embed_model, "node_parser", None)
    if callable(node_parser):
        try:
            parser = node_parser()
        except TypeError as exc:  # no tokenizer here (a RemoteEncoder): LlamaIndex's own splitter
            logger.info("Documents split by LlamaIndex's default splitter: %s", exc)
    if parser is None:
        parser = core.node_parser.SentenceSplitter()
    parser.id_func = node_id  # prev/next relationships are built with these ids
    nodes: list[Any] = parser.get_nodes_from_documents(list(documents), show_progress=show_progress)
    return nodes


def _stored_ids(collection: Any, ids: list[str], size: int) -> set[str]:
    """Which of ``ids`` the collection holds (asked in batches within the client's limit)."""
    found: set[str] = set()
    for start in range(0, len(ids), size):
        found.update(collection.get(ids=ids[start : start + size], include=[])["ids"])
    return found
