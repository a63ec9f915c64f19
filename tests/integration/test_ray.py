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
import json, sys, time, ray
from instructor_integrations.ray import ingest_to_chroma
host, port, name, model, texts_file, batch = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
hold_from = int(sys.argv[7]) if len(sys.argv) > 7 else None
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
texts = json.load(open(texts_file))
ds = ray.data.from_items([{"doc_id": f"doc-{i}", "text": t} for i, t in enumerate(texts)])
if hold_from is not None:
    # Rows from hold_from on never reach the writer: the run stops there until it is killed. In order,
    # one batch at a time, so every row before hold_from is written first.
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    def hold(rows):
        while any(int(i.split("-")[1]) >= hold_from for i in rows["doc_id"]):
            time.sleep(1)
        return rows
    ds = ds.map_batches(hold, batch_size=batch, concurrency=1)
counts = ingest_to_chroma(ds, collection=name, host=host, port=port, model=model, id_column="doc_id",
                          batch_size=batch, concurrency=1, num_cpus=0.5, device="cpu")
print("COUNTS", json.dumps(counts.__dict__))
"""


def run_ingest(server: tuple[str, int], name: str, tmp_path: Path, batch: int, kill_at: int | None = None) -> dict:
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(TEXTS))
    command = [sys.executable, "-c", SCRIPT, server[0], str(server[1]), name, str(TINY), str(texts_file), str(batch)]
    if kill_at is not None:
        command.append(str(kill_at))  # the run holds there, so the kill lands mid-run on any machine
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
        time.sleep(0.2)
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
    assert partial == [f"doc-{i}" for i in range(300)], f"{len(partial)} stored"  # everything before the hold
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
    # The records carry the same ids, text and metadata as an ingest without Ray would write.
    import chromadb

    from instructor_integrations.sources import read_records

    expected = {record.id: record for record in read_records([folder])}
    got = chromadb.HttpClient(host=chroma_server[0], port=chroma_server[1]).get_collection(
        "ray-cli", embedding_function=None
    )
    rows = got.get(include=["documents", "metadatas", "embeddings"])
    assert set(rows["ids"]) == set(expected)
    for rid, text, metadata in zip(rows["ids"], rows["documents"], rows["metadatas"], strict=True):
        assert (text, metadata) == (expected[rid].text, expected[rid].metadata)
    vectors = get_encoder(str(TINY), device="cpu").encode(rows["documents"], GENERIC_RETRIEVAL.document)
    assert np.abs(np.asarray(rows["embeddings"]) - vectors).max() <= 1e-5


@pytest.fixture(scope="module")
def local_ray():  # type: ignore[no-untyped-def]
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray
    ray.shutdown()


def test_embed_dataset_adds_the_encoder_vectors(local_ray) -> None:  # type: ignore[no-untyped-def]
    from instructor_integrations.ray import embed_dataset

    texts = TEXTS[:50]
    ds = local_ray.data.from_items([{"text": t, "n": i} for i, t in enumerate(texts)])
    out = embed_dataset(ds, model=str(TINY), instruction="Represent the sentence: ", batch_size=16, device="cpu")
    rows = sorted(out.take_all(), key=lambda row: row["n"])
    assert [row["text"] for row in rows] == texts
    got = np.stack([np.asarray(row["embedding"], dtype=np.float32) for row in rows])
    expected = get_encoder(str(TINY), device="cpu").encode(texts, "Represent the sentence: ")
    assert np.abs(got - expected).max() <= 1e-5


def test_ingest_to_chroma_with_content_ids_and_metadata(local_ray, chroma_server) -> None:  # type: ignore[no-untyped-def]
    import chromadb

    from instructor_integrations.ray import ingest_to_chroma
    from instructor_integrations.vectorstores import content_id

    rows = [
        {"text": t, "metadata_json": json.dumps({"n": i, "colour": t.split()[3]})} for i, t in enumerate(TEXTS[:40])
    ]
    rows.append(dict(rows[0]))  # the same text and metadata again: one record
    ds = local_ray.data.from_items(rows)
    counts = ingest_to_chroma(
        ds,
        collection="ray-content-ids",
        host=chroma_server[0],
        port=chroma_server[1],
        model=str(TINY),
        batch_size=16,
        device="cpu",
    )
    assert counts.written == 40
    collection = chromadb.HttpClient(host=chroma_server[0], port=chroma_server[1]).get_collection(
        "ray-content-ids", embedding_function=None
    )
    got = collection.get(include=["metadatas", "documents"])
    expected = {content_id(r["text"], json.loads(r["metadata_json"])): r for r in rows}
    assert sorted(got["ids"]) == sorted(expected)
    for rid, text, metadata in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
        assert text == expected[rid]["text"] and metadata == json.loads(expected[rid]["metadata_json"])
    again = ingest_to_chroma(
        local_ray.data.from_items(rows),
        collection="ray-content-ids",
        host=chroma_server[0],
        port=chroma_server[1],
        model=str(TINY),
        batch_size=16,
        device="cpu",
    )
    assert (again.embedded, again.written, again.skipped) == (0, 0, 41)


def test_cli_ray_ingest_chunks_on_the_workers(local_ray, chroma_server, tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """``ingest --ray``: the driver loads no model; the stored chunks equal an in-process ingest's; an edit
    removes the chunks it left behind; a bad input is named after the run, the other files written."""
    import chromadb

    import instructor_integrations.encoder as encoder_module
    from instructor_integrations.chunking import Chunker
    from instructor_integrations.cli import main
    from instructor_integrations.sources import read_records

    folder = tmp_path / "docs"
    folder.mkdir()
    long = " ".join(f"Sentence {i} is about the {['sea', 'sky', 'soil'][i % 3]}." for i in range(60))
    (folder / "long.md").write_text(f"# Tides\n\n{long}\n\n# Winds\n\nThe wind turns.\n")
    for i in range(4):
        (folder / f"doc{i}.txt").write_text(f"Document {i} about the {['sea', 'sky', 'soil'][i % 3]}.\n")
    host, port = chroma_server

    def no_model_here(*args: object, **kwargs: object) -> None:
        raise AssertionError("the driver loaded a model")

    # The actors are other processes: only the driver is forbidden to load a model.
    monkeypatch.setattr(encoder_module.InstructorEncoder, "__init__", no_model_here)
    argv = ["ingest", str(folder), "--collection", "ray-files", "--host", host, "--port", str(port),
            "--model", str(TINY), "--device", "cpu", "--ray", "--no-progress", "--chunk-tokens", "40",
            "--ray-batch-size", "2"]  # fmt: skip
    assert main(argv) == 0
    monkeypatch.undo()
    first = capsys.readouterr().out
    chunker = Chunker.for_encoder(get_encoder(str(TINY), device="cpu"), GENERIC_RETRIEVAL.document, max_tokens=40)
    expected = {record.id: record for record in read_records([folder], chunker=chunker)}
    assert len(expected) > 6  # the long file was cut into several chunks
    assert f"files: 5  chunks: {len(expected)}  added: {len(expected)}  skipped: 0  removed: 0" in first
    collection = chromadb.HttpClient(host=host, port=port).get_collection("ray-files", embedding_function=None)
    rows = collection.get(include=["documents", "metadatas", "embeddings"])
    assert set(rows["ids"]) == set(expected)
    for rid, text, metadata in zip(rows["ids"], rows["documents"], rows["metadatas"], strict=True):
        assert (text, metadata) == (expected[rid].text, expected[rid].metadata)
    vectors = get_encoder(str(TINY), device="cpu").encode(rows["documents"], GENERIC_RETRIEVAL.document)
    assert np.abs(np.asarray(rows["embeddings"]) - vectors).max() <= 1e-5

    # An edit: the changed file's old chunks go; a malformed JSONL line is named, the rest is written.
    (folder / "doc0.txt").write_text("Document 0 is now about the moon.\n")
    (folder / "rows.jsonl").write_text('{"text": "a good row"}\n{"text": 3}\n')
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "rows.jsonl:2" in error and "the other files were written" in error
    assert main([*argv, "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "rows.jsonl:2" in captured.err
    # The failed run had written every good chunk already; this one removes doc0's old chunk.
    n = len(expected) + 1
    assert f"files: 6  chunks: {n}  added: 0  skipped: {n}  removed: 1  bad inputs: 1" in captured.out
    now = collection.get(include=["documents"])["documents"]
    assert "Document 0 is now about the moon." in now and "Document 0 about the sea." not in now
    assert "a good row" in now


def test_cli_ray_ingest_refuses_chunks_that_do_not_fit_before_writing(  # type: ignore[no-untyped-def]
    local_ray, chroma_server, tmp_path: Path, capsys
) -> None:
    """``--chunk-tokens`` past what fits with the instruction is refused as in one process: one message naming
    the value and the room there is, exit 2, and no collection left behind."""
    import chromadb

    from instructor_integrations.cli import main

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("The sea rises with the moon.\n")
    host, port = chroma_server
    argv = ["ingest", str(folder), "--collection", "ray-too-long", "--host", host, "--port", str(port),
            "--model", str(TINY), "--device", "cpu", "--no-progress", "--chunk-tokens", "100000"]  # fmt: skip
    assert main(argv) == 2
    alone = capsys.readouterr().err
    assert main([*argv, "--ray"]) == 2
    error = capsys.readouterr().err
    assert "max_tokens=100000 does not fit" in alone
    # Ray Data logs its own traceback; the CLI's message is one line that names the value and the room.
    ours = [line for line in error.splitlines() if "the Ray workers could not start" in line]
    assert len(ours) == 1, error[-3000:]
    assert "removed again" in ours[0] and "max_tokens=100000 does not fit" in ours[0] and "room for" in ours[0]
    names = [c if isinstance(c, str) else c.name for c in chromadb.HttpClient(host=host, port=port).list_collections()]
    assert "ray-too-long" not in names
