""":class:`RemoteEncoder`: the encoder API, answered by an ``instructor-embed serve`` server.

Requires the ``[serve]`` extra (``httpx``). Give it to any adapter's ``encoder=`` (LangChain, LlamaIndex,
Chroma) or use it directly: the processes of an application then share one model, and its request queue.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ._optional import require
from ._validation import (
    Priority,
    check_instructions,
    check_pairs,
    check_positive_int,
    check_priority,
    check_texts,
    short,
)
from .errors import RemoteEncoderError, RemoteRequestError, ServerUnavailableError

_httpx = require("httpx", "serve")

__all__ = ["RemoteEncoder"]

logger = logging.getLogger(__name__)

#: Statuses worth retrying: the server is overloaded, restarting or behind a proxy that is.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Bytes of a request body besides its inputs and instructions.
_ENVELOPE = 512


class RemoteEncoder:
    """The :class:`~instructor_integrations.encoder.InstructorEncoder` API over HTTP.

    Calls are split into requests within the server's limits (inputs and bytes per request, read from
    ``/v1/models`` on first use), vectors travel as base64 float32 (bit for bit the server's), and
    overloaded or unreachable servers are retried with exponential backoff (honouring ``Retry-After``):
    embedding is idempotent, so a retried request cannot duplicate anything.

    Args:
        base_url: The server, e.g. ``"http://127.0.0.1:8080"`` (a trailing ``/v1`` is accepted).
        api_key: Sent as ``Authorization: Bearer <api_key>`` when the server asks for one.
        timeout: Seconds to wait for one request's answer (connect, send and read).
        max_retries: Retries of a request after a connection error, a timeout, or a 429/502/503/504.
        backoff: Seconds before the first retry; doubled each time (with jitter), at most 30.

    Raises:
        ServerUnavailableError: From a call, when the server cannot be reached, or stays overloaded,
            through every retry.
        RemoteRequestError: From a call, when the server refuses the request (bad input, a limit, the
            key); a ``ValueError``.

    Examples:
        >>> from instructor_integrations import RemoteEncoder
        >>> encoder = RemoteEncoder("http://127.0.0.1:8080", api_key="secret", max_retries=5)
        >>> encoder
        RemoteEncoder('http://127.0.0.1:8080')
        >>> vectors = encoder.encode(["A cat sat on the mat."], "Represent the sentence: ")  # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http:// or https:// URL, got {short(base_url)}")
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        if api_key is not None and (not isinstance(api_key, str) or not api_key):
            raise ValueError("api_key must be a non-empty str or None")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {short(timeout)}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {short(max_retries)}")
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or backoff < 0:
            raise ValueError(f"backoff must be a number of seconds >= 0, got {short(backoff)}")
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._info: dict[str, Any] | None = None
        self._client: Any = None
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RemoteEncoder({self.base_url!r})"

    # ------------------------------------------------------------------ the server's facts
    def _model_info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = self._describe(self._send_sync("GET", "/v1/models", None))
        return self._info

    def _describe(self, answer: Any) -> dict[str, Any]:
        """The model entry of a ``/v1/models`` answer."""
        try:
            return dict(answer["data"][0])
        except (KeyError, IndexError, TypeError):
            raise RemoteEncoderError(f"{self.base_url}/v1/models did not describe a model: {short(answer)}") from None

    @property
    def model_name(self) -> str:
        """The model's name on the server (asks the server on first use)."""
        return str(self._model_info()["id"])

    @property
    def embedding_dimension(self) -> int:
        """Length of every vector (asks the server on first use)."""
        return int(self._model_info()["embedding_dimension"])

    @property
    def max_seq_length(self) -> int | None:
        """The server's token limit per input, instruction included (asks the server on first use)."""
        value = self._model_info().get("max_seq_length")
        return None if value is None else int(value)

    # ------------------------------------------------------------------ public API
    def encode(
        self,
        texts: Sequence[str],
        instruction: str | Sequence[str | None] | None = None,
        *,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        priority: Priority = "auto",
    ) -> np.ndarray:
        """Embed ``texts`` on the server; the same arguments and result as ``InstructorEncoder.encode``.

        ``batch_size`` caps the inputs per request (the server forms its own forward passes).

        Examples:
            >>> RemoteEncoder("http://127.0.0.1:8080").encode(["a"], "Represent the word: ").shape  # doctest: +SKIP
            (1, 768)
        """
        rows = self._rows(texts, instruction, batch_size, priority)
        info = self._model_info()  # the server's limits, before the rows are split
        if not rows:
            return np.empty((0, int(info["embedding_dimension"])), dtype=np.float32)
        from tqdm.auto import tqdm

        show = bool(show_progress_bar) if show_progress_bar is not None else False
        parts = []
        with tqdm(total=len(rows), disable=not show, desc="Embedding", unit="text", leave=False) as bar:
            for chunk in self._chunks(rows, batch_size):
                answer = self._send_sync("POST", "/v1/embeddings", self._body(chunk, priority))
                parts.append(self._vectors(answer, chunk))
                bar.update(len(chunk))
        return np.concatenate(parts)

    def encode_pairs(
        self,
        pairs: Sequence[Sequence[str]],
        *,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        priority: Priority = "auto",
    ) -> np.ndarray:
        """Embed ``[[instruction, text], ...]`` on the server (an empty instruction: plain mean pooling)."""
        checked = check_pairs(pairs)
        return self.encode(
            [text for _, text in checked],
            [instruction or None for instruction, _ in checked],
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            priority=priority,
        )

    async def aencode(
        self,
        texts: Sequence[str],
        instruction: str | Sequence[str | None] | None = None,
        *,
        batch_size: int | None = None,
        priority: Priority = "auto",
    ) -> np.ndarray:
        """:meth:`encode`, awaitable: the requests of one call go out concurrently."""
        rows = self._rows(texts, instruction, batch_size, priority)
        if self._info is None:
            self._info = self._describe(await self._send_async("GET", "/v1/models", None))
        if not rows:
            return np.empty((0, int(self._info["embedding_dimension"])), dtype=np.float32)
        chunks = list(self._chunks(rows, batch_size))
        answers = await asyncio.gather(
            *(self._send_async("POST", "/v1/embeddings", self._body(chunk, priority)) for chunk in chunks)
        )
        return np.concatenate([self._vectors(answer, chunk) for answer, chunk in zip(answers, chunks, strict=True)])

    async def aencode_pairs(
        self, pairs: Sequence[Sequence[str]], *, batch_size: int | None = None, priority: Priority = "auto"
    ) -> np.ndarray:
        """:meth:`encode_pairs`, awaitable."""
        checked = check_pairs(pairs)
        return await self.aencode(
            [text for _, text in checked],
            [instruction or None for instruction, _ in checked],
            batch_size=batch_size,
            priority=priority,
        )

    def close(self) -> None:
        """Close the HTTP connections (a later call opens new ones)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
        self._async_clients = weakref.WeakKeyDictionary()

    def __enter__(self) -> RemoteEncoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests
    @staticmethod
    def _rows(
        texts: Sequence[str], instruction: Any, batch_size: int | None, priority: Priority
    ) -> list[tuple[str, str | None]]:
        items = check_texts(texts)
        instructions = check_instructions(instruction, len(items))
        check_positive_int(batch_size, "batch_size", allow_none=True)
        check_priority(priority)
        return list(zip(items, instructions, strict=True))

    def _chunks(
        self, rows: list[tuple[str, str | None]], batch_size: int | None
    ) -> Iterator[list[tuple[str, str | None]]]:
        """Requests within the server's limits: inputs (and ``batch_size``) and bytes."""
        info = self._info or {}
        max_inputs = int(info.get("max_inputs_per_request") or 2048)
        if batch_size is not None:
            max_inputs = min(max_inputs, batch_size)
        max_bytes = int(info.get("max_request_bytes") or 16 * 1024 * 1024) - _ENVELOPE
        chunk: list[tuple[str, str | None]] = []
        size = 0
        for index, row in enumerate(rows):
            cost = len(json.dumps(row[0])) + len(json.dumps(row[1])) + 2
            if cost > max_bytes:
                raise ValueError(
                    f"texts[{index}] is {cost} bytes as JSON, over the server's limit of {max_bytes + _ENVELOPE} bytes "
                    "per request; split it into chunks"
                )
            if chunk and (len(chunk) >= max_inputs or size + cost > max_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append(row)
            size += cost
        if chunk:
            yield chunk

    def _body(self, chunk: list[tuple[str, str | None]], priority: Priority) -> dict[str, Any]:
        instructions = [instruction for _, instruction in chunk]
        body: dict[str, Any] = {
            "input": [text for text, _ in chunk],
            # Always sent: a missing instruction would mean the server's default task, not plain pooling.
            "instruction": instructions[0] if len(set(instructions)) == 1 else instructions,
            "encoding_format": "base64",
            "priority": priority,
        }
        if self._info is not None:
            body["model"] = self._info["id"]
        return body

    def _vectors(self, answer: Any, chunk: list[tuple[str, str | None]]) -> np.ndarray:
        try:
            data = sorted(answer["data"], key=lambda item: item["index"])
            vectors = np.stack([np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in data])
        except (KeyError, TypeError, ValueError) as exc:
            raise RemoteEncoderError(f"the server's answer is not an embeddings list: {exc}") from None
        if len(vectors) != len(chunk):
            raise RemoteEncoderError(f"the server answered {len(vectors)} vectors for {len(chunk)} inputs")
        return vectors.astype(np.float32, copy=False)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(30.0, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return float(min(30.0, self.backoff * 2**attempt) * (0.5 + random.random() / 2))

    def _answer(self, response: Any) -> Any:
        """The body of a successful response; a :class:`RemoteEncoderError` for the others."""
        if response.status_code == 200:
            return response.json()
        try:
            error = response.json()["error"]
            message, code = str(error.get("message")), error.get("code")
        except (ValueError, KeyError, TypeError, AttributeError):
            message, code = response.text[:200], None
        text = f"{self.base_url} answered {response.status_code}: {message}"
        if 400 <= response.status_code < 500:
            raise RemoteRequestError(text, status=response.status_code, code=code)
        raise RemoteEncoderError(text, status=response.status_code, code=code)

    def _unavailable(self, attempts: int, last: str) -> ServerUnavailableError:
        return ServerUnavailableError(
            f"the embedding server at {self.base_url} could not answer after {attempts} attempt(s): {last}. "
            "Is `instructor-embed serve` running there?"
        )

    def _sync_client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = _httpx.Client(base_url=self.base_url, headers=self._headers, timeout=self.timeout)
            return self._client

    @staticmethod
    def _retryable(response: Any) -> tuple[str, str | None] | None:
        """``(why, Retry-After)`` for a response worth retrying; ``None`` for one to answer with."""
        if response.status_code not in RETRY_STATUSES:
            return None
        return f"HTTP {response.status_code}", response.headers.get("retry-after")

    def _send_sync(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                response = self._sync_client().request(method, path, json=body)
            except _httpx.TransportError as exc:
                last, retry_after = f"{type(exc).__name__}: {exc}", None
            else:
                retry = self._retryable(response)
                if retry is None:
                    return self._answer(response)
                last, retry_after = retry
            if attempt < self.max_retries:
                delay = self._delay(attempt, retry_after)
                logger.info("%s %s failed (%s); retrying in %.2f s", method, path, last, delay)
                time.sleep(delay)
        raise self._unavailable(self.max_retries + 1, last)

    def _async_client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            limits = _httpx.Limits(max_connections=64, max_keepalive_connections=64)
            client = _httpx.AsyncClient(
                base_url=self.base_url, headers=self._headers, timeout=self.timeout, limits=limits
            )
            self._async_clients[loop] = client
        return client

    async def _send_async(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                response = await self._async_client().request(method, path, json=body)
            except _httpx.TransportError as exc:
                last, retry_after = f"{type(exc).__name__}: {exc}", None
            else:
                retry = self._retryable(response)
                if retry is None:
                    return self._answer(response)
                last, retry_after = retry
            if attempt < self.max_retries:
                await asyncio.sleep(self._delay(attempt, retry_after))
        raise self._unavailable(self.max_retries + 1, last)
