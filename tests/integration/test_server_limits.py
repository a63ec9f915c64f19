"""Bounds before the body, against a real server over raw sockets: header size, header and body time,
keep-alive, the connection cap, and a refused body that closes its connection. After each case the
server answers /health and the right vectors.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest

from tests.integration.conftest import EmbedServer

pytestmark = pytest.mark.integration
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

LIMITS = ["--header-timeout", "2", "--body-timeout", "2", "--keep-alive-timeout", "1", "--max-request-bytes", "65536"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    process = EmbedServer(tmp_path_factory.mktemp("limits"), *LIMITS).start()
    yield process
    process.kill()


def connect(server: EmbedServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return sock


def read_until_closed(sock: socket.socket, limit: float = 30) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started, data = time.monotonic(), b""
    sock.settimeout(limit)
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - started


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def healthy_and_right(server: EmbedServer, tiny_encoder) -> None:
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    body = {"input": ["Tides follow the moon."], "instruction": None}
    response = httpx.post(f"{server.url}/v1/embeddings", json=body, timeout=60)
    got = np.asarray(response.json()["data"][0]["embedding"], dtype=np.float32)
    np.testing.assert_allclose(got, tiny_encoder.encode(["Tides follow the moon."])[0], atol=1e-5)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc")
def test_a_256_mib_header_is_cut_off_at_the_limit_and_memory_stays(server, tiny_encoder) -> None:
    healthy_and_right(server, tiny_encoder)
    before = rss_mib(server.process.pid)
    sent, chunk = 0, b"a" * (1 << 20)
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(256):
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server closed the connection: the rest is never read
            pass
        answer, _ = read_until_closed(sock)
    assert sent < 64 << 20, f"the server read {sent >> 20} MiB of one header"
    assert not answer or answer.startswith(b"HTTP/1.1 400"), answer[:100]
    assert rss_mib(server.process.pid) - before < 32
    healthy_and_right(server, tiny_encoder)


def test_a_head_that_stops_gets_408_and_an_idle_connection_is_closed(server, tiny_encoder) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # no blank line: the head never ends
        answer, seconds = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert 1.5 < seconds < 15
    with connect(server) as sock:  # says nothing at all
        answer, seconds = read_until_closed(sock)
    assert answer == b"" and 1.5 < seconds < 15
    healthy_and_right(server, tiny_encoder)


def test_a_body_that_stops_gets_408_in_openais_shape_and_the_connection_closes(server, tiny_encoder) -> None:
    with connect(server) as sock:
        head = (
            b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        sock.sendall(head + b'{"input": ')
        answer, seconds = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"code": "body_timeout"' in answer and b"connection: close" in answer.lower()
    assert 1.5 < seconds < 15
    healthy_and_right(server, tiny_encoder)


def test_a_kept_alive_connection_closes_after_the_keep_alive_time(server, tiny_encoder) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer, seconds = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200") and b'{"status":"ok"}' in answer
    assert seconds < 15  # closed by the server after --keep-alive-timeout 1, not left open
    healthy_and_right(server, tiny_encoder)


def test_a_chunked_body_past_the_limit_gets_413_and_its_connection_closes(server, tiny_encoder) -> None:
    with connect(server) as sock:
        head = b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        piece = b"a" * 16384
        sock.sendall(head)
        try:
            for _ in range(8):  # 128 KiB, past the 64 KiB limit; the last chunk never comes
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        except OSError:
            pass
        answer, seconds = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"request_too_large" in answer and seconds < 15  # closed at once, not after the body timeout
    healthy_and_right(server, tiny_encoder)


def test_connections_past_the_cap_get_503(tmp_path: Path, tiny_encoder) -> None:
    server = EmbedServer(tmp_path, "--max-connections", "4", "--header-timeout", "60").start()
    try:
        held = [connect(server) for _ in range(4)]
        time.sleep(0.5)  # accepted by the server
        with connect(server) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer, _ = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:100]
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.url}/health", timeout=10).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        healthy_and_right(server, tiny_encoder)
    finally:
        server.kill()
