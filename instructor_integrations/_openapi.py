"""The server's OpenAPI description: request bodies, every answer with its body, the bearer scheme.

The routes parse their bodies by hand (bounded, with errors in each protocol's shape), so FastAPI cannot
infer them; the schemas here say what the parsers accept, and ``tests/unit/test_openapi.py`` keeps the
two equal (field names, enumerations, limits). Schema-driven tools (schemathesis, client generators,
gateways) read them from ``GET /openapi.json``.
"""

from __future__ import annotations

from typing import Any

from . import _tei
from ._validation import PRIORITIES

__all__ = [
    "BEARER",
    "FIELDS",
    "INPUT_TYPES",
    "ENCODING_FORMATS",
    "embeddings_route",
    "info_route",
    "json_route",
    "metrics_route",
    "tei_route",
]

#: The body fields /v1/embeddings accepts: OpenAI's, then INSTRUCTOR's.
FIELDS = ("input", "model", "encoding_format", "user", "dimensions", "instruction", "task", "input_type", "priority")
INPUT_TYPES = ("query", "document")
ENCODING_FORMATS = ("float", "base64")
#: The name of the bearer security scheme in ``components.securitySchemes``.
BEARER = "bearer"

_STRINGS = {"type": "array", "items": {"type": "string"}, "minItems": 1}
_INSTRUCTION = {
    "description": "one instruction for every input, one per input, or null for plain mean pooling",
    "anyOf": [{"type": "string"}, {"type": "null"}, {"type": "array", "items": {"type": ["string", "null"]}}],
}
_OPENAI_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
_TEI_ERROR = {
    "type": "object",
    "required": ["error", "error_type"],
    "properties": {"error": {"type": "string"}, "error_type": {"type": "string"}},
}
_VECTOR = {"type": "array", "items": {"type": "number"}}
_EMBEDDINGS_RESPONSE = {
    "type": "object",
    "required": ["object", "data", "model", "usage"],
    "properties": {
        "object": {"const": "list"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["object", "index", "embedding"],
                "properties": {
                    "object": {"const": "embedding"},
                    "index": {"type": "integer", "minimum": 0},
                    "embedding": {
                        "description": "float32 numbers, or base64 of little-endian float32",
                        "anyOf": [_VECTOR, {"type": "string"}],
                    },
                },
            },
        },
        "model": {"type": "string"},
        "usage": {
            "type": "object",
            "required": ["prompt_tokens", "total_tokens"],
            "properties": {"prompt_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}},
        },
    },
}
_TRUNCATED = {
    "X-Truncated-Inputs": {
        "description": "how many inputs were cut at the token limit (absent when none)",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def _errors(shape: dict[str, Any], statuses: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    return {status: _json(shape, description) for status, description in statuses.items()}


def _texts(max_inputs: int) -> dict[str, Any]:
    """A string, or a non-empty list of at most ``max_inputs`` strings (both protocols' inputs)."""
    return {"anyOf": [{"type": "string"}, {**_STRINGS, "maxItems": max_inputs}]}


def _post_route(
    body: dict[str, Any], answer: dict[str, Any], errors: dict[int, str], error_shape: dict[str, Any], api_key: bool
) -> dict[str, Any]:
    """A POST route's decorator arguments: its JSON body, its 200 answer and its errors in one shape."""
    return {
        "openapi_extra": {
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            **_security(api_key),
        },
        "responses": {200: answer, **_errors(error_shape, errors)},
    }


def _security(api_key: bool) -> dict[str, Any]:
    return {"security": [{BEARER: []}]} if api_key else {}


def embeddings_request(max_inputs: int) -> dict[str, Any]:
    """The JSON schema of a ``/v1/embeddings`` body."""
    return {
        "type": "object",
        "required": ["input"],
        "additionalProperties": False,
        "properties": {
            "input": _texts(max_inputs),
            "model": {"type": ["string", "null"], "description": "the served model's name or an alias"},
            "encoding_format": {"enum": [*ENCODING_FORMATS, None]},
            "user": {"type": ["string", "null"]},
            "dimensions": {"type": "null", "description": "refused: INSTRUCTOR vectors cannot be shortened"},
            "instruction": _INSTRUCTION,
            "task": {"type": ["string", "null"], "description": "a preset, e.g. SciFact"},
            "input_type": {"enum": [*INPUT_TYPES, None]},
            "priority": {"enum": list(PRIORITIES)},
        },
    }


def tei_request(max_inputs: int) -> dict[str, Any]:
    """The JSON schema of an ``/embed`` body (TEI's, and ``instruction``)."""
    return {
        "type": "object",
        "required": ["inputs"],
        "additionalProperties": False,
        "properties": {
            "inputs": _texts(max_inputs),
            "normalize": {"type": ["boolean", "null"]},
            "truncate": {"type": ["boolean", "null"]},
            "truncation_direction": {"enum": [*_tei.DIRECTIONS, None]},
            "prompt_name": {
                "type": ["string", "null"],
                "description": "query, document, or TASK:query / TASK:document for a preset",
            },
            "dimensions": {"type": "null"},
            "instruction": _INSTRUCTION,
        },
    }


def embeddings_route(max_inputs: int, api_key: bool) -> dict[str, Any]:
    """``POST /v1/embeddings``: its body and every answer (keyword arguments of FastAPI's route decorator)."""
    errors = {
        400: "a bad body (the message names the field)",
        401: "no key, or a wrong one",
        404: "a model this server does not serve",
        408: "the body stopped arriving (the connection is closed after it)",
        413: "too many inputs, or a body past the byte limit",
        415: "a Content-Encoding other than gzip",
        500: "the server's own fault (the connection is closed after it)",
        503: "the queue is full, the model is loading, or the server is shutting down (Retry-After)",
    }
    answer = _json(_EMBEDDINGS_RESPONSE, "the vectors, in input order", _TRUNCATED)
    return _post_route(embeddings_request(max_inputs), answer, errors, _OPENAI_ERROR, api_key)


def tei_route(max_inputs: int, api_key: bool) -> dict[str, Any]:
    """``POST /embed`` (and ``POST /``): TEI's body and answers."""
    errors = {
        401: "no key, or a wrong one (Unauthorized)",
        408: "the body stopped arriving (the connection is closed after it)",
        413: "too many inputs, a body past the byte limit, or an input too long with truncate false",
        415: "a Content-Encoding other than gzip",
        422: "a bad body (Validation)",
        429: "the queue is full (Overloaded)",
        500: "the server's own fault (Backend; the connection is closed after it)",
        503: "the model is loading or the server is shutting down (Unhealthy)",
    }
    answer = _json({"type": "array", "items": _VECTOR}, "one vector per input, in order", _TRUNCATED)
    return _post_route(tei_request(max_inputs), answer, errors, _TEI_ERROR, api_key)


def json_route(
    description: str, statuses: dict[int, str], api_key: bool = False, *, openai_errors: bool = True
) -> dict[str, Any]:
    """A GET route that answers a JSON object, and the errors it may answer (in OpenAI's shape, or plain objects)."""
    shape = _OPENAI_ERROR if openai_errors else {"type": "object"}
    return {
        "openapi_extra": _security(api_key),
        "responses": {200: _json({"type": "object"}, description), **_errors(shape, statuses)},
    }


def info_route(api_key: bool) -> dict[str, Any]:
    """``GET /info``: TEI's model description."""
    return {
        "openapi_extra": _security(api_key),
        "responses": {
            200: _json({"type": "object", "required": ["model_id", "max_input_length"]}, "the model, TEI's fields"),
            **_errors(_TEI_ERROR, {401: "no key, or a wrong one", 503: "the model is loading"}),
        },
    }


def metrics_route() -> dict[str, Any]:
    """``GET /metrics``: Prometheus's text format."""
    return {
        "responses": {
            200: {"description": "Prometheus text", "content": {"text/plain": {"schema": {"type": "string"}}}}
        }
    }


def security_schemes() -> dict[str, Any]:
    """``components.securitySchemes``: the bearer key of ``--api-key``."""
    return {BEARER: {"type": "http", "scheme": "bearer", "description": "the server's --api-key"}}
