"""LlamaIndex adapter: :class:`InstructorEmbedding`, a llama-index-core ``BaseEmbedding``.

Requires the ``[llama-index]`` extra. Usable as ``Settings.embed_model`` and in ``VectorStoreIndex``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from ._adapter import MODEL_SETTINGS, canonical_names, encoder_settings, resolve_encoder, resolve_instructions
from ._optional import require
from ._protocol import Encoder
from ._validation import Priority, check_text, check_texts
from .encoder import DEFAULT_MODEL
from .settings import EncoderSettings

_base = require("llama_index.core.base.embeddings.base", "llama-index")
_node_parser = require("llama_index.core.node_parser", "llama-index")
_bridge = require("llama_index.core.bridge.pydantic", "llama-index")
_schema = require("llama_index.core.callbacks.schema", "llama-index")
_events = require("llama_index.core.instrumentation.events.embedding", "llama-index")
_dispatcher = require("llama_index.core.instrumentation", "llama-index").get_dispatcher(__name__)
Field = _bridge.Field
PrivateAttr = _bridge.PrivateAttr

__all__ = ["InstructorEmbedding", "InstructorNodeParser"]

#: llama-index-embeddings-instructor's names -> the names every adapter here shares (``batch_size`` is
#: LlamaIndex's ``embed_batch_size``; ``num_workers`` keeps LlamaIndex's meaning and the encoder's is
#: ``encoder_num_workers``, see the class doc).
_LEGACY = {"text_instruction": "document_instruction", "show_progress": "show_progress_bar"}


class InstructorEmbedding(_base.BaseEmbedding):  # type: ignore[misc, name-defined]
    """INSTRUCTOR embeddings for LlamaIndex: texts and queries each get their own instruction.

    A replacement for ``llama-index-embeddings-instructor`` on the current stack: one encoder call per
    batch of texts, and async methods that await the encoder's queue without holding a thread.

    The inherited ``num_workers`` field keeps LlamaIndex's meaning (concurrent async jobs); the
    encoder's worker processes are ``encoder_num_workers``. To embed through a server, pass
    ``encoder=RemoteEncoder(url)``.

    Examples:
        >>> from llama_index.core import Settings
        >>> from instructor_integrations.llama_index import InstructorEmbedding
        >>> Settings.embed_model = InstructorEmbedding(model_name="tests/fixtures/tiny-instructor", device="cpu")
        >>> len(Settings.embed_model.get_query_embedding("What is INSTRUCTOR?"))
        24
    """

    model_name: str = Field(default=DEFAULT_MODEL, description="Hub name or local folder of the checkpoint.")
    document_instruction: str | None = Field(
        default=None,
        description="Instruction for documents (legacy name text_instruction); default from task, else generic.",
    )
    query_instruction: str | None = Field(
        default=None, description="Instruction for queries; default from task, else the generic one."
    )
    task: str | None = Field(default=None, description="Preset name (e.g. 'SciFact') that sets both instructions.")
    device: str | None = Field(default=None, description="'cpu', 'cuda', 'cuda:N', 'mps' or None (auto).")
    dtype: str = Field(default="auto", description="Weight dtype: auto, float32, bfloat16 or float16.")
    precision: str | None = Field(
        default=None, description="'exact', 'fast', 'int8' (CPU, extra [int8]) or None (dtype decides)."
    )
    max_seq_length: int | None = Field(default=None, description="Token limit per input (None: model default).")
    token_budget: int | str | None = Field(
        default="auto", description="Padded tokens per forward pass, at most: an int, 'auto' or None (no cap)."
    )
    cache_folder: str | None = Field(default=None, description="Where hub models are cached (default: HF cache).")
    local_files_only: bool | None = Field(
        default=None, description="Never touch the network; None follows HF_HUB_OFFLINE."
    )
    trust_remote_code: bool = Field(default=False, description="Allow custom model code from the hub.")
    instructor_pooling: bool | None = Field(
        default=None,
        description="Leave the instruction's tokens out of mean pooling; None: on for INSTRUCTOR checkpoints only.",
    )
    show_progress_bar: bool = Field(
        default=False, description="Show a progress bar while embedding (legacy name show_progress)."
    )
    compile: bool = Field(
        default=False, description="Compile the model's forward (about 30 s once; faster for large corpora)."
    )
    encoder_num_workers: int = Field(
        default=1,
        gt=0,
        description="The encoder's worker processes (its num_workers; LlamaIndex's num_workers is async jobs).",
    )

    _encoder: Encoder = PrivateAttr()

    def __init__(self, *, encoder: Encoder | None = None, **data: Any) -> None:
        data = canonical_names(data, _LEGACY, "InstructorEmbedding")
        if "batch_size" in data:  # the canonical name of LlamaIndex's embed_batch_size
            if "embed_batch_size" in data:
                raise ValueError("InstructorEmbedding: give batch_size= or embed_batch_size=, not both")
            data["embed_batch_size"] = data.pop("batch_size")
        model_name = data.get("model_name", DEFAULT_MODEL)
        query, document = resolve_instructions(
            data.get("task"), data.get("query_instruction"), data.get("document_instruction"), model_name
        )
        data["query_instruction"], data["document_instruction"] = query, document
        data.setdefault("embed_batch_size", 32)
        super().__init__(**data)
        self._encoder = resolve_encoder(self.encoder_settings, encoder)

    @classmethod
    def class_name(cls) -> str:
        """Name used by LlamaIndex serialization (``to_dict`` / ``from_dict``)."""
        return "InstructorIntegrationsEmbedding"

    @property
    def text_instruction(self) -> str | None:
        """``document_instruction`` under llama-index-embeddings-instructor's name."""
        return self.document_instruction

    @property
    def show_progress(self) -> bool:
        """``show_progress_bar`` under its legacy name."""
        return self.show_progress_bar

    @property
    def batch_size(self) -> int:
        """``embed_batch_size`` under the name every adapter here shares."""
        return int(self.embed_batch_size)

    @property
    def encoder_settings(self) -> EncoderSettings:
        """These fields as the settings of the shared encoder (what an ``encoder`` of its own replaces)."""
        values = {name: getattr(self, name) for name in MODEL_SETTINGS if name != "num_workers"}
        return encoder_settings(self.model_name, {**values, "num_workers": self.encoder_num_workers})

    @property
    def encoder(self) -> Encoder:
        """The encoder in use: the one given, else the process-wide one for these settings (as on every adapter)."""
        return self._encoder

    @property
    def instructor_encoder(self) -> Encoder:
        """Deprecated name of :attr:`encoder`."""
        warnings.warn("instructor_encoder is deprecated, use encoder", DeprecationWarning, stacklevel=2)
        return self._encoder

    def _embed(
        self, texts: list[str], instruction: str | None, show_progress: bool = False, priority: Priority = "bulk"
    ) -> list[list[float]]:
        vectors = self._encoder.encode(
            texts,
            instruction,
            batch_size=self.embed_batch_size,
            show_progress_bar=self.show_progress_bar or show_progress,
            priority=priority,
        )
        result: list[list[float]] = vectors.tolist()
        return result

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([check_text(query, "query")], self.query_instruction, priority="interactive")[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([check_text(text, "text")], self.document_instruction)[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(check_texts(texts), self.document_instruction)

    @contextlib.contextmanager
    def _embedding_events(self, items: list[str]) -> Iterator[Callable[[list[list[float]]], list[list[float]]]]:
        """LlamaIndex's start/end events and callback around one embedding of ``items``.

        Yields a function that records the embeddings (and returns them) for the end events.
        """
        payload = self.to_payload()
        recorded: list[list[list[float]]] = []

        def record(embeddings: list[list[float]]) -> list[list[float]]:
            recorded.append(embeddings)
            return embeddings

        _dispatcher.event(_events.EmbeddingStartEvent(model_dict=payload))
        with self.callback_manager.event(
            _schema.CBEventType.EMBEDDING, payload={_schema.EventPayload.SERIALIZED: payload}
        ) as event:
            yield record
            event.on_end(payload={_schema.EventPayload.CHUNKS: items, _schema.EventPayload.EMBEDDINGS: recorded[0]})
        _dispatcher.event(_events.EmbeddingEndEvent(chunks=items, embeddings=recorded[0]))

    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[list[float]]:
        """Embed texts with ``document_instruction``: one encoder call for the whole list.

        LlamaIndex's base class would call the model once per ``embed_batch_size`` chunk; handing the
        encoder the whole list lets it sort every text by length before cutting the same
        ``embed_batch_size``-row forward passes (less padding, so faster). With an
        embeddings cache or a rate limiter the base class's chunked path runs instead.
        """
        if self.embeddings_cache is not None or self.rate_limiter is not None:
            result: list[list[float]] = super().get_text_embedding_batch(texts, show_progress=show_progress, **kwargs)
            return result
        items = check_texts(texts)
        with self._embedding_events(items) as record:
            embeddings = record(self._embed(items, self.document_instruction, show_progress))
        return embeddings

    async def aget_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[list[float]]:
        """Async :meth:`get_text_embedding_batch`: one awaited encoder call for the whole list."""
        if self.embeddings_cache is not None or self.rate_limiter is not None:
            result: list[list[float]] = await super().aget_text_embedding_batch(
                texts, show_progress=show_progress, **kwargs
            )
            return result
        items = check_texts(texts)
        with self._embedding_events(items) as record:
            embeddings = record(await self._aembed(items, self.document_instruction))
        return embeddings

    async def _aembed(
        self, texts: list[str], instruction: str | None, priority: Priority = "bulk"
    ) -> list[list[float]]:
        vectors = await self._encoder.aencode(texts, instruction, batch_size=self.embed_batch_size, priority=priority)
        result: list[list[float]] = vectors.tolist()
        return result

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (await self._aembed([check_text(query, "query")], self.query_instruction, "interactive"))[0]

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._aembed([check_text(text, "text")], self.document_instruction))[0]

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await self._aembed(check_texts(texts), self.document_instruction)

    def node_parser(
        self, *, chunk_tokens: int | None = None, chunk_overlap_tokens: int = 0, markdown: bool = False
    ) -> InstructorNodeParser:
        """A LlamaIndex node parser whose chunks fit this model with ``document_instruction``: none is truncated.

        Chunks are measured in the model's tokens (see :class:`~instructor_integrations.chunking.Chunker`),
        with room left for the metadata LlamaIndex embeds with each node. Use it as a transformation
        (``VectorStoreIndex.from_documents(docs, transformations=[embedding.node_parser()])``) or as
        ``Settings.node_parser``. Needs the model's tokenizer: an in-process encoder.

        Args:
            chunk_tokens: Most tokens per chunk (default and ceiling: what fits with the instruction).
            chunk_overlap_tokens: Tokens consecutive chunks may share.
            markdown: Cut at Markdown's structure (headings, code blocks, tables) first.

        Examples:
            >>> from llama_index.core import Document
            >>> embedding = InstructorEmbedding(model_name="tests/fixtures/tiny-instructor", device="cpu")
            >>> parser = embedding.node_parser(chunk_tokens=64)
            >>> len(parser.get_nodes_from_documents([Document(text="The moon pulls the sea. " * 40)])) > 1
            True
        """
        from .ingest.chunking import Chunker

        chunker = Chunker.for_encoder(
            self._encoder,
            self.document_instruction,
            max_tokens=chunk_tokens,
            overlap_tokens=chunk_overlap_tokens,
            markdown=markdown,
        )
        return InstructorNodeParser.from_chunker(chunker)


class InstructorNodeParser(_node_parser.MetadataAwareTextSplitter):  # type: ignore[misc, name-defined]
    """A LlamaIndex text splitter that cuts by a :class:`~instructor_integrations.chunking.Chunker`.

    Made by :meth:`InstructorEmbedding.node_parser`. A node's metadata text (what LlamaIndex embeds in
    front of its content) is counted: each chunk leaves room for it.

    Examples:
        >>> embedding = InstructorEmbedding(model_name="tests/fixtures/tiny-instructor", device="cpu")
        >>> embedding.node_parser().split_text("Tides follow the moon.")
        ['Tides follow the moon.']
    """

    _chunker: Any = PrivateAttr()

    @classmethod
    def from_chunker(cls, chunker: Any) -> InstructorNodeParser:
        """A parser that cuts with ``chunker``."""
        parser = cls()
        parser._chunker = chunker
        return parser

    @classmethod
    def class_name(cls) -> str:
        """Name used by LlamaIndex serialization."""
        return "InstructorNodeParser"

    def split_text(self, text: str) -> list[str]:
        """The chunks of ``text``."""
        result: list[str] = self._chunker.split_text(text)
        return result

    def split_text_metadata_aware(self, text: str, metadata_str: str) -> list[str]:
        """The chunks of ``text``, each leaving room for ``metadata_str`` (embedded in front of it)."""
        # LlamaIndex embeds "{metadata}\n\n{content}" (its default text template).
        prefix = f"{metadata_str}\n\n" if metadata_str else ""
        result: list[str] = self._chunker.reserve(prefix).split_text(text)
        return result
