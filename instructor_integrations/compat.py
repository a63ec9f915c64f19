"""``INSTRUCTOR``: the inference API of ``InstructorEmbedding.INSTRUCTOR``, on the shared encoder core.

Code written against the ``InstructorEmbedding`` package changes one import::

    from InstructorEmbedding import INSTRUCTOR        # before: fails on sentence-transformers >= 2.3
    from instructor_integrations import INSTRUCTOR    # after

``INSTRUCTOR(...).encode`` takes what the original takes (a list of ``[instruction, text]`` pairs, a list
of plain strings, or one string) and returns the same vectors (``docs/migration.md``). It holds no
embedding logic of its own: every call goes to :class:`~instructor_integrations.encoder.InstructorEncoder`.
Training (``fit``) and token embeddings are not provided.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, overload

import numpy as np
import torch

from ._validation import check_bool, check_pairs, check_texts
from .encoder import DEFAULT_MODEL, InstructorEncoder, get_encoder, is_instructor_checkpoint

__all__ = ["INSTRUCTOR"]

_OUTPUT_VALUES = ("sentence_embedding",)


class INSTRUCTOR:
    """Drop-in for ``InstructorEmbedding.INSTRUCTOR`` (inference), backed by :class:`InstructorEncoder`.

    Like the original class, it leaves the instruction tokens out of the pooling for whatever
    checkpoint it loads (``instructor_pooling=True``) and truncates at 512 tokens; any other
    :class:`InstructorEncoder` setting (``precision``, ``num_workers``, ...) can be passed as a keyword.
    Instances with the same settings share one model with the adapters (:func:`get_encoder`).

    Args:
        model_name_or_path: A hub name (``hkunlp/instructor-large``) or a local folder.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; ``None`` picks the best available.
        cache_folder: Where hub models are cached (default: the Hugging Face cache).
        **settings: Further :class:`InstructorEncoder` keyword arguments.

    Everything after the model is keyword-only: the original's second positional argument is
    sentence-transformers' ``modules``, which has no counterpart here.

    Raises:
        ModelLoadError: The model cannot be loaded.

    Examples:
        >>> from instructor_integrations import INSTRUCTOR
        >>> model = INSTRUCTOR("tests/fixtures/tiny-instructor", device="cpu")
        >>> model.encode([["Represent the Science title: ", "3D ActionSLAM: wearable person tracking"]]).shape
        (1, 24)
        >>> model.encode("a plain sentence").shape
        (24,)
    """

    def __init__(
        self,
        model_name_or_path: str = DEFAULT_MODEL,
        *,
        device: str | torch.device | None = None,
        cache_folder: str | None = None,
        **settings: Any,
    ) -> None:
        if settings.get("instructor_pooling") is None and not is_instructor_checkpoint(os.fspath(model_name_or_path)):
            # The original class leaves instructions out of the pooling for any checkpoint. Where the name
            # already says INSTRUCTOR the default does the same, and the model is shared with the adapters.
            settings["instructor_pooling"] = True
        self.encoder: InstructorEncoder = get_encoder(
            model_name_or_path, device=device, cache_folder=cache_folder, **settings
        )

    @property
    def device(self) -> torch.device:
        """The device the model runs on."""
        return self.encoder.device

    @property
    def max_seq_length(self) -> int:
        """Token limit per input, instruction included."""
        return self.encoder.max_seq_length

    def get_sentence_embedding_dimension(self) -> int:
        """Length of the vectors :meth:`encode` returns."""
        return self.encoder.embedding_dimension

    def _check_device(self, device: str | torch.device) -> None:
        """The original moves the model to ``encode``'s device; here it must be the model's own."""
        try:
            requested = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device={device!r} is not a torch device: {exc}") from None
        own = self.encoder.device
        same_index = requested.index is None or own.index is None or requested.index == own.index
        if requested.type != own.type or not same_index:
            raise ValueError(
                f"device={str(device)!r} differs from the model's device {str(own)!r}; "
                f"load the model there instead: INSTRUCTOR(..., device={str(device)!r})"
            )

    def __repr__(self) -> str:
        return f"INSTRUCTOR({self.encoder!r})"

    @overload
    def encode(
        self,
        sentences: str | Sequence[str] | Sequence[Sequence[str]],
        batch_size: int = ...,
        show_progress_bar: bool | None = ...,
        output_value: str = ...,
        convert_to_numpy: Literal[True] = ...,
        convert_to_tensor: Literal[False] = ...,
        device: str | torch.device | None = ...,
        normalize_embeddings: bool = ...,
    ) -> np.ndarray: ...

    @overload
    def encode(
        self,
        sentences: str | Sequence[str] | Sequence[Sequence[str]],
        batch_size: int = ...,
        show_progress_bar: bool | None = ...,
        output_value: str = ...,
        convert_to_numpy: bool = ...,
        *,
        convert_to_tensor: Literal[True],
        device: str | torch.device | None = ...,
        normalize_embeddings: bool = ...,
    ) -> torch.Tensor: ...

    @overload
    def encode(
        self,
        sentences: str | Sequence[str] | Sequence[Sequence[str]],
        batch_size: int = ...,
        show_progress_bar: bool | None = ...,
        output_value: str = ...,
        *,
        convert_to_numpy: Literal[False],
        convert_to_tensor: Literal[False] = ...,
        device: str | torch.device | None = ...,
        normalize_embeddings: bool = ...,
    ) -> list[torch.Tensor] | torch.Tensor: ...

    def encode(
        self,
        sentences: str | Sequence[str] | Sequence[Sequence[str]],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: str = "sentence_embedding",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | torch.device | None = None,
        normalize_embeddings: bool = False,
    ) -> np.ndarray | torch.Tensor | list[torch.Tensor]:
        """Embed ``[[instruction, text], ...]``, ``[text, ...]`` or one text, as the original does.

        Whether the input is pairs or plain texts is decided by its first item, as in the original.
        A plain text is embedded with plain mean pooling; a pair's instruction tokens are left out of
        the pooling (an empty instruction means plain pooling).

        Args:
            sentences: Pairs, plain strings, or one string (then one vector comes back).
            batch_size: Rows per forward pass, at most.
            show_progress_bar: Show a tqdm bar; ``None``: on a terminal only.
            output_value: Only ``"sentence_embedding"``.
            convert_to_numpy: Return a float32 array (the default); ``False``: a list of tensors.
            convert_to_tensor: Return one stacked tensor on the model's device.
            device: Must be ``None`` or the model's device (choose the device when loading).
            normalize_embeddings: Scale every vector to unit length (INSTRUCTOR checkpoints already
                end in a normalisation layer).

        Returns:
            ``(n, dimension)`` float32 array, stacked tensor or list of ``n`` tensors; for one string,
            one vector.

        Raises:
            TypeError: Input that is neither pairs nor strings, or mixes the two.
            ValueError: An unsupported ``output_value``, or a ``device`` other than the model's.
        """
        if output_value not in _OUTPUT_VALUES:
            raise ValueError(
                f"output_value={output_value!r} is not supported; allowed: {', '.join(map(repr, _OUTPUT_VALUES))} "
                "(token embeddings: use encoder.model, a SentenceTransformer)"
            )
        check_bool(convert_to_numpy, "convert_to_numpy")
        check_bool(convert_to_tensor, "convert_to_tensor")
        check_bool(normalize_embeddings, "normalize_embeddings")
        if device is not None:
            self._check_device(device)
        one = isinstance(sentences, str)
        items: Any = sentences
        if one:
            items = [sentences]
        elif isinstance(sentences, Iterable) and not isinstance(sentences, (bytes, bytearray, Mapping)):
            items = list(sentences)
        # else: check_texts names the bad value.
        if isinstance(items, list) and items and isinstance(items[0], Sequence) and not isinstance(items[0], str):
            rows = check_pairs(items, "sentences")
            vectors = self.encoder.encode_pairs(rows, batch_size=batch_size, show_progress_bar=show_progress_bar)
        else:
            texts = check_texts(items, "sentences")
            vectors = self.encoder.encode(texts, batch_size=batch_size, show_progress_bar=show_progress_bar)
        if normalize_embeddings:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        if convert_to_tensor:
            tensor = torch.from_numpy(vectors).to(self.encoder.device)
            return tensor[0] if one else tensor
        if not convert_to_numpy:
            tensors = list(torch.from_numpy(vectors).to(self.encoder.device))
            return tensors[0] if one else tensors
        return vectors[0] if one else vectors
