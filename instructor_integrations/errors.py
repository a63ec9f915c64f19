"""Exceptions raised by instructor-integrations."""

from __future__ import annotations

__all__ = ["EncoderClosedError", "ModelLoadError", "NonFiniteEmbeddingError"]


class ModelLoadError(OSError):
    """A model could not be loaded.

    The message names the model, where it was looked for, and how to point at a local copy. No other
    model is ever tried in its place.

    Examples:
        >>> try:
        ...     raise ModelLoadError("could not load 'x'")
        ... except OSError as exc:
        ...     str(exc)
        "could not load 'x'"
    """


class NonFiniteEmbeddingError(RuntimeError):
    """The model produced NaN or infinite values (typically a T5 encoder run in float16).

    Examples:
        >>> issubclass(NonFiniteEmbeddingError, RuntimeError)
        True
    """


class EncoderClosedError(RuntimeError):
    """The encoder was closed while this call's rows were still queued; none of them were embedded.

    Examples:
        >>> issubclass(EncoderClosedError, RuntimeError)
        True
    """
