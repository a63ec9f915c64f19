"""LangChain adapter: :class:`InstructorEmbeddings`, a ``langchain_core.embeddings.Embeddings``.

Requires the ``[langchain]`` extra.
"""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from ._adapter import (
    MODEL_SETTINGS,
    canonical_names,
    encoder_settings,
    old_wrapper_kwargs,
    resolve_encoder,
    resolve_instructions,
)
from ._optional import require
from ._protocol import Encoder
from ._validation import check_text, check_texts
from .encoder import DEFAULT_MODEL
from .settings import EncoderSettings

_embeddings = require("langchain_core.embeddings", "langchain")
_splitters = require("langchain_text_splitters", "langchain")

__all__ = ["InstructorEmbeddings", "InstructorTextSplitter"]

#: LangChain's names (``HuggingFaceInstructEmbeddings``) -> the names every adapter here shares.
_LEGACY = {"embed_instruction": "document_instruction", "show_progress": "show_progress_bar"}


class InstructorEmbeddings(BaseModel, _embeddings.Embeddings):  # type: ignore[misc, name-defined]
    """INSTRUCTOR embeddings for LangChain: documents and queries each get their own instruction.

    A drop-in replacement for ``HuggingFaceInstructEmbeddings`` on the current stack. The settings have
    the names every adapter of this package shares (``document_instruction``, ``query_instruction``,
    ``show_progress_bar``...); LangChain's legacy names ``embed_instruction`` and ``show_progress`` work
    too, in the constructor and as attributes, and so do its ``model_kwargs={"device": ...}`` and
    ``encode_kwargs={"batch_size": ..., "normalize_embeddings": True}`` (with a ``DeprecationWarning``).

    Examples:
        >>> from instructor_integrations.langchain import InstructorEmbeddings
        >>> embeddings = InstructorEmbeddings(model_name="tests/fixtures/tiny-instructor", device="cpu")
        >>> len(embeddings.embed_query("What is INSTRUCTOR?"))
        24
        >>> embeddings.query_instruction
        'Represent the question for retrieving supporting documents: '
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    model_name: str = DEFAULT_MODEL
    """Hub name or local folder of the sentence-transformers checkpoint."""
    document_instruction: str | None = None
    """Instruction for documents (legacy name ``embed_instruction``). Default: from ``task``, else generic."""
    query_instruction: str | None = None
    """Instruction for queries. Default: from ``task``, else the generic retrieval query instruction."""
    task: str | None = None
    """A preset name (an MTEB dataset such as "SciFact", or "retrieval") that sets both instructions."""
    device: str | None = None
    """"cpu", "cuda", "cuda:N", "mps", or None (cuda, then mps, then cpu)."""
    dtype: str = "auto"
    """Weight dtype: "auto", "float32", "bfloat16" or "float16"."""
    precision: str | None = None
    """"exact" (float32, reference parity), "fast" (bfloat16 where fast), "int8" (CPU, extra [int8]), or None."""
    max_seq_length: int | None = None
    """Token limit per input; None: 512 for INSTRUCTOR checkpoints, the model's own otherwise."""
    token_budget: int | str | None = "auto"
    """Padded tokens per forward pass, at most: an int, "auto" (per device) or None (no cap)."""
    cache_folder: str | None = None
    """Where hub models are cached (default: the Hugging Face cache)."""
    local_files_only: bool | None = None
    """Never touch the network; None follows HF_HUB_OFFLINE."""
    trust_remote_code: bool = False
    """Allow custom model code from the hub."""
    instructor_pooling: bool | None = None
    """Leave the instruction's tokens out of mean pooling; None: on for INSTRUCTOR checkpoints only."""
    batch_size: int = Field(default=32, gt=0)
    """Rows per forward pass."""
    show_progress_bar: bool = False
    """Show a progress bar while embedding documents (legacy name ``show_progress``)."""
    compile: bool = False
    """Compile the model's forward (about 30 s once; faster for large document sets)."""
    num_workers: int = Field(default=1, gt=0)
    """Worker processes (CPU or CUDA) for multi-batch calls, each with its own model copy (1: none)."""
    encoder: Encoder | None = Field(default=None, exclude=True, repr=False)
    """The encoder in use: the one given (an InstructorEncoder, or a RemoteEncoder for a server), else the
    process-wide one for these settings (the same attribute on every adapter of this package)."""

    _encoder: Encoder = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _canonical(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return canonical_names(old_wrapper_kwargs(data, "InstructorEmbeddings"), _LEGACY, "InstructorEmbeddings")
        return data

    @model_validator(mode="after")
    def _load(self) -> InstructorEmbeddings:
        query, document = resolve_instructions(
            self.task, self.query_instruction, self.document_instruction, self.model_name
        )
        self.query_instruction, self.document_instruction = query, document
        self._encoder = resolve_encoder(self.encoder_settings, self.encoder)
        self.__dict__["encoder"] = self._encoder  # the field names the encoder in use, given or shared
        return self

    @property
    def embed_instruction(self) -> str | None:
        """``document_instruction`` under LangChain's legacy name."""
        return self.document_instruction

    @property
    def show_progress(self) -> bool:
        """``show_progress_bar`` under LangChain's legacy name."""
        return self.show_progress_bar

    @property
    def encoder_settings(self) -> EncoderSettings:
        """These fields as the settings of the shared encoder (what an ``encoder`` of its own replaces)."""
        return encoder_settings(self.model_name, {name: getattr(self, name) for name in MODEL_SETTINGS})

    @property
    def instructor_encoder(self) -> Encoder:
        """Deprecated name of :attr:`encoder` (the encoder in use)."""
        warnings.warn("instructor_encoder is deprecated, use encoder", DeprecationWarning, stacklevel=2)
        return self._encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents with ``document_instruction``."""
        items = check_texts(texts)
        vectors = self._encoder.encode(
            items,
            self.document_instruction,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            priority="bulk",
        )
        result: list[list[float]] = vectors.tolist()
        return result

    def embed_query(self, text: str) -> list[float]:
        """Embed one query with ``query_instruction``."""
        check_text(text, "text")
        result: list[float] = self._encoder.encode([text], self.query_instruction, priority="interactive")[0].tolist()
        return result

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents; the event loop runs on while they wait on the encoder's queue."""
        items = check_texts(texts)
        vectors = await self._encoder.aencode(
            items, self.document_instruction, batch_size=self.batch_size, priority="bulk"
        )
        result: list[list[float]] = vectors.tolist()
        return result

    async def aembed_query(self, text: str) -> list[float]:
        """Embed one query; concurrent queries share forward passes and go ahead of queued documents."""
        check_text(text, "text")
        vectors = await self._encoder.aencode([text], self.query_instruction, priority="interactive")
        result: list[float] = vectors[0].tolist()
        return result

    def text_splitter(
        self, *, chunk_tokens: int | None = None, chunk_overlap_tokens: int = 0, markdown: bool = False
    ) -> InstructorTextSplitter:
        """A LangChain ``TextSplitter`` whose chunks fit this model with ``document_instruction``: none is truncated.

        Chunks are measured in the model's tokens (see :class:`~instructor_integrations.chunking.Chunker`).
        Needs the model's tokenizer: an in-process encoder (not a ``RemoteEncoder``).

        Args:
            chunk_tokens: Most tokens per chunk (default and ceiling: what fits with the instruction).
            chunk_overlap_tokens: Tokens consecutive chunks may share.
            markdown: Cut at Markdown's structure (headings, code blocks, tables) first.

        Examples:
            >>> embeddings = InstructorEmbeddings(model_name="tests/fixtures/tiny-instructor", device="cpu")
            >>> splitter = embeddings.text_splitter(chunk_tokens=64)
            >>> len(splitter.split_text("The moon pulls the sea. " * 40)) > 1
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
        return InstructorTextSplitter(chunker)


class InstructorTextSplitter(_splitters.TextSplitter):  # type: ignore[misc, name-defined]
    """A LangChain ``TextSplitter`` that cuts by a :class:`~instructor_integrations.chunking.Chunker`.

    Made by :meth:`InstructorEmbeddings.text_splitter`; ``split_documents`` and ``create_documents``
    work as for any LangChain splitter (``add_start_index=True`` records each chunk's offset).

    Examples:
        >>> embeddings = InstructorEmbeddings(model_name="tests/fixtures/tiny-instructor", device="cpu")
        >>> splitter = embeddings.text_splitter()
        >>> splitter.split_text("Tides follow the moon.")
        ['Tides follow the moon.']
    """

    def __init__(self, chunker: Any, **kwargs: Any) -> None:
        super().__init__(
            chunk_size=chunker.max_tokens,
            chunk_overlap=chunker.overlap_tokens,  # in tokens; split_text does the cutting
            **kwargs,
        )
        self._chunker = chunker

    def split_text(self, text: str) -> list[str]:
        """The chunks of ``text``, each fitting the model with the document instruction."""
        result: list[str] = self._chunker.split_text(text)
        return result
