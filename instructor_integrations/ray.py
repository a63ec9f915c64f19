"""Scale out with Ray Data: embed datasets, ingest into a Chroma server, resumable and idempotent.

Requires the ``[ray]`` extra; ``ray`` is imported only in this module.

* :func:`embed_dataset` adds an ``embedding`` column with ``map_batches`` over a callable class, so
  each actor loads the model once (``num_gpus`` per actor for GPU clusters).
* :func:`ingest_to_chroma` writes a dataset into a Chroma server. Each actor, for each batch, asks
  the server which ids it already has, embeds only the rest, and upserts them in whole batches within
  the server's maximum batch size. Ids come from an id column or a content hash, so a re-run after a
  crash embeds and writes only what is missing, and never duplicates a record.

Examples:
    >>> import ray  # doctest: +SKIP
    >>> ds = ray.data.from_items([{"text": "hello"}, {"text": "world"}])  # doctest: +SKIP
    >>> embed_dataset(ds, model="hkunlp/instructor-large", instruction="Represent the word: ")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._adapter import MODEL_SETTINGS
from ._optional import require
from ._validation import check_positive_int, short
from .ingest.sources import FileIngestReport, Record
from .settings import EncoderSettings

__all__ = [
    "FileIngestReport",
    "IngestCounts",
    "actor_settings",
    "embed_dataset",
    "ingest_files_with_ray",
    "ingest_records_with_ray",
    "ingest_to_chroma",
    "serve_app",
    "serve_deployment",
]

logger = logging.getLogger(__name__)

_METADATA_COLUMN = "metadata_json"


@dataclass(frozen=True)
class IngestCounts:
    """What :func:`ingest_to_chroma` did.

    Attributes:
        embedded: Rows embedded in this run.
        skipped: Rows whose id was already stored (not embedded again).
        written: Rows written in this run.
    """

    embedded: int
    skipped: int
    written: int


def _actor_resources(num_gpus: float, num_cpus: float | None) -> dict[str, Any]:
    """Ray resources per actor: GPUs only when asked for; CPUs when given (fractions share CPUs)."""
    resources: dict[str, Any] = {"num_gpus": num_gpus} if num_gpus else {}
    if num_cpus is not None:
        resources["num_cpus"] = num_cpus
    return resources


def actor_settings(model: str, settings: EncoderSettings | None = None, **encoder_kwargs: Any) -> EncoderSettings:
    """The encoder settings every actor builds its encoder from.

    ``settings`` (or the defaults) for ``model``, with ``encoder_kwargs`` (any
    :class:`~instructor_integrations.settings.EncoderSettings` field) applied.

    Checked here, on the driver, before any actor starts; actors never show a progress bar.

    Raises:
        TypeError: An unknown setting name (the message lists the known ones) or a bad ``settings``.
        ValueError: A bad value (the message names the setting).

    Examples:
        >>> actor_settings("m", max_seq_length=128, precision="exact").max_seq_length
        128
    """
    if settings is not None and not isinstance(settings, EncoderSettings):
        raise TypeError(f"settings must be an EncoderSettings or None, got {type(settings).__name__}")
    base = (settings or EncoderSettings()).as_kwargs()
    return EncoderSettings.from_kwargs(**{**base, **encoder_kwargs, "model_name_or_path": model}).replace(
        show_progress_bar=False
    )


class _Embedder:
    """Ray actor: one encoder per actor, built from the driver's settings in the constructor."""

    def __init__(self, settings: EncoderSettings, instruction: str | None, text_column: str) -> None:
        from .encoder import get_encoder

        self.encoder = get_encoder(settings)
        self.instruction = instruction
        self.text_column = text_column

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(text) for text in batch[self.text_column]]
        batch["embedding"] = self.encoder.encode(texts, self.instruction, show_progress_bar=False)
        return batch


def embed_dataset(
    ds: Any,
    *,
    model: str,
    instruction: str | None = None,
    text_column: str = "text",
    batch_size: int = 64,
    concurrency: int = 1,
    num_gpus: float = 0,
    num_cpus: float | None = None,
    settings: EncoderSettings | None = None,
    **encoder_kwargs: Any,
) -> Any:
    """Add an ``embedding`` column (float32 vectors) to a Ray dataset.

    Args:
        ds: A ``ray.data.Dataset`` with a text column.
        model: Hub name or local folder (must be reachable from every worker).
        instruction: The instruction for every row (``None``: plain).
        text_column: Column holding the texts.
        batch_size: Rows per Ray batch (Ray's ``map_batches`` batch size; the rows per forward pass are the
            encoder's ``batch_size``, set through ``settings``).
        concurrency: Number of embedding actors.
        num_gpus: GPUs per actor (use 1 on a GPU cluster).
        num_cpus: CPUs per actor (fractional values let actors share CPUs).
        settings: The encoder settings of every actor (``model`` replaces its model name).
        **encoder_kwargs: Any other :class:`~instructor_integrations.settings.EncoderSettings` field, by name
            (``device``: ``None`` is cuda if the actor has one, else cpu; ``precision``, ``max_seq_length``,
            ``instructor_pooling``, ...): every actor gets each of them.

    Returns:
        A lazy ``ray.data.Dataset`` with an added ``embedding`` column.
    """
    check_positive_int(batch_size, "batch_size")
    check_positive_int(concurrency, "concurrency")
    return ds.map_batches(
        _Embedder,
        fn_constructor_kwargs={
            "settings": actor_settings(model, settings, **encoder_kwargs),
            "instruction": instruction,
            "text_column": text_column,
        },
        batch_size=batch_size,
        concurrency=concurrency,
        batch_format="numpy",
        **_actor_resources(num_gpus, num_cpus),
    )


class _ChromaWriter:
    """Ray actor: skip stored ids, embed the rest with one encoder per actor, upsert whole batches."""

    def __init__(
        self,
        settings: EncoderSettings,
        instruction: str | None,
        collection: str,
        host: str,
        port: int,
        text_column: str,
        id_column: str,
    ) -> None:
        from .encoder import get_encoder
        from .ingest.vectorstores import chroma_client

        self.encoder = get_encoder(settings)
        self.instruction = instruction
        client = chroma_client(host=host, port=port)
        self.max_batch = int(client.get_max_batch_size())
        self.collection = client.get_collection(collection, embedding_function=None)
        self.text_column = text_column
        self.id_column = id_column

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .ingest.vectorstores import ingest_stream

        ids = [str(value) for value in batch[self.id_column]]
        texts = [str(value) for value in batch[self.text_column]]
        metadatas: list[dict[str, Any] | None] = [None] * len(ids)
        if _METADATA_COLUMN in batch:
            metadatas = [json.loads(str(value)) or None for value in batch[_METADATA_COLUMN]]
        # The package's one store writer: the same record checks, id and skip rules and batch splitting as
        # ingest_texts and the CLI; the texts are embedded here, with this actor's encoder.
        result = ingest_stream(
            self.collection,
            zip(ids, texts, metadatas, strict=True),
            batch_size=self.max_batch,
            progress=False,
            embed=self._embed,
        )
        return {
            "embedded": np.array([result.written]),
            "skipped": np.array([result.skipped]),
            "written": np.array([result.written]),
        }

    def _embed(self, documents: list[str]) -> Any:
        return self.encoder.encode(documents, self.instruction, show_progress_bar=False)


class _FileIngester(_ChromaWriter):
    """Ray actor: read, chunk, embed and write whole files; its encoder's tokenizer measures the chunks.

    Each batch is a list of file paths; the driver only lists them, so it never holds the corpus. A
    batch answers with its counts, the inputs it could not read, and the chunk ids of each document
    file (for deleting the chunks an edit left behind, once every file is written).
    """

    def __init__(
        self,
        settings: EncoderSettings,
        instruction: str | None,
        collection: str,
        host: str,
        port: int,
        chunk_tokens: int | None,
        chunk_overlap_tokens: int,
    ) -> None:
        from .ingest.chunking import Chunker

        super().__init__(settings, instruction, collection, host, port, text_column="text", id_column="id")
        self.chunker = Chunker.for_encoder(
            self.encoder, instruction, max_tokens=chunk_tokens, overlap_tokens=chunk_overlap_tokens
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .ingest.sources import CountingReader
        from .ingest.vectorstores import ingest_stream

        reader = CountingReader([str(path) for path in batch["path"]], chunker=self.chunker, skip_bad=True)
        result = ingest_stream(self.collection, reader, batch_size=self.max_batch, progress=False, embed=self._embed)
        report = reader.report(written=result.written, skipped=result.skipped)
        return {
            "files": np.array([report.files]),
            "chunks": np.array([report.chunks]),
            "skipped": np.array([report.skipped]),
            "written": np.array([report.written]),
            "bad_json": np.array([json.dumps(report.bad)]),
            "file_ids_json": np.array([json.dumps(report.file_ids)]),
        }


class _AssignIds:
    """Add content-hash ids (of text and metadata) to rows that have none."""

    def __init__(self, text_column: str) -> None:
        self.text_column = text_column

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ._ids import content_id

        metadata = batch.get(_METADATA_COLUMN)
        batch["_id"] = np.array(
            [
                content_id(str(text), json.loads(str(metadata[i])) if metadata is not None else None)
                for i, text in enumerate(batch[self.text_column])
            ]
        )
        return batch


def _ray(address: str | None) -> Any:
    """The ``ray`` module, connected: to ``address``, or to a local Ray started here when none runs."""
    ray = require("ray", "ray")
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    return ray


def _open_collection(
    collection: str,
    host: str,
    port: int,
    settings: EncoderSettings,
    task: str | None,
    document_instruction: str | None,
    query_instruction: str | None,
) -> tuple[str | None, bool]:
    """Create (or check) the collection with its embedding-function config.

    The driver builds the embedding function lazily: it loads no model, only the actors do.

    Returns:
        The document instruction, and whether this call created the collection.
    """
    from .chroma import InstructorEmbeddingFunction
    from .ingest.vectorstores import _collection_names, chroma_client, get_collection

    ef = InstructorEmbeddingFunction(
        settings.model_name_or_path,
        task=task,
        document_instruction=document_instruction,
        query_instruction=query_instruction,
        lazy=True,
        **{name: getattr(settings, name) for name in MODEL_SETTINGS},
    )
    client = chroma_client(host=host, port=port)
    existed = collection in _collection_names(client)
    get_collection(client, collection, embedding=ef)
    return ef.document_instruction, not existed


def _actor_start_failure(exc: BaseException) -> str | None:
    """The error that stopped a Ray actor's constructor (its last line, ``Type: message``), if it caused ``exc``."""
    from ray.exceptions import RayActorError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, RayActorError) and current.actor_init_failed:
            lines = [line.strip() for line in str(current).splitlines() if line.strip()]
            return lines[-1] if lines else type(current).__name__
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def _named_start_failures(collection: str, host: str, port: int, created: bool) -> Iterator[None]:
    """An actor that cannot start (a setting its model refuses) fails the run with that error, named.

    A collection this run created is removed again while it is still empty, so a refused run leaves
    nothing behind.

    Raises:
        ValueError: The actors' constructor failed; the message is its error.
    """
    try:
        yield
    except Exception as exc:
        reason = _actor_start_failure(exc)
        if reason is None:
            raise
        from .ingest.vectorstores import chroma_client

        client = chroma_client(host=host, port=port)
        removed = created and client.get_collection(collection, embedding_function=None).count() == 0
        if removed:
            client.delete_collection(collection)
        after = f"collection {collection!r} {'removed again' if removed else 'kept'}"
        raise ValueError(f"the Ray workers could not start ({after}): {reason}") from None


def ingest_to_chroma(
    ds: Any,
    *,
    collection: str,
    host: str,
    port: int = 8000,
    model: str,
    id_column: str | None = None,
    text_column: str = "text",
    task: str | None = None,
    document_instruction: str | None = None,
    query_instruction: str | None = None,
    batch_size: int = 256,
    concurrency: int = 1,
    num_gpus: float = 0,
    num_cpus: float | None = None,
    settings: EncoderSettings | None = None,
    **encoder_kwargs: Any,
) -> IngestCounts:
    """Embed a Ray dataset into a Chroma server collection, skipping ids already stored.

    The collection is created (cosine space) with an
    :class:`~instructor_integrations.chroma.InstructorEmbeddingFunction` config naming the model and
    both instructions, so ``instructor-embed search`` and ``client.get_collection(name)`` work on it.

    Args:
        ds: A ``ray.data.Dataset`` with a text column (and optionally an id column, and a
            ``metadata_json`` column of JSON objects).
        collection: Collection name.
        host: Chroma server host.
        port: Chroma server port.
        model: Hub name or local folder (reachable from every worker).
        id_column: Column of unique ids; default: a content hash of text and metadata.
        text_column: Column of texts.
        task: Instruction preset (sets both instructions).
        document_instruction: Instruction for the documents.
        query_instruction: Instruction saved for queries.
        batch_size: Rows per Ray batch (Ray's; the rows per forward pass are the encoder's ``batch_size``).
        concurrency: Number of actors.
        num_gpus: GPUs per actor.
        num_cpus: CPUs per actor.
        settings: The encoder settings of every actor (``model`` replaces its model name).
        **encoder_kwargs: Any other :class:`~instructor_integrations.settings.EncoderSettings` field, by name;
            every actor gets each of them, and the collection's saved config records those that decide the
            vectors (dtype, precision, ``max_seq_length``, ``instructor_pooling``).

    Returns:
        :class:`IngestCounts` summed over all batches.

    Raises:
        ValueError: A column that is not in the dataset, or actors that could not start (their error,
            named; a collection this call created is removed while still empty).
    """
    check_positive_int(batch_size, "batch_size")
    check_positive_int(concurrency, "concurrency")
    if text_column not in ds.columns():
        raise ValueError(f"text_column {text_column!r} is not a column of the dataset: {short(ds.columns())}")
    if id_column is not None and id_column not in ds.columns():
        raise ValueError(f"id_column {id_column!r} is not a column of the dataset: {short(ds.columns())}")
    encoder_settings = actor_settings(model, settings, **encoder_kwargs)
    instruction, created = _open_collection(
        collection, host, port, encoder_settings, task, document_instruction, query_instruction
    )
    if id_column is None:
        ds = ds.map_batches(_AssignIds, fn_constructor_kwargs={"text_column": text_column}, batch_format="numpy")
        id_column = "_id"
    counts = ds.map_batches(
        _ChromaWriter,
        fn_constructor_kwargs={
            "settings": encoder_settings,
            "instruction": instruction,
            "collection": collection,
            "host": host,
            "port": port,
            "text_column": text_column,
            "id_column": id_column,
        },
        batch_size=batch_size,
        concurrency=concurrency,
        batch_format="numpy",
        **_actor_resources(num_gpus, num_cpus),
    )
    totals = {"embedded": 0, "skipped": 0, "written": 0}
    with _named_start_failures(collection, host, port, created):
        for row in counts.iter_rows():
            for key in totals:
                totals[key] += int(row[key])
    result = IngestCounts(**totals)
    logger.info("Ray ingest into %s: %s", collection, result)
    return result


def ingest_records_with_ray(
    records: Sequence[Record],
    *,
    collection: str,
    host: str,
    port: int,
    model: str,
    address: str | None = None,
    **kwargs: Any,
) -> IngestCounts:
    """Ingest :class:`~instructor_integrations.sources.Record` chunks through Ray (the CLI's ``--ray``)."""
    ray = _ray(address)
    rows = [{"id": r.id, "text": r.text, _METADATA_COLUMN: json.dumps(r.metadata)} for r in records]
    ds = ray.data.from_items(rows)
    return ingest_to_chroma(ds, collection=collection, host=host, port=port, model=model, id_column="id", **kwargs)


def ingest_files_with_ray(
    paths: Sequence[str],
    *,
    collection: str,
    host: str,
    port: int,
    model: str,
    address: str | None = None,
    task: str | None = None,
    document_instruction: str | None = None,
    query_instruction: str | None = None,
    chunk_tokens: int | None = None,
    chunk_overlap_tokens: int = 0,
    files_per_batch: int = 16,
    concurrency: int = 1,
    num_gpus: float = 0,
    num_cpus: float | None = None,
    settings: EncoderSettings | None = None,
    **encoder_kwargs: Any,
) -> FileIngestReport:
    """Read, chunk, embed and write files into a Chroma server on Ray workers (the CLI's ``ingest --ray``).

    The driver lists the files (:func:`~instructor_integrations.sources.iter_paths`) and loads no model;
    each actor reads and chunks its files with :func:`~instructor_integrations.sources.read_records`,
    measured by its own encoder's tokenizer, and writes them through the package's one store writer
    (:func:`~instructor_integrations.vectorstores.ingest_stream`): the same ids, metadata and skip rule
    as an ingest in one process. Files must be readable at the same paths on every worker.

    Args:
        paths: Files and folders.
        collection: Collection name.
        host: Chroma server host.
        port: Chroma server port.
        model: Hub name or local folder (reachable from every worker).
        address: A Ray cluster's address (default: a local Ray).
        task: Instruction preset (sets both instructions).
        document_instruction: Instruction for the documents.
        query_instruction: Instruction saved for queries.
        chunk_tokens: Most tokens per chunk (default: what fits with the instruction).
        chunk_overlap_tokens: Tokens consecutive chunks share.
        files_per_batch: Files per Ray batch (one actor reads, embeds and writes them).
        concurrency: Number of actors.
        num_gpus: GPUs per actor.
        num_cpus: CPUs per actor.
        settings: The encoder settings of every actor (``model`` replaces its model name).
        **encoder_kwargs: Any other :class:`~instructor_integrations.settings.EncoderSettings` field, by name.

    Returns:
        A :class:`FileIngestReport` summed over all batches; unreadable inputs are in ``bad`` (the run
        goes on past them: the caller decides whether that is an error).

    Raises:
        SourceError: A path that does not exist (before anything is written).
        ValueError: The actors could not start, e.g. ``chunk_tokens`` past what fits with the instruction
            (their error, named; a collection this call created is removed while still empty).
    """
    from .ingest.sources import iter_paths

    check_positive_int(files_per_batch, "files_per_batch")
    check_positive_int(concurrency, "concurrency")
    files = [str(path) for path in iter_paths(paths)]
    encoder_settings = actor_settings(model, settings, **encoder_kwargs)
    ray = _ray(address)
    instruction, created = _open_collection(
        collection, host, port, encoder_settings, task, document_instruction, query_instruction
    )
    if not files:
        return FileIngestReport(0, 0, 0, 0, [], {})
    batches = ray.data.from_items([{"path": path} for path in files]).map_batches(
        _FileIngester,
        fn_constructor_kwargs={
            "settings": encoder_settings,
            "instruction": instruction,
            "collection": collection,
            "host": host,
            "port": port,
            "chunk_tokens": chunk_tokens,
            "chunk_overlap_tokens": chunk_overlap_tokens,
        },
        batch_size=files_per_batch,
        concurrency=concurrency,
        batch_format="numpy",
        **_actor_resources(num_gpus, num_cpus),
    )
    totals = {"files": 0, "chunks": 0, "written": 0, "skipped": 0}
    bad: list[tuple[str, str]] = []
    file_ids: dict[str, list[str]] = {}
    with _named_start_failures(collection, host, port, created):
        for row in batches.iter_rows():
            for key in totals:
                totals[key] += int(row[key])
            bad.extend((str(where), str(reason)) for where, reason in json.loads(str(row["bad_json"])))
            file_ids.update(json.loads(str(row["file_ids_json"])))
    report = FileIngestReport(**totals, bad=sorted(bad), file_ids=file_ids)
    logger.info(
        "Ray ingest into %s: %d files, %d chunks, %d written, %d skipped, %d bad inputs",
        collection, report.files, report.chunks, report.written, report.skipped, len(report.bad),
    )  # fmt: skip
    return report


# ---------------------------------------------------------------------------------------------- Ray Serve
class _ServeReplica:
    """One Ray Serve replica: its own model, behind the same app as ``instructor-embed serve``."""

    def __init__(self, model: str, settings: dict[str, Any], encoder_kwargs: dict[str, Any]) -> None:
        from ._engine.cpu import tune_cpu
        from .encoder import InstructorEncoder
        from .server import ServerSettings

        tune_cpu()  # a replica is a service process of its own, as `instructor-embed serve` is
        self._settings = ServerSettings(**settings)
        self._encoder = InstructorEncoder(model, show_progress_bar=False, **encoder_kwargs)

    def __serve_build_asgi_app__(self) -> Any:
        from .server import create_app

        return create_app(self._encoder, self._settings)


def serve_deployment(
    model: str,
    *,
    num_replicas: int | str = 1,
    autoscaling_config: dict[str, Any] | None = None,
    num_gpus: float = 0,
    num_cpus: float | None = None,
    served_model_name: str | None = None,
    api_key: str | None = None,
    task: str | None = None,
    input_type: str = "document",
    max_inputs: int = 2048,
    max_request_bytes: int = 16 * 1024 * 1024,
    max_queued_rows: int = 16384,
    **encoder_kwargs: Any,
) -> Any:
    """The embedding server as a Ray Serve application: replicas each hold the model.

    Every replica answers the same HTTP API as ``instructor-embed serve`` (``/v1/embeddings``,
    ``/v1/models``, ``/health``, ``/ready``, ``/metrics``); Ray's proxy spreads the requests.

    Args:
        model: Hub name or folder of the checkpoint (on every node that runs a replica).
        num_replicas: Replicas to run (or ``"auto"``); leave at 1 when ``autoscaling_config`` is given.
        autoscaling_config: Ray Serve's autoscaling settings, passed through (for example
            ``{"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 32}``).
        num_gpus: GPUs per replica (1 puts each replica on a GPU of its own).
        num_cpus: CPUs per replica (Ray's default when ``None``).
        served_model_name: The model's name in the API (default: ``model``).
        api_key: Require ``Authorization: Bearer <api_key>`` (see
            :class:`~instructor_integrations.server.ServerSettings`, as the next five).
        task: Default instruction preset.
        input_type: Default side of the preset's pair, ``"query"`` or ``"document"``.
        max_inputs: Inputs per request.
        max_request_bytes: Bytes per request.
        max_queued_rows: Rows waiting before 503, per replica.
        **encoder_kwargs: Passed to each replica's
            :class:`~instructor_integrations.encoder.InstructorEncoder` (``device``, ``precision``,
            ``batch_size``, ...).

    Returns:
        A ``ray.serve.Application``: ``serve.run(app)``, or ``serve run`` with :func:`serve_app`.

    Examples:
        >>> from ray import serve  # doctest: +SKIP
        >>> serve.run(serve_deployment("hkunlp/instructor-large", num_replicas=2, num_gpus=1))  # doctest: +SKIP
    """
    serve = require("ray.serve", "ray")
    from .server import ServerSettings

    settings: dict[str, Any] = {
        "model_name": served_model_name or model,
        "api_key": api_key,
        "task": task,
        "input_type": input_type,
        "max_inputs": max_inputs,
        "max_request_bytes": max_request_bytes,
        "max_queued_rows": max_queued_rows,
    }
    ServerSettings(**settings)  # bad settings fail here, not in each replica
    EncoderSettings.from_kwargs(model_name_or_path=model, **encoder_kwargs)
    options: dict[str, Any] = {"ray_actor_options": _actor_resources(num_gpus, num_cpus)}
    if autoscaling_config is not None:
        options["autoscaling_config"] = autoscaling_config
    else:
        options["num_replicas"] = num_replicas
    deployment = serve.deployment(name="instructor-embed", **options)(serve.ingress()(_ServeReplica))
    return deployment.bind(model, settings, encoder_kwargs)


#: Arguments of :func:`serve_app` and how each is read from ``serve run``'s ``key=value`` strings.
_SERVE_ARGS: dict[str, Any] = {
    "model": str,
    "num_replicas": lambda v: v if v == "auto" else int(v),
    "num_gpus": float,
    "num_cpus": float,
    "served_model_name": str,
    "api_key": str,
    "task": str,
    "input_type": str,
    "max_inputs": int,
    "max_request_bytes": int,
    "max_queued_rows": int,
    "autoscaling_config": json.loads,
    # Every encoder setting the CLI offers, read by its declared type (never trust_remote_code from a command line).
    **{
        name: functools.partial(EncoderSettings.parse, name)
        for name in EncoderSettings.names()
        if name != "model_name_or_path" and EncoderSettings.flag(name) is not None
    },
}


def serve_app(args: dict[str, str]) -> Any:
    """Application builder for Ray Serve's CLI: ``serve run instructor_integrations.ray:serve_app model=...``.

    Takes the arguments of :func:`serve_deployment` as ``key=value`` strings, plus every encoder setting of
    :class:`~instructor_integrations.settings.EncoderSettings` by name (``device=cpu``,
    ``max_seq_length=256``, ``instructor_pooling=false``, ...); ``autoscaling_config`` as JSON.

    Examples:
        >>> serve_app({"model": "m", "colour": "red"})
        Traceback (most recent call last):
        ...
        ValueError: unknown argument(s) 'colour' for serve_app; accepted: model, num_replicas, ...
    """
    unknown = sorted(set(args) - set(_SERVE_ARGS))
    if unknown:
        raise ValueError(
            f"unknown argument(s) {', '.join(map(repr, unknown))} for serve_app; accepted: {', '.join(_SERVE_ARGS)}"
        )
    if "model" not in args:
        raise ValueError("serve_app needs model=<hub name or folder>")
    values = {}
    for key, raw in args.items():
        try:
            values[key] = _SERVE_ARGS[key](raw)
        except ValueError:
            raise ValueError(f"{key}={raw!r} is not a valid value for serve_app") from None
    return serve_deployment(values.pop("model"), **values)
