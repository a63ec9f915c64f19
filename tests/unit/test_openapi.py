"""The server's OpenAPI document says what its parsers take: the same fields, values and limits.

Every body the document's schema refuses, the parser refuses too (so a schema-driven client never
sends a body the server takes differently); the bearer scheme, each route's answers and /metrics as
text are in the document.
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
jsonschema = pytest.importorskip("jsonschema")

from instructor_integrations import _openapi, _tei  # noqa: E402
from instructor_integrations._validation import PRIORITIES  # noqa: E402
from instructor_integrations.server import FIELDS, ApiError, ServerSettings, create_app  # noqa: E402

MAX_INPUTS = 8


@pytest.fixture(scope="module")
def document(tiny_encoder) -> dict:
    app = create_app(tiny_encoder, ServerSettings(model_name="tiny", api_key="k", max_inputs=MAX_INPUTS))
    return app.openapi()


def request_schema(document: dict, path: str) -> dict:
    return document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


def test_the_request_schemas_name_exactly_the_parsers_fields_and_values(document) -> None:
    openai = request_schema(document, "/v1/embeddings")
    assert tuple(openai["properties"]) == FIELDS and openai["additionalProperties"] is False
    assert openai["properties"]["priority"]["enum"] == list(PRIORITIES)
    assert openai["properties"]["input_type"]["enum"] == [*_openapi.INPUT_TYPES, None]
    assert openai["properties"]["input"]["anyOf"][1]["maxItems"] == MAX_INPUTS
    tei = request_schema(document, "/embed")
    assert tuple(tei["properties"]) == _tei.FIELDS and request_schema(document, "/") == tei
    assert tei["properties"]["truncation_direction"]["enum"] == [*_tei.DIRECTIONS, None]


def test_the_bearer_scheme_and_every_answer_are_described(document) -> None:
    assert document["components"]["securitySchemes"][_openapi.BEARER] == {
        "type": "http",
        "scheme": "bearer",
        "description": "the server's --api-key",
    }
    embeddings = document["paths"]["/v1/embeddings"]["post"]
    assert embeddings["security"] == [{_openapi.BEARER: []}]
    assert set(embeddings["responses"]) == {"200", "400", "401", "404", "408", "413", "415", "500", "503"}
    tei = set(document["paths"]["/embed"]["post"]["responses"])
    assert tei == {"200", "401", "408", "413", "415", "422", "429", "500", "503"}
    assert "text/plain" in document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert "security" not in document["paths"]["/health"]["get"]


# Bodies the schema refuses, each a different rule.
REFUSED_OPENAI = [
    {},
    {"input": 3},
    {"input": []},
    {"input": [1, 2]},
    {"input": ["a"] * (MAX_INPUTS + 1)},
    {"input": "a", "encoding_format": "float16"},
    {"input": "a", "encoding_format": ""},
    {"input": "a", "dimensions": 8},
    {"input": "a", "user": 5},
    {"input": "a", "model": 5},
    {"input": "a", "priority": None},
    {"input": "a", "priority": "urgent"},
    {"input": "a", "input_type": "passage"},
    {"input": "a", "task": 3},
    {"input": "a", "instruction": 3},
    {"input": "a", "instruction": [3]},
    {"input": "a", "extra": 1},
]
REFUSED_TEI = [
    {},
    {"inputs": []},
    {"inputs": [[1, 2]]},
    {"inputs": ["a"] * (MAX_INPUTS + 1)},
    {"inputs": "a", "normalize": "yes"},
    {"inputs": "a", "truncate": 1},
    {"inputs": "a", "truncation_direction": "Left"},
    {"inputs": "a", "prompt_name": 3},
    {"inputs": "a", "dimensions": 4},
    {"inputs": "a", "instruction": 3},
    {"inputs": "a", "extra": 1},
]


@pytest.mark.parametrize("body", REFUSED_OPENAI, ids=[str(body)[:40] for body in REFUSED_OPENAI])
def test_what_the_openai_schema_refuses_the_parser_refuses(document, tiny_encoder, body) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, request_schema(document, "/v1/embeddings"))
    service = create_app(tiny_encoder, ServerSettings(model_name="tiny", max_inputs=MAX_INPUTS)).state.service
    with pytest.raises(ApiError) as refused:
        service.parse(body)
    assert 400 <= refused.value.status < 500


@pytest.mark.parametrize("body", REFUSED_TEI, ids=[str(body)[:40] for body in REFUSED_TEI])
def test_what_the_tei_schema_refuses_the_parser_refuses(document, body) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, request_schema(document, "/embed"))
    if isinstance(body.get("inputs"), list) and len(body["inputs"]) > MAX_INPUTS:
        return  # the route refuses this one (413), after the body parses
    with pytest.raises(_tei.TeiInputError):
        _tei.parse_body(body)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/embeddings",
            {"input": ["a", "b"], "instruction": ["x", None], "encoding_format": None, "priority": "bulk"},
        ),
        ("/v1/embeddings", {"input": "a", "task": "SciFact", "input_type": "query", "model": None, "user": "u"}),
        ("/embed", {"inputs": "a", "normalize": None, "truncate": True, "truncation_direction": "Right"}),
        ("/embed", {"inputs": ["a"], "prompt_name": "SciFact:query", "dimensions": None}),
    ],
)
def test_bodies_the_schema_takes_parse(document, tiny_encoder, path, body) -> None:
    jsonschema.validate(body, request_schema(document, path))
    if path == "/embed":
        _tei.parse_body(body)
    else:
        create_app(tiny_encoder, ServerSettings(model_name="tiny")).state.service.parse(body)
