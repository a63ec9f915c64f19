"""The server beside OpenAI's protocol: TEI's (``/embed``, ``/info``) with TEI's own clients, honest usage
after truncation, gzip bodies, clients that go away, and a 500 that says it closes the connection.

Every test talks to a real ``instructor-embed serve`` process on 127.0.0.1 over HTTP.
"""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests.integration.conftest import EmbedServer, free_port

pytestmark = pytest.mark.integration
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

KEY = "tei-key-41c9"
AUTH = {"Authorization": f"Bearer {KEY}"}
# instructor_integrations.instructions.GENERIC_RETRIEVAL: the pair the server uses without a task, and the
# one LlamaIndex writes into the text for INSTRUCTOR models.
QUERY = "Represent the question for retrieving supporting documents: "
DOCUMENT = "Represent the document for retrieval: "
TEXTS = ["What causes the tides?", "  The moon's gravity pulls the oceans.  ", "Bees navigate by the sun."]
LONG = "word " * 2000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    process = EmbedServer(tmp_path_factory.mktemp("tei"), "--api-key", KEY, "--max-request-bytes", "65536").start()
    yield process
    process.kill()


def tei(server: EmbedServer, body: object, path: str = "/embed", **kwargs: object) -> httpx.Response:
    headers = kwargs.pop("headers", AUTH)
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]


def metric(server: EmbedServer, name: str, **labels: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in text.splitlines():
        if line.startswith(name + ("{" + wanted + "}" if wanted else " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def healthy_and_right(server: EmbedServer, tiny_encoder) -> None:
    """After any case: /health 200, and the next request gets the right vectors."""
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    response = tei(server, {"inputs": TEXTS[:1], "instruction": DOCUMENT})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(np.asarray(response.json()), tiny_encoder.encode(TEXTS[:1], DOCUMENT), atol=1e-5)


# ------------------------------------------------------------------------------ TEI's protocol
@pytest.mark.parametrize(
    ("prompt_name", "instruction"),
    [(None, DOCUMENT), ("query", QUERY), ("document", DOCUMENT), ("SciFact:query", "SciFact query")],
)
def test_huggingface_inference_client_gets_the_in_process_vectors(
    server, tiny_encoder, prompt_name, instruction, monkeypatch
):
    from huggingface_hub import InferenceClient, constants

    # The client refuses every URL in offline mode, this server's on 127.0.0.1 too; the hub stays unreached.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    from instructor_integrations.instructions import get_preset

    if instruction == "SciFact query":
        instruction = get_preset("SciFact", "tiny-instructor").query
    client = InferenceClient(base_url=server.url, api_key=KEY)
    got = client.feature_extraction(TEXTS, prompt_name=prompt_name)
    np.testing.assert_allclose(got, tiny_encoder.encode(TEXTS, instruction), atol=1e-5)
    one = client.feature_extraction(TEXTS[0], prompt_name=prompt_name)  # one string: still a list of one vector
    np.testing.assert_allclose(np.asarray(one).reshape(1, -1), tiny_encoder.encode(TEXTS[:1], instruction), atol=1e-5)


def test_llama_index_text_embeddings_inference_gets_queries_and_documents_with_their_instructions(server, tiny_encoder):
    tei_client = pytest.importorskip("llama_index.embeddings.text_embeddings_inference")
    # For an INSTRUCTOR model name, LlamaIndex writes the generic instructions into the texts; the server
    # takes them out again as the instructions.
    model = tei_client.TextEmbeddingsInference(model_name="hkunlp/instructor-base", base_url=server.url, auth_token=KEY)
    np.testing.assert_allclose(model.get_query_embedding(TEXTS[0]), tiny_encoder.encode(TEXTS[:1], QUERY)[0], atol=1e-5)
    np.testing.assert_allclose(model.get_text_embedding_batch(TEXTS), tiny_encoder.encode(TEXTS, DOCUMENT), atol=1e-5)


def test_explicit_instructions_normalize_and_info(server, tiny_encoder):
    rows = [QUERY, None, DOCUMENT]
    response = tei(server, {"inputs": TEXTS, "instruction": rows, "normalize": False})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(np.asarray(response.json()), tiny_encoder.encode(TEXTS, rows), atol=1e-5)
    info = httpx.get(f"{server.url}/info", headers=AUTH, timeout=10).json()
    assert info["max_input_length"] == tiny_encoder.max_seq_length
    assert info["max_client_batch_size"] == 2048 and info["auto_truncate"] is True
    assert info["model_type"] == {"embedding": {"pooling": "mean"}}


@pytest.mark.parametrize(
    ("body", "headers", "status", "kind", "fragment"),
    [
        ({"inputs": []}, AUTH, 422, "Validation", "non-empty list"),
        ({"inputs": [[1, 2, 3]]}, AUTH, 422, "Validation", "token ids"),
        ({"inputs": "a", "nope": 1}, AUTH, 422, "Validation", "unrecognized field(s) 'nope'"),
        ({"inputs": "a", "truncation_direction": "Left"}, AUTH, 422, "Validation", "must be 'Right'"),
        ({"inputs": "a", "prompt_name": "sideways"}, AUTH, 422, "Validation", "'query', 'document'"),
        ({"inputs": "a", "prompt_name": "NoSuchTask:query"}, AUTH, 422, "Validation", "NoSuchTask"),
        ({"inputs": "a", "dimensions": 8}, AUTH, 422, "Validation", "cannot be shortened"),
        ({"inputs": [LONG], "truncate": False}, AUTH, 413, "Validation", "send 'truncate': true"),
        ({"inputs": "a"}, {}, 401, "Unauthorized", "No API key"),
    ],
)
def test_tei_errors_have_teis_shape(server, tiny_encoder, body, headers, status, kind, fragment):
    response = tei(server, body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error_type"] == kind
    assert fragment in response.json()["error"]
    healthy_and_right(server, tiny_encoder)


# ------------------------------------------------------------------------------ usage and truncation
def test_usage_counts_the_tokens_embedded_and_says_what_was_truncated(server, tiny_encoder):
    before = metric(server, "instructor_truncated_inputs_total")
    response = httpx.post(
        f"{server.url}/v1/embeddings", json={"input": [LONG, "short"], "instruction": None}, headers=AUTH, timeout=60
    )
    assert response.status_code == 200, response.text
    full = tiny_encoder.count_tokens([LONG, "short"])
    assert full[0] > tiny_encoder.max_seq_length  # the long one is truncated
    assert response.json()["usage"]["prompt_tokens"] == tiny_encoder.max_seq_length + full[1]
    assert response.headers["X-Truncated-Inputs"] == "1"
    assert metric(server, "instructor_truncated_inputs_total") == before + 1
    plain = httpx.post(f"{server.url}/v1/embeddings", json={"input": ["short"]}, headers=AUTH, timeout=60)
    assert "X-Truncated-Inputs" not in plain.headers
    tei_long = tei(server, {"inputs": [LONG], "instruction": None, "truncate": True})
    assert tei_long.headers["X-Truncated-Inputs"] == "1"
    np.testing.assert_allclose(np.asarray(tei_long.json()), tiny_encoder.encode([LONG]), atol=1e-5)


# ------------------------------------------------------------------------------ gzip
def test_gzip_bodies_are_decoded_within_the_byte_limit(server, tiny_encoder):
    import json

    body = json.dumps({"input": TEXTS, "instruction": DOCUMENT}).encode()
    headers = {**AUTH, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = httpx.post(f"{server.url}/v1/embeddings", content=gzip.compress(body), headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    got = np.asarray([item["embedding"] for item in response.json()["data"]], dtype=np.float32)
    np.testing.assert_allclose(got, tiny_encoder.encode(TEXTS, DOCUMENT), atol=1e-5)
    # 10 MB of text that compresses to a few KB: refused at the 64 KiB limit, not inflated in memory.
    bomb = gzip.compress(json.dumps({"input": ["a" * 10_000_000]}).encode())
    assert len(bomb) < 65536
    response = httpx.post(f"{server.url}/v1/embeddings", content=bomb, headers=headers, timeout=60)
    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")
    response = httpx.post(f"{server.url}/v1/embeddings", content=b"not gzip at all", headers=headers, timeout=60)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_gzip")
    brotli = {**headers, "Content-Encoding": "br"}
    response = httpx.post(f"{server.url}/v1/embeddings", content=body, headers=brotli, timeout=60)
    assert (response.status_code, response.json()["error"]["code"]) == (415, "unsupported_content_encoding")
    healthy_and_right(server, tiny_encoder)


# ------------------------------------------------------------------------------ clients that go away
def test_a_client_that_disconnects_mid_body_is_counted_apart_not_as_a_500(server, tiny_encoder):
    closed_before = metric(server, "instructor_requests_total", endpoint="/v1/embeddings", status="client_closed")
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            head = (
                f"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            )
            sock.sendall(head.encode() + b'{"input": ["half a bo')
            time.sleep(0.05)
    deadline = time.monotonic() + 30
    while metric(server, "instructor_requests_total", endpoint="/v1/embeddings", status="client_closed") < (
        closed_before + 5
    ):
        assert time.monotonic() < deadline, httpx.get(f"{server.url}/metrics").text
        time.sleep(0.1)
    assert metric(server, "instructor_requests_total", endpoint="/v1/embeddings", status="500") == 0
    assert "Traceback" not in server.log() and "ClientDisconnect" not in server.log()
    healthy_and_right(server, tiny_encoder)


def test_a_client_that_goes_away_while_queued_has_its_rows_dropped(embed_server, tmp_path, tiny_encoder):
    """A bulk request keeps the model busy; a second one is queued behind it, then its client leaves."""
    import json
    import threading

    server = embed_server(tmp_path, "--api-key", KEY).start()  # default byte limit: the busy request is 7 MB

    rows_before = metric(server, "instructor_rows_total")
    closed_before = metric(server, "instructor_requests_total", endpoint="/v1/embeddings", status="client_closed")
    busy = [f"{i} " + "word " * 600 for i in range(2048)]  # each cut at the token limit: seconds of work
    answer: list[httpx.Response] = []
    worker = threading.Thread(
        target=lambda: answer.append(
            httpx.post(
                f"{server.url}/v1/embeddings", json={"input": busy, "priority": "bulk"}, headers=AUTH, timeout=600
            )
        )
    )
    worker.start()
    deadline = time.monotonic() + 60
    while metric(server, "instructor_queued_rows") < len(busy):  # the bulk request is queued
        assert time.monotonic() < deadline
        time.sleep(0.05)
    body = json.dumps({"input": [f"queued text {i}" for i in range(10)], "priority": "bulk"}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = (
            f"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        while metric(server, "instructor_queued_rows") < len(busy) + 10:  # its rows joined the queue
            assert time.monotonic() < deadline
            time.sleep(0.02)
    worker.join(timeout=600)
    assert answer and answer[0].status_code == 200
    closed = metric(server, "instructor_requests_total", endpoint="/v1/embeddings", status="client_closed")
    assert closed == closed_before + 1
    assert metric(server, "instructor_rows_total") == rows_before + len(busy)  # the 10 rows were never embedded
    assert metric(server, "instructor_queued_rows") == 0
    healthy_and_right(server, tiny_encoder)


# ------------------------------------------------------------------------------ a 500 closes honestly
def test_a_server_fault_is_a_500_that_says_connection_close(tmp_path: Path):
    port = free_port()
    script = tmp_path / "faulty.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import numpy as np
            from instructor_integrations.server import ServerSettings, run_server

            class Faulty:
                model_name = "faulty"
                embedding_dimension = 4
                def encode(self, texts, instruction=None, **kwargs): raise RuntimeError("boom")
                def encode_pairs(self, pairs, **kwargs): raise RuntimeError("boom")
                async def aencode(self, texts, instruction=None, **kwargs): raise RuntimeError("boom")
                async def aencode_pairs(self, pairs, **kwargs): raise RuntimeError("boom")
                def close(self): pass

            run_server(Faulty(), ServerSettings(model_name="faulty"), port={port})
            """
        )
    )
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=10) as client:
            for path, body, key in (
                ("/v1/embeddings", {"input": ["a"]}, "error"),
                ("/embed", {"inputs": "a"}, "error"),
            ):
                response = client.post(path, json=body)
                assert response.status_code == 500
                assert response.headers["connection"] == "close"
                assert "RuntimeError" in str(response.json()[key])
            # The pooled client opens a new connection and carries on.
            assert client.get("/health").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
