"""The server under pressure and faults: a full queue, SIGTERM with work in flight, kill -9 mid-ingest."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

DOC = "Represent the document for retrieval: "


def long_texts(n: int, words: int = 120, start: int = 0) -> list[str]:
    return [f"document {start + i}: " + " ".join(f"w{(start + i) * 7 + j}" for j in range(words)) for i in range(n)]


def test_a_full_queue_answers_503_with_retry_after_and_the_server_stays_up(embed_server, tmp_path, tiny_encoder):
    server = embed_server(tmp_path, "--max-queued-rows", "8").start()
    texts = long_texts(80)

    async def storm() -> tuple[list[httpx.Response], list[int]]:
        health: list[int] = []
        done = asyncio.Event()
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:

            async def probe() -> None:
                while not done.is_set():
                    health.append((await client.get("/health")).status_code)
                    await asyncio.sleep(0.01)

            prober = asyncio.create_task(probe())
            requests = [
                client.post("/v1/embeddings", json={"input": texts[i : i + 4], "instruction": DOC})
                for i in range(0, len(texts), 4)
            ]
            answers = await asyncio.gather(*requests)
            done.set()
            await prober
        return answers, health

    answers, health = asyncio.run(storm())
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) == {200, 503}, statuses
    for index, answer in enumerate(answers):
        if answer.status_code == 503:
            assert answer.headers["retry-after"] == "1"
            assert answer.json()["error"]["code"] == "queue_full"
        else:
            got = np.asarray([item["embedding"] for item in answer.json()["data"]], dtype=np.float32)
            np.testing.assert_allclose(got, tiny_encoder.encode(texts[4 * index : 4 * index + 4], DOC), atol=1e-5)
    assert health and set(health) == {200}
    # The queue drained: the next request is answered.
    assert httpx.post(f"{server.url}/v1/embeddings", json={"input": "after"}).status_code == 200


def test_sigterm_answers_the_accepted_requests_then_exits(embed_server, tmp_path, tiny_encoder):
    # Time enough for the forward passes on a loaded machine (they took over 30 s, the default, beside two busy loops).
    server = embed_server(tmp_path, "--graceful-timeout", "600").start()
    texts = long_texts(1500, words=60)
    # uvicorn finishes the accepted requests, shuts the app down, then re-raises the signal it caught.
    exit_code, response = _sigterm_while_embedding(server, texts)
    assert exit_code == -signal.SIGTERM
    assert "Application shutdown complete" in server.log()
    assert response.status_code == 200, (response.text, server.log()[-3000:])
    got = np.asarray([item["embedding"] for item in response.json()["data"]], dtype=np.float32)
    np.testing.assert_allclose(got[::100], tiny_encoder.encode(texts[::100], DOC), atol=1e-5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health")


@pytest.mark.skipif(
    sys.version_info < (3, 11), reason="a cancelled request is answered only where asyncio can uncancel"
)
def test_a_request_cut_off_by_the_graceful_timeout_is_told_503_not_500(embed_server, tmp_path):
    server = embed_server(tmp_path, "--graceful-timeout", "1").start()
    texts = long_texts(1500, words=60)  # many seconds of forward passes on any CPU
    exit_code, response = _sigterm_while_embedding(server, texts)
    assert exit_code == -signal.SIGTERM
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "shutting_down" and response.headers["retry-after"] == "5"
    log = server.log()
    assert "cut off by the shutdown: answered 503" in log
    assert "Traceback" not in log and "Unexpected" not in log


def _sigterm_while_embedding(server, texts: list[str]) -> tuple[int, httpx.Response]:
    """Post ``texts``, SIGTERM the server once they are all accepted: its exit code and the request's answer."""
    answer: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: answer.append(
            httpx.post(f"{server.url}/v1/embeddings", json={"input": texts, "instruction": DOC}, timeout=120)
        )
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not _queued(server) and time.monotonic() < deadline:  # accepted, being embedded
        time.sleep(0.005)
    assert _queued(server) == len(texts)
    exit_code = server.stop()
    thread.join(60)
    (response,) = answer
    return exit_code, response


def _queued(server) -> int:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith("instructor_queued_rows "):
            return int(float(line.split()[-1]))
    return 0


def test_kill_9_mid_ingest_then_restart_ends_with_exactly_the_records(embed_server, tmp_path, tiny_encoder):
    import chromadb

    from instructor_integrations import RemoteEncoder, ServerUnavailableError
    from instructor_integrations.chroma import InstructorEmbeddingFunction
    from instructor_integrations.vectorstores import get_collection, ingest_texts

    server = embed_server(tmp_path).start()
    remote = RemoteEncoder(server.url, max_retries=1, backoff=0.05)
    function = InstructorEmbeddingFunction(encoder=remote, document_instruction=DOC)
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    collection = get_collection(client, "docs", embedding=function)
    texts = long_texts(2000, words=40)
    errors: list[BaseException] = []

    def ingest() -> None:
        try:
            ingest_texts(collection, texts, batch_size=20, progress=False)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=ingest)
    thread.start()
    while collection.count() < 100 and thread.is_alive():
        time.sleep(0.01)
    server.kill()  # SIGKILL, requests in flight
    thread.join(60)
    stored = collection.count()
    assert 100 <= stored < len(texts)
    (error,) = errors
    assert isinstance(error, ServerUnavailableError)
    assert server.url in str(error) and "could not answer after 2 attempt(s)" in str(error)

    restarted = type(server)(tmp_path, port=server.port).start()
    result = ingest_texts(collection, texts, batch_size=20, progress=False)
    assert (result.skipped, result.written) == (stored, len(texts) - stored)
    assert collection.count() == len(texts)
    sample = collection.get(ids=[result.ids[0], result.ids[-1]], include=["embeddings", "documents"])
    expected = tiny_encoder.encode(sample["documents"], DOC)
    np.testing.assert_allclose(np.asarray(sample["embeddings"]), expected, atol=1e-5)
    restarted.kill()
