"""The encoder's settings, declared once.

:class:`EncoderSettings` is the one list of what an
:class:`~instructor_integrations.encoder.InstructorEncoder` can be told: the constructor validates its
arguments through it, :func:`~instructor_integrations.encoder.get_encoder` keys its process-wide cache
on it, worker processes are built from it, and every adapter builds one from its fields (and shows it
as ``encoder_settings``). This module imports no torch.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from ._validation import check_bool, check_positive_int, short

__all__ = ["DEFAULT_MODEL", "DTYPE_NAMES", "PRECISIONS", "EncoderSettings"]

DEFAULT_MODEL = "hkunlp/instructor-large"
#: The weight dtypes ``dtype`` accepts besides ``"auto"``.
DTYPE_NAMES = ("float32", "bfloat16", "float16")
#: The values ``precision`` accepts besides ``None``.
PRECISIONS = ("exact", "fast")


@dataclass(frozen=True)
class EncoderSettings:
    """Everything an :class:`~instructor_integrations.encoder.InstructorEncoder` is built from.

    Frozen and hashable: two equal settings objects name the same shared encoder. Each field has the
    meaning of the constructor argument of the same name (see ``InstructorEncoder``); the values are
    checked when the object is made, with an error naming the field and the values it accepts.
    ``InstructorEncoder.settings`` gives the settings an encoder runs with, its automatic choices
    (device, pooling, token limit, token budget) resolved.

    Examples:
        >>> from instructor_integrations import EncoderSettings, InstructorEncoder
        >>> settings = EncoderSettings("tests/fixtures/tiny-instructor", device="cpu", precision="exact")
        >>> encoder = InstructorEncoder.from_settings(settings)
        >>> encoder.settings.instructor_pooling, encoder.settings.max_seq_length
        (True, 512)
        >>> settings.replace(batch_size=64).batch_size
        64
    """

    model_name_or_path: str = DEFAULT_MODEL
    """A hub name or a local folder holding a sentence-transformers checkpoint."""
    device: str | None = None
    """``None`` (cuda, then mps, then cpu), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``."""
    dtype: str = "auto"
    """Weight dtype: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``."""
    precision: str | None = None
    """``"exact"`` (float32, reference parity), ``"fast"`` (bfloat16 where fast) or ``None`` (dtype decides)."""
    max_seq_length: int | None = None
    """Token limit per input, instruction included; ``None``: 512 for INSTRUCTOR pooling, else the model's."""
    batch_size: int = 32
    """Rows per forward pass, at most (the default of calls that give none)."""
    token_budget: int | str | None = "auto"
    """Padded tokens per forward pass, at most: a positive int, ``"auto"`` (per device) or ``None`` (no cap)."""
    cache_folder: str | None = None
    """Where hub models are cached (default: the Hugging Face cache)."""
    local_files_only: bool | None = None
    """Never touch the network; ``None`` follows ``HF_HUB_OFFLINE``."""
    trust_remote_code: bool = False
    """Allow custom model code from the hub."""
    instructor_pooling: bool | None = None
    """Leave the instruction's tokens out of mean pooling; ``None``: on for INSTRUCTOR checkpoints only."""
    show_progress_bar: bool | None = None
    """Default for ``encode``; ``None`` shows a bar only on a terminal."""
    compile: bool = False
    """Compile the transformer's forward with ``torch.compile``."""
    num_workers: int = 1
    """Worker processes (CPU or CUDA), each with its own copy of the model, for calls of several batches."""

    def __post_init__(self) -> None:
        name = self.model_name_or_path
        if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
            raise TypeError(f"model_name_or_path must be a non-empty str or path, got {short(name)}")
        object.__setattr__(self, "model_name_or_path", os.fspath(name))
        if self.device is not None and not isinstance(self.device, str):
            raise TypeError(f"device must be None or a str such as 'cpu' or 'cuda:0', got {short(self.device)}")
        if self.dtype != "auto" and self.dtype not in DTYPE_NAMES:
            allowed = ", ".join(map(repr, DTYPE_NAMES))
            raise ValueError(f"dtype must be one of 'auto', {allowed}, got {short(self.dtype)}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"precision must be None, 'exact' or 'fast', got {short(self.precision)}")
        if self.precision is not None and self.dtype != "auto":
            raise ValueError(
                f"pass either dtype={self.dtype!r} or precision={self.precision!r}, not both: precision picks the dtype"
            )
        check_positive_int(self.max_seq_length, "max_seq_length", allow_none=True)
        check_positive_int(self.batch_size, "batch_size")
        if self.token_budget != "auto":
            check_positive_int(self.token_budget, "token_budget (or 'auto')", allow_none=True)
        if self.cache_folder is not None:
            if not isinstance(self.cache_folder, (str, os.PathLike)):
                raise TypeError(f"cache_folder must be None or a path, got {short(self.cache_folder)}")
            object.__setattr__(self, "cache_folder", os.fspath(self.cache_folder))
        check_bool(self.local_files_only, "local_files_only", allow_none=True)
        check_bool(self.trust_remote_code, "trust_remote_code")
        check_bool(self.instructor_pooling, "instructor_pooling", allow_none=True)
        check_bool(self.show_progress_bar, "show_progress_bar", allow_none=True)
        check_bool(self.compile, "compile")
        check_positive_int(self.num_workers, "num_workers")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The field names, in declaration order.

        Examples:
            >>> EncoderSettings.names()[:3]
            ('model_name_or_path', 'device', 'dtype')
        """
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> EncoderSettings:
        """Settings from keyword arguments, with an error that lists the known names for an unknown one.

        Examples:
            >>> EncoderSettings.from_kwargs(model_name_or_path="m", precision="fast").precision
            'fast'
        """
        unknown = sorted(set(kwargs) - set(cls.names()))
        if unknown:
            raise TypeError(
                f"unknown encoder setting(s) {', '.join(map(repr, unknown))}; "
                f"the settings are: {', '.join(cls.names())}"
            )
        return cls(**kwargs)

    def replace(self, **changes: Any) -> EncoderSettings:
        """A copy with ``changes`` applied (and checked).

        Examples:
            >>> EncoderSettings("m").replace(device="cpu").device
            'cpu'
        """
        return dataclasses.replace(self, **changes) if changes else self

    def as_kwargs(self) -> dict[str, Any]:
        """The settings as keyword arguments of ``InstructorEncoder``.

        Examples:
            >>> EncoderSettings("m").as_kwargs()["model_name_or_path"]
            'm'
        """
        return {name: getattr(self, name) for name in self.names()}
