"""`instructor-embed serve` as a real process on a free port, talked to over real HTTP.

The vectors it answers (float and base64, through RemoteEncoder, the adapters and the stock openai
client) are held to the in-process encoder's; every bad request of the battery gets its status, code
and message (the battery is listed in docs/reliability.md, and a test keeps the two in step).
"""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import numpy as np
import pytest

from tests.integration.conftest import EmbedServer

pytestmark = pytest.mark.integration
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

KEY = "test-key-7f3a"
NAME = "tiny-instructor"
AUTH = {"Authorization": f"Bearer {KEY}"}
DOCS = ["INSTRUCTOR embeds text with instructions.", "  Chroma stores vectors.  ", "", "Tides follow the moon."]
QUERY_INSTRUCTION = "Represent the question for retrieving supporting documents: "
DOC_INSTRUCTION = "Represent the document for retrieval: "
MARKER = "zebra-marker-8472 private text"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("serve")
    args = ["--api-key", KEY, "--served-model-name", NAME, "--served-model-name", "alias-name"]
    args += ["--max-inputs", "64", "--max-request-bytes", "65536"]
    process = EmbedServer(folder, *args).start()
    yield process
    process.kill()


def post(server: EmbedServer, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/embeddings", json=body, headers=AUTH if headers is None else headers, timeout=60
    )


def vectors_of(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [item["index"] for item in data] == list(range(len(data)))
    first = data[0]["embedding"]
    if isinstance(first, str):
        return np.stack([np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in data])
    return np.asarray([item["embedding"] for item in data], dtype=np.float32)


# ---------------------------------------------------------------------------------------- vectors
@pytest.mark.parametrize("encoding_format", ["float", "base64"])
def test_embeddings_equal_the_in_process_encoders(server, tiny_encoder, encoding_format):
    response = post(server, {"input": DOCS, "instruction": DOC_INSTRUCTION, "encoding_format": encoding_format})
    body = response.json()
    assert body["object"] == "list" and body["model"] == NAME
    assert body["usage"]["prompt_tokens"] == sum(tiny_encoder.count_tokens(DOCS, DOC_INSTRUCTION)) > 0
    expected = tiny_encoder.encode(DOCS, DOC_INSTRUCTION)
    np.testing.assert_allclose(vectors_of(response), expected, atol=1e-5)


def test_one_string_per_row_instructions_and_null_for_plain_pooling(server, tiny_encoder):
    instructions = [DOC_INSTRUCTION, None, QUERY_INSTRUCTION, None]
    got = vectors_of(post(server, {"input": DOCS, "instruction": instructions}))
    np.testing.assert_allclose(got, tiny_encoder.encode(DOCS, instructions), atol=1e-5)
    one = vectors_of(post(server, {"input": DOCS[0], "instruction": None}))
    np.testing.assert_allclose(one, tiny_encoder.encode(DOCS[:1]), atol=1e-5)


def test_task_and_input_type_pick_the_presets_instruction(server, tiny_encoder):
    from instructor_integrations.instructions import GENERIC_RETRIEVAL, get_preset

    scifact = get_preset("SciFact", NAME).pair
    for input_type, instruction in (("query", scifact.query), ("document", scifact.document)):
        got = vectors_of(post(server, {"input": DOCS[:2], "task": "SciFact", "input_type": input_type}))
        np.testing.assert_allclose(got, tiny_encoder.encode(DOCS[:2], instruction), atol=1e-5)
    # Neither: the server's default (no --task: the generic pair, documents).
    got = vectors_of(post(server, {"input": DOCS[:2], "model": "alias-name"}))
    np.testing.assert_allclose(got, tiny_encoder.encode(DOCS[:2], GENERIC_RETRIEVAL.document), atol=1e-5)


def test_remote_encoder_equals_the_in_process_encoder(server, tiny_encoder):
    from instructor_integrations import Encoder, RemoteEncoder

    texts = [f"sentence number {i} about {'tides ' * (i % 7)}" for i in range(150)]  # 3 requests of <= 64
    instructions = [DOC_INSTRUCTION if i % 3 else None for i in range(150)]
    with RemoteEncoder(server.url, api_key=KEY) as remote:
        assert isinstance(remote, Encoder)
        assert (remote.model_name, remote.embedding_dimension) == (NAME, tiny_encoder.embedding_dimension)
        expected = tiny_encoder.encode(texts, instructions)
        np.testing.assert_allclose(remote.encode(texts, instructions), expected, atol=1e-5)
        np.testing.assert_allclose(asyncio.run(remote.aencode(texts, instructions)), expected, atol=1e-5)
        pairs = [[instruction or "", text] for instruction, text in zip(instructions, texts, strict=True)]
        np.testing.assert_allclose(remote.encode_pairs(pairs), expected, atol=1e-5)
        np.testing.assert_allclose(asyncio.run(remote.aencode_pairs(pairs)), expected, atol=1e-5)
        assert remote.encode([]).shape == (0, tiny_encoder.embedding_dimension)


def test_remote_encoder_splits_a_call_at_the_servers_byte_limit(server, tiny_encoder):
    from instructor_integrations import RemoteEncoder

    texts = [f"{i} " + "word " * 3000 for i in range(8)]  # about 15 kB each: 4 per 64 kB request at most
    before = _metric(server, 'instructor_requests_total{endpoint="/v1/embeddings",status="200"}')
    got = RemoteEncoder(server.url, api_key=KEY).encode(texts, DOC_INSTRUCTION)
    after = _metric(server, 'instructor_requests_total{endpoint="/v1/embeddings",status="200"}')
    assert after - before >= 2
    np.testing.assert_allclose(got, tiny_encoder.encode(texts, DOC_INSTRUCTION), atol=1e-5)
    with pytest.raises(ValueError, match=r"texts\[0\] is \d+ bytes as JSON, over the server's limit of 65536"):
        RemoteEncoder(server.url, api_key=KEY).encode(["x" * 70000])


def test_the_adapters_through_remote_encoder_equal_the_in_process_adapters(server, tiny_encoder):
    from instructor_integrations import RemoteEncoder
    from instructor_integrations.chroma import InstructorEmbeddingFunction
    from instructor_integrations.langchain import InstructorEmbeddings
    from instructor_integrations.llama_index import InstructorEmbedding

    remote = RemoteEncoder(server.url, api_key=KEY)
    texts, query = DOCS[:2], "What does INSTRUCTOR do?"
    settings = {"query_instruction": QUERY_INSTRUCTION}
    pairs = [
        (InstructorEmbeddings(encoder=remote, embed_instruction=DOC_INSTRUCTION, **settings),
         InstructorEmbeddings(encoder=tiny_encoder, embed_instruction=DOC_INSTRUCTION, **settings)),
    ]  # fmt: skip
    for through_server, local in pairs:
        np.testing.assert_allclose(through_server.embed_documents(texts), local.embed_documents(texts), atol=1e-5)
        np.testing.assert_allclose(through_server.embed_query(query), local.embed_query(query), atol=1e-5)
        got = asyncio.run(through_server.aembed_query(query))
        np.testing.assert_allclose(got, local.embed_query(query), atol=1e-5)
    li_remote = InstructorEmbedding(encoder=remote, text_instruction=DOC_INSTRUCTION, **settings)
    li_local = InstructorEmbedding(encoder=tiny_encoder, text_instruction=DOC_INSTRUCTION, **settings)
    np.testing.assert_allclose(
        li_remote.get_text_embedding_batch(texts), li_local.get_text_embedding_batch(texts), atol=1e-5
    )
    np.testing.assert_allclose(li_remote.get_query_embedding(query), li_local.get_query_embedding(query), atol=1e-5)
    ef_remote = InstructorEmbeddingFunction(encoder=remote, document_instruction=DOC_INSTRUCTION, **settings)
    ef_local = InstructorEmbeddingFunction(encoder=tiny_encoder, document_instruction=DOC_INSTRUCTION, **settings)
    np.testing.assert_allclose(np.asarray(ef_remote(texts)), np.asarray(ef_local(texts)), atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(ef_remote.embed_query([query])), np.asarray(ef_local.embed_query([query])), atol=1e-5
    )


@pytest.mark.parametrize("encoding_format", [None, "float"], ids=["sdk-default-base64", "float"])
def test_the_stock_openai_client_gets_the_same_vectors(server, tiny_encoder, encoding_format):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    # Without encoding_format the SDK asks for base64 and decodes it itself.
    extra = {} if encoding_format is None else {"encoding_format": encoding_format}
    response = client.embeddings.create(model=NAME, input=DOCS, extra_body={"instruction": DOC_INSTRUCTION}, **extra)
    got = np.asarray([item.embedding for item in response.data], dtype=np.float32)
    np.testing.assert_allclose(got, tiny_encoder.encode(DOCS, DOC_INSTRUCTION), atol=1e-5)


# ---------------------------------------------------------------------------------------- endpoints
def test_health_ready_models_and_metrics(server):
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}  # no key needed
    assert httpx.get(f"{server.url}/ready").json() == {"status": "ready", "model": NAME}
    assert httpx.get(f"{server.url}/v1/models").status_code == 401
    (model,) = httpx.get(f"{server.url}/v1/models", headers=AUTH).json()["data"]
    assert model["id"] == NAME and model["embedding_dimension"] == 24 and model["max_inputs_per_request"] == 64
    rows_before = _metric(server, "instructor_rows_total")
    vectors_of(post(server, {"input": ["a", "b", "c"], "instruction": None}))
    assert _metric(server, "instructor_rows_total") == rows_before + 3
    text = httpx.get(f"{server.url}/metrics").text
    for name in ("instructor_tokens_total", "instructor_batch_rows_bucket", "instructor_batch_tokens_bucket",
                 "instructor_request_duration_seconds_bucket", "instructor_queued_rows"):  # fmt: skip
        assert name in text


def _metric(server: EmbedServer, name: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


# ---------------------------------------------------------------------------------------- the bad-request battery
BIG = "x" * 70000
#: (case, body or raw bytes, headers (None: the key), status, code, a fragment of the message)
CASES: list[tuple[str, object, dict[str, str] | None, int, str | None, str]] = [
    ("malformed JSON", b'{"input": ', None, 400, "invalid_json", "not valid JSON"),
    ("body is a list", [1, 2], None, 400, "invalid_body", "must be a JSON object, got list"),
    ("body is a string", "hello", None, 400, "invalid_body", "must be a JSON object, got str"),
    ("no input", {"model": NAME}, None, 400, "missing_field", "'input' is required"),
    ("input is a number", {"input": 5}, None, 400, None, "must be a string or a list of strings, got int"),
    ("input is null", {"input": None}, None, 400, None, "got NoneType"),
    ("input is an empty list", {"input": []}, None, 400, None, "empty list"),
    ("input holds a number", {"input": ["a", 3.5]}, None, 400, None, "input[1] must be a str, got float"),
    ("input holds null", {"input": ["a", None]}, None, 400, None, "input[1] must be a str, got NoneType"),
    ("input is token ids", {"input": [[1, 2, 3]]}, None, 400, "unsupported_input", "token ids"),
    ("input has a lone surrogate", b'{"input": ["\\ud800"]}', None, 400, None, "input[0]"),
    ("a field name with a lone surrogate", b'{"input": "a", "\\ud800": 1}', None, 400, "unknown_field",
     "unrecognized field"),
    ("a 5,000-digit number", b'{"input": "a", "dimensions": ' + b"9" * 5000 + b"}", None, 400, "invalid_json",
     "not valid JSON"),
    ("JSON nested 5,000 deep", b'{"input": ' + b"[" * 5000 + b"]" * 5000 + b"}", None, 400, "invalid_json",
     "nested too deep"),
    ("too many inputs", {"input": ["a"] * 65}, None, 413, "too_many_inputs", "65 items; the limit is 64"),
    ("body too large", {"input": [BIG]}, None, 413, "request_too_large", "the limit is 65536"),
    ("unknown field", {"input": "a", "temperature": 1}, None, 400, "unknown_field", "'temperature'"),
    ("model is not a string", {"input": "a", "model": 5}, None, 400, None, "'model' must be a string"),
    ("model not served", {"input": "a", "model": "text-embedding-3-small"}, None, 404, "model_not_found",
     "'text-embedding-3-small' is not served here"),
    ("bad encoding_format", {"input": "a", "encoding_format": "int8"}, None, 400, None, "'float' or 'base64'"),
    ("dimensions", {"input": "a", "dimensions": 8}, None, 400, "unsupported_parameter", "cannot be shortened"),
    ("user is not a string", {"input": "a", "user": 5}, None, 400, None, "'user' must be a string"),
    ("bad priority", {"input": "a", "priority": "urgent"}, None, 400, None, "got 'urgent'"),
    ("instruction is a number", {"input": "a", "instruction": 5}, None, 400, None, "instruction"),
    ("instruction count", {"input": ["a", "b"], "instruction": ["x"]}, None, 400, None,
     "has 1 items but there are 2 texts"),
    ("instruction and task", {"input": "a", "instruction": "x", "task": "SciFact"}, None, 400,
     "conflicting_fields", "not both"),
    ("unknown task", {"input": "a", "task": "NoSuchDataset"}, None, 400, "unknown_task", "NoSuchDataset"),
    ("task is not a string", {"input": "a", "task": 3}, None, 400, None, "'task' must be a string"),
    ("bad input_type", {"input": "a", "input_type": "passage"}, None, 400, None, "got 'passage'"),
    ("no API key", {"input": "a"}, {}, 401, "invalid_api_key", "No API key given"),
    ("wrong API key", {"input": "a"}, {"Authorization": "Bearer nope"}, 401, "invalid_api_key", "Incorrect API key"),
    ("not a bearer key", {"input": "a"}, {"Authorization": f"Basic {KEY}"}, 401, "invalid_api_key", "Incorrect"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "headers", "status", "code", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_request_gets_its_status_code_and_message(server, case, body, headers, status, code, fragment):
    headers = dict(AUTH if headers is None else headers)
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
        response = httpx.post(f"{server.url}/v1/embeddings", content=body, headers=headers)
    else:
        response = httpx.post(f"{server.url}/v1/embeddings", json=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["type"] == "invalid_request_error"
    assert fragment in error["message"]
    assert httpx.get(f"{server.url}/health").status_code == 200  # and the server is none the worse


def test_unknown_paths_and_methods_answer_in_the_same_shape(server):
    missing = httpx.get(f"{server.url}/v1/nope", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = httpx.get(f"{server.url}/v1/embeddings", headers=AUTH)
    assert wrong.status_code == 405 and set(wrong.json()["error"]) == {"message", "type", "param", "code"}


def test_the_battery_is_listed_in_the_reliability_page():
    page = (ROOT / "docs" / "reliability.md").read_text("utf-8")
    rows = dict(re.findall(r"^\| ([^|]+?) \| (\d{3}) \|", page, flags=re.MULTILINE))
    assert {case: str(status) for case, _, _, status, _, _ in CASES}.items() <= rows.items()
    assert len(CASES) >= 25


def test_the_server_log_holds_no_input_text(server):
    post(server, {"input": [MARKER], "instruction": None})
    post(server, {"input": [MARKER, 5]})  # refused
    post(server, {"input": [MARKER], "task": "NoSuchDataset"})
    assert "Ready" in server.log()  # the log is the server's
    assert "zebra-marker" not in server.log()
