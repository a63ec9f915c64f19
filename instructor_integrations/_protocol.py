"""What the adapters and store helpers need of an encoder: :class:`Encoder`.

:class:`~instructor_integrations.encoder.InstructorEncoder` (the model in this process) and
:class:`~instructor_integrations.client.RemoteEncoder` (a model behind ``instructor-embed serve``) both
satisfy it, so every adapter's ``encoder=`` takes either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ._validation import Priority

__all__ = ["Encoder"]


@runtime_checkable
class Encoder(Protocol):
    """An INSTRUCTOR encoder: rows of (instruction, text) in, float32 vectors out, in order.

    ``instruction=None`` (or an empty instruction in a pair) means plain mean pooling; a ``str``
    applies to every text; a list gives one per text. ``priority`` is ``"auto"``, ``"interactive"`` or
    ``"bulk"`` (see :meth:`~instructor_integrations.encoder.InstructorEncoder.encode`).

    Examples:
        >>> from instructor_integrations import Encoder, InstructorEncoder
        >>> isinstance(InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu"), Encoder)
        True
    """

    @property
    def model_name(self) -> str:
        """The model's name (a hub name or folder, or the name a server gives it)."""
        ...

    @property
    def embedding_dimension(self) -> int:
        """Length of every vector."""
        ...

    def encode(
        self,
        texts: Sequence[str],
        instruction: str | Sequence[str | None] | None = None,
        *,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        priority: Priority = "auto",
    ) -> np.ndarray:
        """Embed ``texts``, each with its instruction: ``(len(texts), embedding_dimension)`` float32."""
        ...

    def encode_pairs(
        self,
        pairs: Sequence[Sequence[str]],
        *,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        priority: Priority = "auto",
    ) -> np.ndarray:
        """Embed ``[[instruction, text], ...]``."""
        ...

    async def aencode(
        self,
        texts: Sequence[str],
        instruction: str | Sequence[str | None] | None = None,
        *,
        batch_size: int | None = None,
        priority: Priority = "auto",
    ) -> np.ndarray:
        """:meth:`encode`, awaitable."""
        ...

    async def aencode_pairs(
        self, pairs: Sequence[Sequence[str]], *, batch_size: int | None = None, priority: Priority = "auto"
    ) -> np.ndarray:
        """:meth:`encode_pairs`, awaitable."""
        ...

    def close(self) -> None:
        """Release what the encoder holds (queued work, processes, connections)."""
        ...
