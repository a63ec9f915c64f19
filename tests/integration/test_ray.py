"""Ray Data into a real Chroma server: equal embeddings, and a SIGKILLed ingest that resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")
pytest.importorskip("chromadb")

from instructor_integrations import get_encoder
from instructor_integrations.instructions import GENERIC_RETRIEVAL

from ..conftest import TINY

pytestmark = [pytest.mark.slow, pytest.mark.integration]

N = 2000
TEXTS = [
    f"document {i}: the {['red', 'green', 'blue', 'black'][i % 4]} fox number {i} jumps {i % 13} times"
    for i in range(N)
]

SCRIPT = """
import json, sys, ray
from instructor_integrations.ray import ingest_to_chroma
host, port, name, model, texts_file, batch = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
texts = json.load(open(texts_file))
ds = ray.data.from_items([{"doc_id": f"doc-{i}", "text": t} for i, t in enumerate(texts)])
counts = ingest_to_chroma(ds, collection=name, host=host, port=port, model=model, id_column="doc_id",
                          batch_size=batch, concurrency=1, num_cpus=0.5, device="cpu")
print("COUNTS", json.dumps(counts.__dict__))
"""


def run_ingest(server: tuple[str, int], name: str, tmp_path: Path, batch: int, kill_at: int | None = None) -> dict:
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(TEXTS))
    command = [sys.executable, "-c", SCRIPT, server[0], str(server[1]), name, str(TINY), str(texts_file), str(batch)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    if kill_at is None:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        line = next(line for line in out.splitlines() if line.startswith("COUNTS"))
        return json.loads(line.split(" ", 1)[1])
    import chromadb

    client = chromadb.HttpClient(host=server[0], port=server[1])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            count = client.get_collection(name, embedding_function=None).count()
        except Exception:
            count = 0
        if count >= kill_at:
            break
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the driver and the local Ray it started
    process.wait(timeout=60)
    return {}


def stored(server: tuple[str, int], name: str) -> tuple[list[str], np.ndarray]:
    import chromadb

    collection = chromadb.HttpClient(host=server[0], port=server[1]).get_collection(name, embedding_function=None)
    got = collection.get(include=["embeddings"], limit=10 * N)
    order = np.argsort([int(i.split("-")[1]) for i in got["ids"]])
    return [got["ids"][i] for i in order], np.asarray(got["embeddings"], dtype=np.float32)[order]


def test_ray_ingest_equals_single_process(chroma_server, tmp_path: Path) -> None:
    counts = run_ingest(chroma_server, "ray-clean", tmp_path, batch=250)
    assert counts == {"embedded": N, "skipped": 0, "written": N}
    ids, vectors = stored(chroma_server, "ray-clean")
    assert ids == [f"doc-{i}" for i in range(N)]
    expected = get_encoder(str(TINY), device="cpu").encode(TEXTS, GENERIC_RETRIEVAL.document)
    assert np.abs(vectors - expected).max() <= 1e-5

    again = run_ingest(chroma_server, "ray-clean", tmp_path, batch=250)
    assert again == {"embedded": 0, "skipped": N, "written": 0}


def settle(server: tuple[str, int], name: str, quiet: float = 3.0, limit: float = 90.0) -> None:
    """Wait until the collection's count stops changing: a Ray worker outside the killed process
    group may still finish the write it had in flight."""
    import chromadb

    collection = chromadb.HttpClient(host=server[0], port=server[1]).get_collection(name, embedding_function=None)
    deadline = time.monotonic() + limit
    last = collection.count()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = collection.count()
        if now == last:
            return
        last = now
    raise AssertionError(f"{name!r} kept changing for {limit} s after the kill: {last} stored")


def test_sigkill_midway_then_resume(chroma_server, tmp_path: Path) -> None:
    run_ingest(chroma_server, "ray-killed", tmp_path, batch=100, kill_at=300)
    settle(chroma_server, "ray-killed")
    partial, _ = stored(chroma_server, "ray-killed")
    assert 0 < len(partial) < N, f"kill landed outside the run: {len(partial)} stored"
    counts = run_ingest(chroma_server, "ray-killed", tmp_path, batch=100)
    assert counts["skipped"] == len(partial)
    assert counts["embedded"] == counts["written"] == N - len(partial)
    ids, vectors = stored(chroma_server, "ray-killed")
    assert len(ids) == N and len(set(ids)) == N
    expected = get_encoder(str(TINY), device="cpu").encode(TEXTS, GENERIC_RETRIEVAL.document)
    assert np.abs(vectors - expected).max() <= 1e-5


def test_cli_ingest_with_ray(chroma_server, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(5):
        (folder / f"doc{i}.txt").write_text(f"Document {i} about the {['sea', 'sky', 'soil'][i % 3]}.\n")
    command = [
        sys.executable,
        "-m",
        "instructor_integrations.cli",
        "ingest",
        str(folder),
        "--collection",
        "ray-cli",
        "--host",
        chroma_server[0],
        "--port",
        str(chroma_server[1]),
        "--model",
        str(TINY),
        "--device",
        "cpu",
        "--ray",
        "--no-progress",
    ]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "chunks: 5  added: 5  skipped: 0" in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "added: 0  skipped: 5" in again.stdout
