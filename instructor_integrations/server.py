"""``instructor-embed serve``: an OpenAI-compatible embedding server with INSTRUCTOR's instructions.

Requires the ``[serve]`` extra (FastAPI, uvicorn, prometheus-client). One model per process, behind the
encoder's request queue: concurrent requests share forward passes and queries go ahead of bulk work.

Endpoints:

* ``POST /v1/embeddings`` — OpenAI's body (``input``, ``model``, ``encoding_format``, ``user``) plus
  ``instruction`` (a string, or one per input; ``null`` means plain mean pooling), ``task`` (a preset
  name) with ``input_type`` (``"query"`` or ``"document"``), and ``priority``. Without ``instruction``
  the server's default task and input type decide.
* ``POST /embed`` (and ``POST /``), ``GET /info`` — Hugging Face Text Embeddings Inference's protocol,
  for TEI's clients (see :mod:`instructor_integrations._tei` for its fields), with errors in TEI's shape.
* ``GET /v1/models``, ``GET /health`` (the process is up), ``GET /ready`` (the model is loaded),
  ``GET /metrics`` (Prometheus).

Errors on the OpenAI routes have OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``;
the statuses are listed in docs/reliability.md. ``usage`` counts the tokens embedded (each input at
most the token limit); a response whose inputs were cut at the limit says how many in the
``X-Truncated-Inputs`` header. Bodies may be gzip-compressed (``Content-Encoding: gzip``, decoded
within the byte limit). A client that goes away is not an error: its queued rows are dropped, and it
is counted as ``client_closed`` in ``/metrics``. Input text is never logged.

Examples:
    >>> from instructor_integrations import InstructorEncoder
    >>> from instructor_integrations.server import ServerSettings, create_app
    >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
    >>> app = create_app(encoder, ServerSettings(model_name="tiny"))
    >>> sorted(route.path for route in app.routes if "embeddings" in route.path)
    ['/v1/embeddings']
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import math
import time
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _openapi, _tei
from ._http import BODY_TIMEOUT, HttpLimits, uvicorn_options
from ._optional import require
from ._protocol import Encoder
from ._validation import PRIORITIES, check_instructions, check_positive_int, check_positive_seconds, check_texts
from .errors import EncoderClosedError, NonFiniteEmbeddingError
from .instructions import resolve_task

# The extra's packages, with the pip command in the error when missing; then imported as usual (typed).
for _module in ("fastapi", "orjson", "prometheus_client", "uvicorn"):
    require(_module, "serve")

import fastapi  # noqa: E402
import orjson  # noqa: E402
import prometheus_client  # noqa: E402
from fastapi import responses as _responses  # noqa: E402
from starlette import exceptions as _exceptions  # noqa: E402
from starlette.requests import ClientDisconnect  # noqa: E402

__all__ = ["INPUT_TYPES", "HttpLimits", "ServerSettings", "create_app", "run_server"]

logger = logging.getLogger(__name__)

INPUT_TYPES = _openapi.INPUT_TYPES
#: The body fields /v1/embeddings accepts: OpenAI's, then INSTRUCTOR's.
FIELDS = _openapi.FIELDS


@dataclass(frozen=True)
class ServerSettings:
    """How the server answers: its name for the model, defaults, key and limits.

    Args:
        model_name: The model id in responses and ``/v1/models``; a request's ``model``, when given,
            must be this or one of ``aliases``.
        aliases: Other names a request's ``model`` may use (for clients with a fixed model name).
        api_key: When set, ``/v1/*`` requests need ``Authorization: Bearer <api_key>``.
        task: Default preset for requests without ``instruction`` or ``task`` (``None``: the generic
            retrieval pair).
        input_type: Default side of the task's pair: ``"query"`` or ``"document"``.
        max_inputs: Most inputs in one request (413 past it).
        max_request_bytes: Largest request body (413 past it).
        max_queued_rows: Most rows accepted and not yet embedded, over all requests; a request that would
            pass it gets 503 with ``Retry-After``.
        body_timeout: Seconds the server waits for the next part of a request body; past it the request
            gets 408 (``body_timeout``) and the connection is closed.

    Examples:
        >>> ServerSettings(model_name="hkunlp/instructor-large").max_inputs
        2048
    """

    model_name: str
    aliases: tuple[str, ...] = ()
    api_key: str | None = None
    task: str | None = None
    input_type: str = "document"
    max_inputs: int = 2048
    max_request_bytes: int = 16 * 1024 * 1024
    max_queued_rows: int = 16384
    body_timeout: float = BODY_TIMEOUT

    def __post_init__(self) -> None:
        if self.input_type not in INPUT_TYPES:
            raise ValueError(f"input_type must be one of {INPUT_TYPES}, got {self.input_type!r}")
        for name in ("max_inputs", "max_request_bytes", "max_queued_rows"):
            check_positive_int(getattr(self, name), name)
        check_positive_seconds(self.body_timeout, "body_timeout")
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key must not be empty (give None for no key)")
        resolve_task(self.task, self.model_name)  # an unknown preset fails at startup, not per request


class ApiError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers

    def response(self) -> Any:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        # ASCII JSON: a name the client sent (a field name holding a lone surrogate, say) is escaped, never
        # an encoding error of its own.
        content = json.dumps(body).encode("ascii")
        return _responses.Response(
            content, status_code=self.status, headers=self.headers, media_type="application/json"
        )

    def tei_response(self) -> Any:
        """The same error in TEI's shape, ``{"error", "error_type"}``, with TEI's status for it."""
        status = _tei.error_status(self.status, self.code)
        return _responses.Response(
            _tei.error_body(status, self.message), status_code=status, headers=self.headers,
            media_type="application/json",
        )  # fmt: skip


class _ClientClosed(Exception):
    """The client went away before its answer (mid-body, or while its rows waited): not an error of anyone's."""


#: What a 500 carries: the connection is closed after it, and the client is told so.
_CLOSE = {"Connection": "close"}


@dataclass
class _Embeddings:
    """A parsed /v1/embeddings request."""

    texts: list[str]
    instructions: list[str | None]
    encoding_format: str
    priority: str


class _Metrics:
    """The server's Prometheus metrics, on a registry of its own."""

    def __init__(self) -> None:
        p = prometheus_client
        self.registry = p.CollectorRegistry()
        self.requests = p.Counter(
            "instructor_requests", "HTTP requests", ["endpoint", "status"], registry=self.registry
        )
        self.rows = p.Counter("instructor_rows", "Inputs embedded", registry=self.registry)
        self.tokens = p.Counter(
            "instructor_tokens", "Tokens embedded (each input at most the token limit)", registry=self.registry
        )
        self.truncated = p.Counter(
            "instructor_truncated_inputs", "Inputs cut at the token limit before embedding", registry=self.registry
        )
        self.latency = p.Histogram(
            "instructor_request_duration_seconds",
            "Time from a request's arrival to its answer (/v1/embeddings)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.queued = p.Gauge("instructor_queued_rows", "Rows accepted and not yet embedded", registry=self.registry)
        self.batch_rows = p.Histogram(
            "instructor_batch_rows",
            "Rows per forward pass",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=self.registry,
        )
        self.batch_tokens = p.Histogram(
            "instructor_batch_tokens",
            "Tokens per forward pass",
            buckets=(16, 64, 256, 1024, 4096, 16384, 65536, 262144),
            registry=self.registry,
        )

    def on_pass(self, rows: int, tokens: int) -> None:
        self.batch_rows.observe(rows)
        self.batch_tokens.observe(tokens)


class _Service:
    """State of one app: the encoder (once loaded), admission, metrics."""

    def __init__(self, encoder: Encoder | Callable[[], Encoder], settings: ServerSettings) -> None:
        self.settings = settings
        self.metrics = _Metrics()
        self.queued_rows = 0
        self.load_error: BaseException | None = None
        self.encoder: Encoder | None = None
        self._loader: Callable[[], Encoder] | None = None
        if isinstance(encoder, Encoder):
            self._attach(encoder)
        else:
            self._loader = encoder
        self._instructions: dict[tuple[str | None, str], str] = {}
        self._prefixes: list[tuple[str, str]] | None = None
        self.on_load_failure: Callable[[BaseException], object] | None = None

    def _attach(self, encoder: Encoder) -> None:
        listen = getattr(encoder, "add_pass_listener", None)
        if callable(listen):
            listen(self.metrics.on_pass)
        self.encoder = encoder

    async def load(self) -> None:
        if self._loader is None:
            return
        loader, self._loader = self._loader, None
        try:
            encoder = await asyncio.to_thread(loader)
        except asyncio.CancelledError:  # shut down while loading
            raise
        except BaseException as exc:
            self.load_error = exc
            logger.error("The model could not be loaded: %s: %s", type(exc).__name__, exc)
            if self.on_load_failure is not None:
                self.on_load_failure(exc)
            return
        self._attach(encoder)
        logger.info("Ready: %s", self.settings.model_name)

    def instruction(self, task: str | None, input_type: str) -> str:
        key = (task, input_type)
        if key not in self._instructions:
            pair = resolve_task(task, self.settings.model_name)
            self._instructions[key] = pair.query if input_type == "query" else pair.document
        return self._instructions[key]

    def check_key(self, request: Any) -> None:
        key = self.settings.api_key
        if key is None:
            return
        header = request.headers.get("authorization")
        if header is None:
            raise ApiError(
                401,
                "No API key given: send the header 'Authorization: Bearer <key>'",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key.encode()):
            raise ApiError(
                401, "Incorrect API key given", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
            )

    def check_ready(self) -> Encoder:
        if self.encoder is not None:
            return self.encoder
        if self.load_error is not None:
            raise ApiError(
                503, "the model failed to load; see the server's log", type="server_error", code="model_not_loaded"
            )
        raise ApiError(
            503, "the model is still loading", type="server_error", code="model_loading", headers={"Retry-After": "5"}
        )

    async def read_body(self, request: Any) -> Any:
        limit = self.settings.max_request_bytes
        declared = request.headers.get("content-length")
        # An answer given before the body is read closes the connection: the unread rest is never parsed.
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(
                413, f"the request body has {declared} bytes; the limit is {limit}", code="request_too_large",
                headers=_CLOSE,
            )  # fmt: skip
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            raise ApiError(
                415, f"Content-Encoding {encoding[:40]!r} is not supported; send gzip or an uncompressed body",
                code="unsupported_content_encoding", headers=_CLOSE,
            )  # fmt: skip
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
        chunks, size = [], 0
        async for chunk in self._chunks(request):
            if inflate is not None and chunk:
                chunk = self._inflate(inflate, chunk, limit - size)
            size += len(chunk)
            if size > limit:
                raise ApiError(
                    413, f"the request body is over the limit of {limit} bytes", code="request_too_large",
                    headers=_CLOSE,
                )  # fmt: skip
            chunks.append(chunk)
        if inflate is not None and not inflate.eof:
            raise ApiError(400, "the gzip body ends before its end of stream", code="invalid_gzip")
        try:
            return json.loads(b"".join(chunks))
        except RecursionError:
            raise ApiError(400, "the body is not valid JSON: it is nested too deep", code="invalid_json") from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer past Python's digit limit
            raise ApiError(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None

    async def _chunks(self, request: Any) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive: 408 when none comes for ``body_timeout``; a client gone, _ClientClosed."""
        stream = request.stream().__aiter__()
        while True:
            try:
                chunk: bytes = await asyncio.wait_for(stream.__anext__(), self.settings.body_timeout)
            except StopAsyncIteration:
                return
            except asyncio.TimeoutError:
                raise ApiError(
                    408, f"no part of the request body arrived for {self.settings.body_timeout:g} s",
                    code="body_timeout", headers=_CLOSE,
                ) from None  # fmt: skip
            except ClientDisconnect:
                raise _ClientClosed from None
            yield chunk

    @staticmethod
    def _inflate(inflate: Any, chunk: bytes, room: int) -> bytes:
        """A chunk of a gzip body, decoded: never more than ``room`` + 1 bytes (past that it is refused anyway)."""
        try:
            out: bytes = inflate.decompress(chunk, max(room, 0) + 1)
        except zlib.error as exc:
            raise ApiError(400, f"the body is not valid gzip: {exc}", code="invalid_gzip", headers=_CLOSE) from None
        return out

    def parse(self, body: Any) -> _Embeddings:
        if not isinstance(body, dict):
            raise ApiError(400, f"the body must be a JSON object, got {type(body).__name__}", code="invalid_body")
        unknown = sorted(set(body) - set(FIELDS))
        if unknown:
            raise ApiError(
                400,
                f"unrecognized field(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(FIELDS)}",
                param=unknown[0],
                code="unknown_field",
            )
        if "input" not in body:
            raise ApiError(
                400, "'input' is required: a string or a list of strings", param="input", code="missing_field"
            )
        texts = self._parse_input(body["input"])
        self._check_model(body.get("model"))
        encoding_format = body.get("encoding_format")
        if encoding_format is None:
            encoding_format = "float"
        elif encoding_format not in _openapi.ENCODING_FORMATS:
            raise ApiError(
                400, f"'encoding_format' must be 'float' or 'base64', got {encoding_format!r}", param="encoding_format"
            )
        self._check_unused(body)
        priority = body.get("priority", "auto")
        if priority not in PRIORITIES:
            raise ApiError(
                400, f"'priority' must be one of {', '.join(map(repr, PRIORITIES))}, got {priority!r}", param="priority"
            )
        return _Embeddings(texts, self._parse_instructions(body, len(texts)), encoding_format, priority)

    def _check_model(self, model: Any) -> None:
        """``model``: absent, or one of the names this server answers to."""
        if model is not None:
            if not isinstance(model, str):
                raise ApiError(400, f"'model' must be a string, got {type(model).__name__}", param="model")
            if model not in (self.settings.model_name, *self.settings.aliases):
                names = ", ".join(map(repr, (self.settings.model_name, *self.settings.aliases)))
                raise ApiError(
                    404, f"model {model!r} is not served here; this server serves {names}", param="model",
                    code="model_not_found",
                )  # fmt: skip

    @staticmethod
    def _check_unused(body: dict[str, Any]) -> None:
        """The OpenAI fields this server takes but does not use: ``dimensions`` refused, ``user`` a string."""
        if body.get("dimensions") is not None:
            raise ApiError(
                400,
                "'dimensions' is not supported: INSTRUCTOR vectors cannot be shortened (leave it out)",
                param="dimensions",
                code="unsupported_parameter",
            )
        user = body.get("user")
        if user is not None and not isinstance(user, str):
            raise ApiError(400, f"'user' must be a string, got {type(user).__name__}", param="user")

    def _parse_input(self, value: Any, field: str = "input") -> list[str]:
        """The texts of a request's ``field`` (OpenAI's ``input``, TEI's ``inputs``), within ``max_inputs``."""
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ApiError(
                400, f"'{field}' must be a string or a list of strings, got {type(value).__name__}", param=field
            )
        if not value:
            raise ApiError(400, f"'{field}' is an empty list; give at least one string", param=field)
        if any(isinstance(item, (int, list)) and not isinstance(item, bool) for item in value):
            raise ApiError(
                400, f"'{field}' holds token ids; this server takes text (send strings)", param=field,
                code="unsupported_input",
            )  # fmt: skip
        if len(value) > self.settings.max_inputs:
            raise ApiError(
                413,
                f"'{field}' has {len(value)} items; the limit is {self.settings.max_inputs} per request",
                param=field,
                code="too_many_inputs",
            )
        try:
            return check_texts(value, field)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc), param=field) from None

    def _parse_instructions(self, body: dict[str, Any], n: int) -> list[str | None]:
        task, input_type = body.get("task"), body.get("input_type")
        if "instruction" in body:
            if task is not None or input_type is not None:
                raise ApiError(
                    400, "give 'instruction' or 'task'/'input_type', not both", param="instruction",
                    code="conflicting_fields",
                )  # fmt: skip
            try:
                return check_instructions(body["instruction"], n)
            except (TypeError, ValueError) as exc:
                raise ApiError(400, str(exc), param="instruction") from None
        if task is not None and not isinstance(task, str):
            raise ApiError(400, f"'task' must be a string (a preset name), got {type(task).__name__}", param="task")
        if input_type is None:
            input_type = self.settings.input_type
        if input_type not in INPUT_TYPES:
            raise ApiError(400, f"'input_type' must be 'query' or 'document', got {input_type!r}", param="input_type")
        try:
            instruction = self.instruction(task if task is not None else self.settings.task, input_type)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc), param="task", code="unknown_task") from None
        return [instruction] * n

    def admit(self, rows: int) -> None:
        limit = self.settings.max_queued_rows
        if self.queued_rows + rows > limit:
            raise ApiError(
                503,
                f"the server's queue is full ({self.queued_rows} rows waiting, limit {limit}); retry later",
                type="server_error",
                code="queue_full",
                headers={"Retry-After": "1"},
            )
        self.queued_rows += rows
        self.metrics.queued.set(self.queued_rows)

    def release(self, rows: int) -> None:
        self.queued_rows -= rows
        self.metrics.queued.set(self.queued_rows)

    async def embeddings(self, request: Any) -> Any:
        self.check_key(request)
        encoder = self.check_ready()
        parsed = self.parse(await self.read_body(request))
        priority: Any = parsed.priority  # one of PRIORITIES (checked in parse)
        vectors, tokens, truncated = await self.embed(request, encoder, parsed.texts, parsed.instructions, priority)
        body = _embedding_body(vectors, parsed.encoding_format, self.settings.model_name, tokens)
        return _responses.Response(body, media_type="application/json", headers=_truncation_header(truncated))

    async def tei_embed(self, request: Any) -> Any:
        """``POST /embed``: TEI's body, this server's queue; a JSON array of vectors."""
        self.check_key(request)
        encoder = self.check_ready()
        try:
            parsed = _tei.parse_body(await self.read_body(request))
        except _tei.TeiInputError as exc:
            raise ApiError(exc.status, str(exc), code="invalid_body") from None
        texts, instructions = self._tei_rows(self._parse_input(parsed.texts, "inputs"), parsed)
        if parsed.truncate is False:
            self._refuse_long(encoder, texts, instructions)
        vectors, _, truncated = await self.embed(request, encoder, texts, instructions, "auto")
        if parsed.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            np.divide(vectors, norms, out=vectors, where=norms > 0)
        return _responses.Response(
            orjson.dumps(np.ascontiguousarray(vectors, dtype=np.float32), option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json", headers=_truncation_header(truncated),
        )  # fmt: skip

    def _tei_rows(self, texts: list[str], parsed: _tei.TeiRequest) -> tuple[list[str], list[str | None]]:
        """Checked texts and their instructions: given, from ``prompt_name``, from a preset prefix, or the default."""
        if parsed.instructions is not None:
            return texts, parsed.instructions
        if parsed.prompt is not None:
            task, side = parsed.prompt
            try:
                instruction = self.instruction(task if task is not None else self.settings.task, side)
            except (TypeError, ValueError) as exc:
                raise ApiError(400, f"'prompt_name': {exc}", code="unknown_task") from None
            return texts, [instruction] * len(texts)
        default = self.instruction(self.settings.task, self.settings.input_type)
        if self._prefixes is None:
            self._prefixes = _tei.prefixed_instructions(self.settings.model_name)
        rows = [_tei.split_prefix(text, self._prefixes) for text in texts]
        return [rest for _, rest in rows], [found if found is not None else default for found, _ in rows]

    @staticmethod
    def _refuse_long(encoder: Encoder, texts: list[str], instructions: list[str | None]) -> None:
        """``truncate: false``: an input past the token limit is refused, as TEI refuses it."""
        count = getattr(encoder, "count_tokens", None)
        limit = getattr(encoder, "max_seq_length", None)
        if count is None or limit is None:
            return
        lengths = count(texts, instructions)
        longest = max(range(len(lengths)), key=lengths.__getitem__)
        if lengths[longest] > limit:
            raise ApiError(
                413, f"input {longest} has {lengths[longest]} tokens (instruction included); the limit is {limit}: "
                "send 'truncate': true to embed its first tokens", code="input_too_long",
            )  # fmt: skip

    async def embed(
        self, request: Any, encoder: Encoder, texts: list[str], instructions: list[str | None], priority: Any
    ) -> tuple[np.ndarray, int, int]:
        """Rows through the encoder's queue: vectors, tokens embedded, inputs truncated.

        While the rows wait, the client's connection is watched: if it closes, the rows not yet started
        are dropped (the awaiting is cancelled) and :class:`_ClientClosed` is raised.
        """
        self.admit(len(texts))
        work = asyncio.ensure_future(self._encode(encoder, texts, instructions, priority))
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                work.cancel()
                raise _ClientClosed
            result = work.result()
        except asyncio.CancelledError:
            work.cancel()
            # uvicorn cancels the requests still running when its graceful shutdown time is over: the
            # client is told so (and may retry elsewhere), instead of the 500 a cancelled handler would get.
            task = asyncio.current_task()
            if task is None or not hasattr(task, "uncancel"):  # Python 3.10: let the cancellation through
                raise
            task.uncancel()
            logger.warning("A request of %d row(s) was cut off by the shutdown: answered 503", len(texts))
            raise ApiError(
                503, "the server shut down before this request was embedded", type="server_error",
                code="shutting_down", headers={"Retry-After": "5", "Connection": "close"},
            ) from None  # fmt: skip
        finally:
            gone.cancel()
            self.release(len(texts))
        vectors, tokens, truncated = result
        self.metrics.rows.inc(len(texts))
        self.metrics.tokens.inc(tokens)
        self.metrics.truncated.inc(truncated)
        return vectors, tokens, truncated

    @staticmethod
    async def _encode(
        encoder: Encoder, texts: list[str], instructions: list[str | None], priority: Any
    ) -> tuple[np.ndarray, int, int]:
        try:
            counted = getattr(encoder, "_aencode_counted", None)
            if counted is not None:  # the in-process encoder counts the tokens it prepares anyway
                vectors, tokens, truncated = await counted(texts, instructions, priority)
                return vectors, tokens, truncated
            return await encoder.aencode(texts, instructions, priority=priority), 0, 0
        except EncoderClosedError:
            raise ApiError(
                503, "the server is shutting down", type="server_error", code="shutting_down",
                headers={"Retry-After": "5"},
            ) from None  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc), param="input") from None
        except NonFiniteEmbeddingError as exc:
            raise ApiError(500, str(exc), type="server_error", code="non_finite_embedding", headers=_CLOSE) from None


async def _disconnected(request: Any) -> None:
    """Returns when the client closes its connection (the body has been read: the next message is that)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _truncation_header(truncated: int) -> dict[str, str] | None:
    return {"X-Truncated-Inputs": str(truncated)} if truncated else None


def _embedding_body(vectors: np.ndarray, encoding_format: str, model: str, tokens: int) -> bytes:
    """OpenAI's response body: float32 vectors as JSON numbers (exactly), or as base64 of little-endian float32."""
    if encoding_format == "base64":
        items: list[Any] = [base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode("ascii") for v in vectors]
    else:
        items = list(np.ascontiguousarray(vectors, dtype=np.float32))
    data = [{"object": "embedding", "index": i, "embedding": item} for i, item in enumerate(items)]
    body = {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    # orjson writes each float32 as its shortest round-trip decimal: the client reads back the same float32.
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def create_app(  # noqa: C901 - the route table: each branch is one route's closure
    encoder: Encoder | Callable[[], Encoder], settings: ServerSettings
) -> Any:
    """The FastAPI app of the server.

    Args:
        encoder: The encoder to serve, or a function that loads it: then the app answers ``/health``
            at once and ``/ready`` (and the embeddings) once the model is loaded, in a thread.
        settings: Name, defaults, key and limits.

    Returns:
        An ASGI application: the FastAPI app, wrapped to count requests (its attributes reach through);
        serve it with uvicorn, or mount it.
    """
    service = _Service(encoder, settings)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        loading = asyncio.create_task(service.load())
        try:
            yield
        finally:
            loading.cancel()
            if service.encoder is not None:
                await asyncio.to_thread(service.encoder.close)

    app = fastapi.FastAPI(
        title="instructor-embed",
        summary="INSTRUCTOR embeddings, OpenAI-compatible",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    keyed = settings.api_key is not None

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = _openapi.security_schemes()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document

    @app.exception_handler(ApiError)
    async def api_error(request: Any, exc: ApiError) -> Any:
        return exc.tei_response() if request.url.path in _TEI_PATHS else exc.response()

    @app.exception_handler(_ClientClosed)
    async def client_closed(request: Any, exc: _ClientClosed) -> Any:
        # Nobody reads this answer; it is counted as client_closed, not as a status (see _Counted).
        logger.debug("The client of a %s request closed its connection before the answer", request.url.path)
        request.scope[_CLIENT_CLOSED] = True
        return _responses.Response(status_code=499, headers=_CLOSE)

    @app.exception_handler(_exceptions.HTTPException)
    async def http_error(request: Any, exc: Any) -> Any:
        status = int(exc.status_code)
        error = ApiError(status, str(exc.detail), code="not_found" if status == 404 else None, headers=exc.headers)
        return error.response()  # 405 keeps its Allow header

    @app.exception_handler(Exception)
    async def unexpected(request: Any, exc: Exception) -> Any:
        logger.error("Unexpected %s on %s", type(exc).__name__, request.url.path, exc_info=exc)
        error = ApiError(500, f"internal error ({type(exc).__name__})", type="server_error", headers=_CLOSE)
        return error.tei_response() if request.url.path in _TEI_PATHS else error.response()

    @app.post("/v1/embeddings", **_openapi.embeddings_route(settings.max_inputs, keyed))
    async def embeddings(request: fastapi.Request) -> Any:
        return await service.embeddings(request)

    @app.post("/embed", **_openapi.tei_route(settings.max_inputs, keyed))
    async def tei_embed(request: fastapi.Request) -> Any:
        return await service.tei_embed(request)

    @app.post("/", **_openapi.tei_route(settings.max_inputs, keyed))
    async def tei_root(request: fastapi.Request) -> Any:  # TEI answers embeddings at its root too
        return await service.tei_embed(request)

    @app.get("/info", **_openapi.info_route(keyed))
    async def info(request: fastapi.Request) -> Any:
        service.check_key(request)
        encoder = service.check_ready()
        return {
            "model_id": settings.model_name,
            "model_sha": None,
            "model_dtype": str(getattr(encoder, "precision", "float32")),
            "model_type": {"embedding": {"pooling": "mean"}},
            "prompts": None,
            "default_prompt_name": None,
            "default_prompt": None,
            "max_concurrent_requests": settings.max_queued_rows,
            "max_input_length": getattr(encoder, "max_seq_length", None),
            "max_batch_tokens": getattr(encoder, "token_budget", None),
            "max_batch_requests": None,
            "max_client_batch_size": settings.max_inputs,
            "auto_truncate": True,
            "tokenization_workers": 1,
            "version": _version(),
            "sha": None,
            "docker_label": None,
            "embedding_dimension": encoder.embedding_dimension,
        }

    @app.get(
        "/v1/models",
        **_openapi.json_route("the served model", {401: "no key, or a wrong one", 503: "the model is loading"}, keyed),
    )
    async def models(request: fastapi.Request) -> Any:
        service.check_key(request)
        encoder = service.check_ready()
        entry = {
            "id": settings.model_name,
            "object": "model",
            "created": 0,
            "owned_by": "instructor-integrations",
            "embedding_dimension": encoder.embedding_dimension,
            "max_seq_length": getattr(encoder, "max_seq_length", None),
            "max_inputs_per_request": settings.max_inputs,
            "max_request_bytes": settings.max_request_bytes,
        }
        return {"object": "list", "data": [entry]}

    @app.get("/health", **_openapi.json_route("the process is up", {}))
    async def health() -> Any:
        return {"status": "ok"}

    @app.get(
        "/ready",
        **_openapi.json_route("the model is loaded", {503: "the model is loading or failed"}, openai_errors=False),
    )
    async def ready() -> Any:
        if service.encoder is None:
            status = "failed" if service.load_error is not None else "loading"
            return _responses.JSONResponse({"status": status}, status_code=503)
        return {"status": "ready", "model": settings.model_name}

    @app.get("/metrics", **_openapi.metrics_route())
    async def metrics() -> Any:
        body = prometheus_client.generate_latest(service.metrics.registry)
        return _responses.Response(body, media_type=prometheus_client.CONTENT_TYPE_LATEST)

    return _Counted(app, service.metrics)


class _Counted:
    """Counts requests by endpoint and status, and times the embeddings (plain ASGI: no task per request).

    Attribute access falls through to the FastAPI app (``state``, ``routes``...).
    """

    def __init__(self, app: Any, metrics: _Metrics) -> None:
        self.app = app
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        endpoint = path if path in _ENDPOINTS else "other"
        status = [500]

        async def send_counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            label = "client_closed" if scope.get(_CLIENT_CLOSED) else str(status[0])
            self._metrics.requests.labels(endpoint, label).inc()
            if endpoint == "/v1/embeddings":
                self._metrics.latency.observe(time.perf_counter() - started)


_ENDPOINTS = frozenset({"/v1/embeddings", "/v1/models", "/health", "/ready", "/metrics", "/embed", "/info", "/"})
#: The routes that speak TEI's protocol (their errors in TEI's shape).
_TEI_PATHS = frozenset({"/embed", "/", "/info"})
#: Set in a request's scope when its client closed the connection before the answer.
_CLIENT_CLOSED = "instructor_integrations.client_closed"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("instructor-integrations")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        return "unknown"


def run_server(
    encoder: Encoder | Callable[[], Encoder],
    settings: ServerSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    graceful_seconds: float = 30.0,
    limits: HttpLimits | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; the requests already accepted are answered before it exits.

    ``limits`` bound each connection before the application sees its request (header size and time,
    keep-alive, open connections; see :class:`~instructor_integrations._http.HttpLimits`).

    Raises:
        ModelLoadError: ``encoder`` was a loader and the model could not be loaded (the server stops).
    """
    import uvicorn

    app = create_app(encoder, settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # the application's logging (no bodies are logged: uvicorn logs method and path)
        timeout_graceful_shutdown=None if math.isinf(graceful_seconds) else max(1, math.ceil(graceful_seconds)),
        **uvicorn_options(limits or HttpLimits()),
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def stop(exc: BaseException) -> None:
        failure.append(exc)
        server.should_exit = True

    app.state.service.on_load_failure = stop
    if host not in ("127.0.0.1", "localhost", "::1") and settings.api_key is None:
        logger.warning("Listening on %s without an API key: anyone who can reach it can use it", host)
    logger.info("Serving %s on http://%s:%d", settings.model_name, host, port)
    server.run()
    if failure:
        raise failure[0]
