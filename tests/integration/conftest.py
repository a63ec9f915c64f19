"""A real Chroma server for the tests that need one (started here, on 127.0.0.1, stopped afterwards)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    pytest.importorskip("chromadb")
    executable = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    if not Path(executable).exists():
        pytest.skip("the `chroma` command (package chromadb) is not installed")
    port = free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    log = open(folder / "server.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [executable, "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    import chromadb

    deadline = time.monotonic() + 90
    while True:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
            break
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"Chroma server did not start: {(folder / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield "127.0.0.1", port
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


class EmbedServer:
    """`instructor-embed serve` in a subprocess on a free port of 127.0.0.1; its log in a file."""

    def __init__(self, folder: Path, *args: str, model: str | None = None, port: int | None = None) -> None:
        from tests.conftest import TINY

        self.folder = folder
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"serve-{self.port}.log"
        device = [] if "--device" in args else ["--device", "cpu"]
        self.args = ["--model", model or str(TINY), *device, "--port", str(self.port), *args]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> EmbedServer:
        import httpx

        log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "instructor_integrations.cli", "serve", *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"the embedding server did not start: {self.log()[-3000:]}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait: the exit code."""
        assert self.process is not None
        self.process.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def embed_server(tmp_path: Path) -> Iterator[type[EmbedServer]]:
    """A factory of servers, all stopped after the test: ``embed_server(tmp_path, "--api-key", "k").start()``."""
    started: list[EmbedServer] = []

    class Tracked(EmbedServer):
        def start(self, timeout: float = 120) -> EmbedServer:
            started.append(self)
            return super().start(timeout)

    yield Tracked
    for server in started:
        server.kill()
