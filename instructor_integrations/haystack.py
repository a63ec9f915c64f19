"""Haystack adapter: :class:`InstructorTextEmbedder` and :class:`InstructorDocumentEmbedder` components.

Requires the ``[haystack]`` extra (``haystack-ai``). A replacement for ``instructor-embedders-haystack``
(which imports the broken ``InstructorEmbedding`` package) on the shared encoder: the text embedder
embeds queries with the query instruction, the document embedder embeds documents (with the metadata
fields chosen, as Haystack's own embedders do) with the document instruction.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

from ._adapter import MODEL_SETTINGS, encoder_settings, resolve_encoder, resolve_instructions
from ._optional import require
from ._protocol import Encoder
from ._validation import check_bool, check_positive_int, check_text, short
from .encoder import DEFAULT_MODEL
from .settings import EncoderSettings

_haystack = require("haystack", "haystack")
component = _haystack.component
Document = _haystack.Document
# The output socket's type, list[Document], spelt so that mypy takes it as a value (Document comes from require).
_DOCUMENTS: Any = list.__class_getitem__(Document)

__all__ = ["InstructorDocumentEmbedder", "InstructorTextEmbedder"]

#: What a saved pipeline never sets: custom model code runs only when this process asks for it.
_REFUSED = {"trust_remote_code": "custom model code is never run from a saved pipeline", "encoder": "not serializable"}


class _InstructorComponent:
    """The settings, the shared encoder and the serialization both components share."""

    #: The instruction ``instruction=`` (instructor-embedders-haystack's one argument) stands for.
    _old_instruction_side = "query_instruction"

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        *,
        document_instruction: str | None = None,
        query_instruction: str | None = None,
        task: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        precision: str | None = None,
        max_seq_length: int | None = None,
        token_budget: int | str | None = "auto",
        cache_folder: str | None = None,
        local_files_only: bool | None = None,
        trust_remote_code: bool = False,
        instructor_pooling: bool | None = None,
        batch_size: int | None = None,
        show_progress_bar: bool = False,
        compile: bool = False,
        num_workers: int = 1,
        encoder: Encoder | None = None,
        **old: Any,
    ) -> None:
        model_name, device, show_progress_bar, given = self._old_arguments(
            old, model_name, device, show_progress_bar, document_instruction, query_instruction, task
        )
        if given is not None:
            if self._old_instruction_side == "query_instruction":
                query_instruction = given
            else:
                document_instruction = given
        self.model_name = model_name
        self.task = task
        self.query_instruction, self.document_instruction = resolve_instructions(
            task, query_instruction, document_instruction, model_name
        )
        self.device, self.dtype, self.precision = device, dtype, precision
        self.max_seq_length, self.token_budget, self.cache_folder = max_seq_length, token_budget, cache_folder
        self.local_files_only, self.trust_remote_code = local_files_only, trust_remote_code
        self.instructor_pooling, self.compile, self.num_workers = instructor_pooling, compile, num_workers
        self._settings = encoder_settings(model_name, vars(self))  # checked now, whether or not an encoder is given
        self.batch_size = check_positive_int(batch_size, "batch_size", allow_none=True)
        self.show_progress_bar = bool(check_bool(show_progress_bar, "show_progress_bar"))
        self._given_encoder = encoder
        self._encoder: Encoder | None = None if encoder is None else resolve_encoder(self._settings, encoder)

    def _old_arguments(
        self,
        old: dict[str, Any],
        model_name: str,
        device: Any,
        show_progress_bar: bool,
        document_instruction: str | None,
        query_instruction: str | None,
        task: str | None,
    ) -> tuple[str, str | None, bool, str | None]:
        """instructor-embedders-haystack's and Haystack's names, each with its old meaning and a warning."""
        adapter = type(self).__name__
        known = {"model", "instruction", "progress_bar", "normalize_embeddings", "token"}
        unknown = sorted(set(old) - known)
        if unknown:
            raise TypeError(
                f"{adapter} got unexpected keyword argument(s) {', '.join(unknown)}; the old component's names that "
                f"still work: {', '.join(sorted(known))}"
            )

        def moved(name: str, new: str) -> None:
            warnings.warn(f"{adapter}: {name}= is deprecated, use {new}=", DeprecationWarning, stacklevel=5)

        if "model" in old:
            if model_name != DEFAULT_MODEL:
                raise ValueError(f"{adapter}: give model_name= or its old name model=, not both")
            moved("model", "model_name")
            model_name = old["model"]
        if "progress_bar" in old:  # Haystack's own embedders' name
            moved("progress_bar", "show_progress_bar")
            show_progress_bar = old["progress_bar"]
        _without_a_setting(adapter, old)
        if hasattr(device, "to_torch_str"):  # Haystack's ComponentDevice
            device = device.to_torch_str()
        instruction = old.get("instruction")
        if instruction is not None:
            side = self._old_instruction_side
            if task is not None or (query_instruction if side == "query_instruction" else document_instruction):
                raise ValueError(f"{adapter}: give instruction= (the old argument) or {side}=/task=, not both")
            moved("instruction", side)
        return model_name, device, show_progress_bar, instruction

    @property
    def encoder_settings(self) -> EncoderSettings:
        """The settings of the shared encoder this component uses (unless it was given an ``encoder``)."""
        return self._settings

    @property
    def encoder(self) -> Encoder:
        """The shared encoder behind this component (loaded now if :meth:`warm_up` has not run)."""
        if self._encoder is None:
            self._encoder = resolve_encoder(self._settings, None)
        return self._encoder

    def warm_up(self) -> None:
        """Load the model (Haystack calls this before a pipeline's first run)."""
        _ = self.encoder

    def to_dict(self) -> dict[str, Any]:
        """The component as Haystack saves it in a pipeline: its settings (no encoder object, no trust_remote_code)."""
        if self._given_encoder is not None:
            raise TypeError(
                f"{type(self).__name__} with encoder= cannot be serialized (an encoder object, maybe holding an API "
                "key, has no place in a pipeline file); build the component in code"
            )
        values = {name: getattr(self, name) for name in MODEL_SETTINGS if name != "trust_remote_code"}
        saved: dict[str, Any] = _haystack.default_to_dict(
            self,
            model_name=self.model_name,
            document_instruction=self.document_instruction,
            query_instruction=self.query_instruction,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            **values,
            **self._extra_init_parameters(),
        )
        return saved

    def _extra_init_parameters(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """The component a saved pipeline describes; ``trust_remote_code`` is refused from a file."""
        params = data.get("init_parameters", {})
        for name, why in _REFUSED.items():
            if name in params:
                raise ValueError(
                    f"{cls.__name__}: {name} is not taken from a saved pipeline ({why}); got {params[name]!r}"
                )
        return _haystack.default_from_dict(cls, data)


def _without_a_setting(adapter: str, old: dict[str, Any]) -> None:
    """The old component's arguments that have no setting here: refused if they would change the vectors."""
    if old.get("normalize_embeddings", True) is not True:
        raise ValueError(
            f"{adapter}: normalize_embeddings={old['normalize_embeddings']!r} is not available: INSTRUCTOR vectors "
            "are normalised by the checkpoint's own Normalize module, as in the reference"
        )
    if old.get("token") is not None:  # a haystack Secret, read from HF_API_TOKEN by the old component
        warnings.warn(
            f"{adapter}: token= is not used: the Hugging Face token is read from the HF_TOKEN environment "
            "variable (or `hf auth login`), as by sentence-transformers",
            DeprecationWarning,
            stacklevel=6,
        )


@component
class InstructorTextEmbedder(_InstructorComponent):
    """Embeds a query string with the query instruction, for Haystack's embedding retrievers.

    Args:
        model_name: Hub name or local folder of the checkpoint (old name: ``model``).
        query_instruction: Instruction for queries (default from ``task``, else generic; old name:
            ``instruction``).
        document_instruction: The documents' instruction (kept so one settings block serves both components).
        task: Preset name (e.g. ``"SciFact"``) that sets both instructions.
        batch_size: Rows per forward pass.
        show_progress_bar: Show a progress bar (old name: ``progress_bar``).
        encoder: An encoder to use instead of the shared one, e.g. a
            :class:`~instructor_integrations.client.RemoteEncoder` (such a component is not serializable).

    The shared encoder's settings (``device``, ``dtype``, ``precision``, ``max_seq_length``,
    ``token_budget``, ``cache_folder``, ``local_files_only``, ``trust_remote_code``,
    ``instructor_pooling``, ``compile``, ``num_workers``) are keyword arguments too, as in
    :class:`~instructor_integrations.settings.EncoderSettings`.

    Examples:
        >>> from instructor_integrations.haystack import InstructorTextEmbedder
        >>> embedder = InstructorTextEmbedder("tests/fixtures/tiny-instructor", device="cpu", task="SciFact")
        >>> len(embedder.run("Do statins lower the risk of dementia?")["embedding"])
        24
    """

    @component.output_types(embedding=list[float], meta=dict[str, Any])  # type: ignore[untyped-decorator]
    def run(self, text: str) -> dict[str, Any]:
        """Embed ``text`` with the query instruction.

        Raises:
            TypeError: ``text`` is not a string (use :class:`InstructorDocumentEmbedder` for documents).
        """
        text = self._check(text)
        vector = self.encoder.encode([text], self.query_instruction, batch_size=self.batch_size, priority="interactive")
        return {"embedding": vector[0].tolist(), "meta": {"model": self.model_name}}

    @component.output_types(embedding=list[float], meta=dict[str, Any])  # type: ignore[untyped-decorator]
    async def run_async(self, text: str) -> dict[str, Any]:
        """:meth:`run`, awaited on the encoder's queue without holding a thread."""
        text = self._check(text)
        vector = await self.encoder.aencode([text], self.query_instruction, priority="interactive")
        return {"embedding": vector[0].tolist(), "meta": {"model": self.model_name}}

    @staticmethod
    def _check(text: Any) -> str:
        if not isinstance(text, str):
            raise TypeError(
                f"InstructorTextEmbedder takes one string, got {short(text)}; to embed Documents, use "
                "InstructorDocumentEmbedder"
            )
        return check_text(text, "text")


@component
class InstructorDocumentEmbedder(_InstructorComponent):
    """Embeds Haystack ``Document`` objects with the document instruction, for a document store.

    Each document's text is its chosen metadata fields and its content, joined by ``embedding_separator``,
    as Haystack's own document embedders build it. The documents come back with ``embedding`` set (new
    objects; the inputs are not changed).

    Args:
        model_name: Hub name or local folder of the checkpoint (old name: ``model``).
        meta_fields_to_embed: Metadata fields embedded with the content (e.g. ``["title"]``).
        embedding_separator: What joins them.
        **settings: Those of :class:`InstructorTextEmbedder`: ``document_instruction`` (default from
            ``task``, else generic; old name: ``instruction``), ``query_instruction``, ``task``,
            ``batch_size``, ``show_progress_bar`` (old name: ``progress_bar``), ``encoder`` and the
            shared encoder's settings.

    Examples:
        >>> from haystack import Document
        >>> from instructor_integrations.haystack import InstructorDocumentEmbedder
        >>> embedder = InstructorDocumentEmbedder("tests/fixtures/tiny-instructor", device="cpu", task="SciFact")
        >>> result = embedder.run([Document(content="Statins and cognitive decline: a cohort study.")])
        >>> len(result["documents"][0].embedding)
        24
    """

    _old_instruction_side = "document_instruction"

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        *,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        **settings: Any,
    ) -> None:
        # The @component decorator rebuilds the class, so the zero-argument super() cannot find it.
        _InstructorComponent.__init__(self, model_name, **settings)
        fields = list(meta_fields_to_embed or [])
        if not all(isinstance(field, str) for field in fields):
            raise TypeError(f"meta_fields_to_embed must be a list of field names (str), got {short(fields)}")
        if not isinstance(embedding_separator, str):
            raise TypeError(f"embedding_separator must be a str, got {short(embedding_separator)}")
        self.meta_fields_to_embed, self.embedding_separator = fields, embedding_separator

    def _extra_init_parameters(self) -> dict[str, Any]:
        return {"meta_fields_to_embed": self.meta_fields_to_embed, "embedding_separator": self.embedding_separator}

    def _texts(self, documents: Any) -> list[str]:
        if not isinstance(documents, list) or not all(isinstance(d, Document) for d in documents):
            raise TypeError(
                f"InstructorDocumentEmbedder takes a list of Documents, got {short(documents)}; to embed a string, "
                "use InstructorTextEmbedder"
            )
        texts = []
        for document in documents:
            meta = [str(document.meta[key]) for key in self.meta_fields_to_embed if document.meta.get(key) is not None]
            texts.append(self.embedding_separator.join([*meta, document.content or ""]))
        return texts

    @component.output_types(documents=_DOCUMENTS, meta=dict[str, Any])  # type: ignore[untyped-decorator]
    def run(self, documents: list[Any]) -> dict[str, Any]:
        """Embed ``documents`` with the document instruction; returns them with ``embedding`` set.

        Raises:
            TypeError: ``documents`` is not a list of ``Document`` (use :class:`InstructorTextEmbedder` for a string).
        """
        texts = self._texts(documents)
        vectors = self.encoder.encode(
            texts,
            self.document_instruction,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            priority="bulk",
        )
        return self._output(documents, vectors)

    @component.output_types(documents=_DOCUMENTS, meta=dict[str, Any])  # type: ignore[untyped-decorator]
    async def run_async(self, documents: list[Any]) -> dict[str, Any]:
        """:meth:`run`, awaited on the encoder's queue without holding a thread."""
        texts = self._texts(documents)
        vectors = await self.encoder.aencode(
            texts, self.document_instruction, batch_size=self.batch_size, priority="bulk"
        )
        return self._output(documents, vectors)

    def _output(self, documents: list[Any], vectors: Any) -> dict[str, Any]:
        embedded = [replace(d, embedding=v.tolist()) for d, v in zip(documents, vectors, strict=True)]
        return {"documents": embedded, "meta": {"model": self.model_name}}
