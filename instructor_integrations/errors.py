"""Exceptions raised by instructor-integrations."""

from __future__ import annotations

__all__ = [
    "EncoderClosedError",
    "ModelLoadError",
    "NonFiniteEmbeddingError",
    "RemoteEncoderError",
    "RemoteRequestError",
    "ServerUnavailableError",
    "UnknownPresetError",
]


class ModelLoadError(OSError):
    """A model could not be loaded.

    The message names the model, where it was looked for, and how to point at a local copy. No other
    model is ever tried in its place. ``model``, ``where`` and ``cause`` hold those parts (``None`` when
    not known), so a program such as the CLI can say it in its own words.

    Examples:
        >>> try:
        ...     raise ModelLoadError("could not load 'x'", model="x", where="the local folder '/x'")
        ... except OSError as exc:
        ...     str(exc), exc.model, exc.where
        ("could not load 'x'", 'x', "the local folder '/x'")
    """

    def __init__(
        self, message: str, *, model: str | None = None, where: str | None = None, cause: str | None = None
    ) -> None:
        super().__init__(message)
        self.model, self.where, self.cause = model, where, cause


class UnknownPresetError(ValueError):
    """A task or dataset name that has no instruction preset.

    ``dataset`` is the name given, ``model`` the checkpoint whose instructions were searched, and
    ``close`` the nearest names (``"retrieval"``, the generic pair, among them), so a program such as
    the CLI can say it in its own words.

    Examples:
        >>> error = UnknownPresetError("no preset", dataset="scifcat", model="x", close=["SciFact"])
        >>> isinstance(error, ValueError), error.close
        (True, ['SciFact'])
    """

    def __init__(self, message: str, *, dataset: str, model: str, close: list[str]) -> None:
        super().__init__(message)
        self.dataset, self.model, self.close = dataset, model, close


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


class RemoteEncoderError(RuntimeError):
    """An embedding server answered with an error; ``status`` and ``code`` are the server's.

    Examples:
        >>> error = RemoteEncoderError("boom", status=500, code="internal_error")
        >>> error.status, error.code
        (500, 'internal_error')
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RemoteRequestError(RemoteEncoderError, ValueError):
    """The server refused the request itself (a bad input, a limit, the API key): retrying cannot help.

    A ``ValueError``, as the same input is for an in-process encoder.

    Examples:
        >>> issubclass(RemoteRequestError, ValueError)
        True
    """


class ServerUnavailableError(RemoteEncoderError, ConnectionError):
    """The server could not be reached, or stayed overloaded, through every retry.

    Examples:
        >>> issubclass(ServerUnavailableError, ConnectionError)
        True
    """
