"""Chroma adapter: :class:`InstructorEmbeddingFunction`, a chromadb 1.x ``EmbeddingFunction``.

Requires the ``[chroma]`` extra. Importing this module registers the function with Chroma under
:meth:`InstructorEmbeddingFunction.name`, so a persisted collection reopens with
``client.get_collection(name)`` and no function passed.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._adapter import encoder_settings, resolve_encoder, resolve_instructions
from ._checkpoint import detect_checkpoint
from ._optional import require
from ._protocol import Encoder
from ._validation import Priority, check_bool, check_positive_int, check_texts, short
from .encoder import DEFAULT_MODEL
from .settings import EncoderSettings

_types = require("chromadb.api.types", "chroma")
_registry = require("chromadb.utils.embedding_functions", "chroma")

__all__ = ["CONFIG_FIELDS", "InstructorEmbeddingFunction"]

#: Keys of the saved config and the types each accepts. The device is deliberately not saved:
#: a collection made on a GPU machine reopens on a CPU one.
CONFIG_FIELDS: dict[str, tuple[type, ...]] = {
    "model_name": (str,),
    "document_instruction": (str,),
    "query_instruction": (str,),
    "dtype": (str,),
    "precision": (str, type(None)),
    "max_seq_length": (int, type(None)),
    "instructor_pooling": (bool, type(None)),
}
_REFUSED = {"trust_remote_code": "custom model code is never run from a collection's saved config"}


def _with_pooling(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with ``instructor_pooling`` decided (configs saved before it was always stored hold ``None``)."""
    if config.get("instructor_pooling") is None and isinstance(config.get("model_name"), str):
        return {**config, "instructor_pooling": detect_checkpoint(config["model_name"]).instructor}
    return config


@_registry.register_embedding_function
class InstructorEmbeddingFunction(_types.EmbeddingFunction):  # type: ignore[misc, name-defined]
    """INSTRUCTOR embeddings for Chroma: documents and queries each get their own instruction.

    ``collection.add(documents=...)`` embeds with ``document_instruction``;
    ``collection.query(query_texts=...)`` embeds with ``query_instruction`` (Chroma calls
    :meth:`embed_query` for query texts).

    Args:
        model_name: Hub name or local folder of the checkpoint.
        document_instruction: Instruction for documents (default from ``task``, else generic).
        query_instruction: Instruction for queries (default from ``task``, else generic).
        task: Preset name (e.g. ``"SciFact"``) that sets both instructions.
        device: ``"cpu"``, ``"cuda"``, ... or ``None`` (auto). Not saved in the collection config.
        dtype: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        precision: ``"exact"``, ``"fast"``, ``"int8"`` (CPU, extra ``[int8]``) or ``None``.
        max_seq_length: Token limit per input (``None``: the model's default).
        token_budget: Padded tokens per forward pass, at most (``"auto"``: per device; ``None``: no cap). Not
            saved in the collection config, nor are ``cache_folder``, ``local_files_only`` and
            ``trust_remote_code`` (choices of this machine and process).
        cache_folder: Where hub models are cached (default: the Hugging Face cache).
        local_files_only: Never touch the network (``None``: follows ``HF_HUB_OFFLINE``).
        trust_remote_code: Allow custom model code from the hub (never taken from a saved config).
        instructor_pooling: Force INSTRUCTOR pooling on or off (``None``: detect).
        batch_size: Rows per forward pass.
        show_progress_bar: Show a progress bar while embedding documents. Not saved in the collection config.
        compile: Compile the model's forward (see
            :class:`~instructor_integrations.encoder.InstructorEncoder`): about 30 s once, then faster
            for large ingests. Not saved in the collection config (a choice for this process).
        num_workers: Worker processes (CPU or CUDA) for calls that make more than one batch, each with its own
            copy of the model (see :class:`~instructor_integrations.encoder.InstructorEncoder`).
            Not saved in the collection config.
        encoder: An existing encoder to share: an ``InstructorEncoder``, or a ``RemoteEncoder`` for a server.
        lazy: Load the model on first use instead of now (e.g. on a driver that only creates the
            collection while workers embed).
        instruction: chromadb's old argument, one instruction for every text: sets both instructions
            (deprecated; give ``document_instruction`` and ``query_instruction``).

    Examples:
        >>> import chromadb
        >>> from instructor_integrations.chroma import InstructorEmbeddingFunction
        >>> ef = InstructorEmbeddingFunction(model_name="tests/fixtures/tiny-instructor", device="cpu")
        >>> client = chromadb.EphemeralClient()
        >>> collection = client.create_collection("doctest-docs", embedding_function=ef)
        >>> collection.add(ids=["1"], documents=["INSTRUCTOR embeds text with instructions."])
        >>> collection.query(query_texts=["What does INSTRUCTOR do?"], n_results=1)["ids"]
        [['1']]
    """

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
        lazy: bool = False,
        instruction: str | None = None,
    ) -> None:
        if instruction is not None:  # chromadb's own InstructorEmbeddingFunction: one instruction for every text
            if document_instruction is not None or query_instruction is not None or task is not None:
                raise ValueError("give instruction= (chromadb's old argument) or the instructions/task, not both")
            warnings.warn(
                "instruction= is deprecated: it sets document_instruction and query_instruction (both, as chromadb's "
                "old function used it); give them apart for retrieval",
                DeprecationWarning,
                stacklevel=2,
            )
            document_instruction = query_instruction = instruction
        self.model_name = model_name
        self.query_instruction, self.document_instruction = resolve_instructions(
            task, query_instruction, document_instruction, model_name
        )
        self.device, self.dtype, self.precision = device, dtype, precision
        self.max_seq_length, self.token_budget, self.cache_folder = max_seq_length, token_budget, cache_folder
        self.local_files_only, self.trust_remote_code = local_files_only, trust_remote_code
        self.instructor_pooling, self.compile, self.num_workers = instructor_pooling, compile, num_workers
        # Checked here, whether or not an encoder of its own is given.
        self._settings = encoder_settings(model_name, vars(self))
        check_positive_int(batch_size, "batch_size", allow_none=True)
        self.batch_size = batch_size
        check_bool(show_progress_bar, "show_progress_bar")
        self.show_progress_bar = show_progress_bar
        self._encoder: Encoder | None = None
        if encoder is not None or not lazy:
            self._encoder = resolve_encoder(self._settings, encoder)

    @property
    def encoder_settings(self) -> EncoderSettings:
        """The settings of the shared encoder this function uses (unless it was given an ``encoder``)."""
        return self._settings

    @property
    def encoder(self) -> Encoder:
        """The shared encoder behind this function (loaded now if it was created lazily)."""
        if self._encoder is None:
            self._encoder = resolve_encoder(self._settings, None)
        return self._encoder

    def _embed(self, input: Any, instruction: str, priority: Priority) -> list[np.ndarray]:
        texts = check_texts(input, "input")
        vectors = self.encoder.encode(
            texts,
            instruction,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar and priority == "bulk",
            priority=priority,
        )
        return list(vectors)

    def __call__(self, input: Any) -> list[np.ndarray]:
        """Embed documents with ``document_instruction`` (bulk work on the encoder's queue)."""
        return self._embed(input, self.document_instruction, "bulk")

    def embed_query(self, input: Any) -> list[np.ndarray]:
        """Embed query texts with ``query_instruction`` (ahead of queued documents)."""
        return self._embed(input, self.query_instruction, "interactive")

    @staticmethod
    def name() -> str:
        """The name this function is registered and saved under."""
        return "instructor_integrations"

    def default_space(self) -> str:
        """INSTRUCTOR vectors are unit-normalised and compared by cosine."""
        return "cosine"

    def supported_spaces(self) -> list[str]:
        """Spaces that make sense for these vectors."""
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        """The config Chroma saves with a collection (no device, no weights)."""
        return {
            "model_name": self.model_name,
            "document_instruction": self.document_instruction,
            "query_instruction": self.query_instruction,
            "dtype": self.dtype,
            "precision": self.precision,
            "max_seq_length": self.max_seq_length,
            # Saved as decided (never None): a collection reopened from another path pools as it was made.
            "instructor_pooling": self._pooling(),
        }

    def _pooling(self) -> bool:
        """Whether these vectors leave the instruction out of the pooling: as set, as the encoder runs, or detected."""
        if self.instructor_pooling is not None:
            return bool(self.instructor_pooling)
        running = getattr(self._encoder, "instructor_pooling", None)
        return running if isinstance(running, bool) else detect_checkpoint(self.model_name).instructor

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Refuse unknown keys, wrong types and ``trust_remote_code``.

        Raises:
            ValueError: The config is not acceptable; the message names the key and value.
        """
        if not isinstance(config, dict):
            raise ValueError(f"config must be a dict, got {type(config).__name__}: {short(config)}")
        for key, value in config.items():
            if key in _REFUSED:
                raise ValueError(f"config key {key!r} is refused: {_REFUSED[key]}")
            if key not in CONFIG_FIELDS:
                raise ValueError(f"unknown config key {key!r}; allowed: {', '.join(CONFIG_FIELDS)}")
            allowed = CONFIG_FIELDS[key]
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
                raise ValueError(f"config key {key!r} must be {names}, got {short(value)}")
        if "model_name" not in config:
            raise ValueError("config must contain 'model_name'")

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> InstructorEmbeddingFunction:
        """Rebuild from a saved config (the device is chosen afresh on this machine)."""
        InstructorEmbeddingFunction.validate_config(config)
        return InstructorEmbeddingFunction(**config)

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """Refuse changes that would make stored vectors incomparable with new ones."""
        self.validate_config({**old_config, **new_config})
        old_config, new_config = _with_pooling(old_config), _with_pooling({**old_config, **new_config})
        for key in ("document_instruction", "query_instruction", "instructor_pooling"):
            if key in new_config and new_config[key] != old_config.get(key):
                raise ValueError(
                    f"cannot change {key!r} of an existing collection ({short(old_config.get(key))} -> "
                    f"{short(new_config[key])}): its stored vectors were made with the old value"
                )
