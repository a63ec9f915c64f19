"""The ingestion rules users rely on: chunk identity, updates by id, batch limits, partial failures."""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("chromadb")

import chromadb

from instructor_integrations.chroma import InstructorEmbeddingFunction
from instructor_integrations.cli import EXIT_OK, main
from instructor_integrations.instructions import GENERIC_RETRIEVAL
from instructor_integrations.sources import Record, read_records
from instructor_integrations.vectorstores import content_id, get_collection, ingest_stream, ingest_texts

from ..conftest import TINY

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ef() -> InstructorEmbeddingFunction:
    return InstructorEmbeddingFunction(str(TINY), device="cpu")


def fresh(ef: InstructorEmbeddingFunction, client=None):  # type: ignore[no-untyped-def]
    return get_collection(client or chromadb.EphemeralClient(), f"rules-{uuid.uuid4().hex[:10]}", embedding=ef)


# ---------------------------------------------------------------------- chunk identity
@pytest.fixture
def notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "tides.md").write_text("# Tides\nThe moon's gravity raises the tides. " * 12)
    (folder / "bees.txt").write_text("Bees dance to show where the flowers are.\n")
    (tmp_path / "link-to-notes").symlink_to(folder, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return folder


def ingest(capsys: pytest.CaptureFixture[str], db: Path, path: str) -> str:
    argv = ["ingest", path, "--collection", "notes", "--db", str(db), "--model", str(TINY), "--device", "cpu"]
    assert main([*argv, "--chunk-tokens", "40", "--chunk-overlap-tokens", "8", "--no-progress"]) == EXIT_OK
    return capsys.readouterr().out


def test_every_spelling_of_a_folder_names_the_same_chunks(
    notes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db"
    first = ingest(capsys, db, "notes")
    chunks = int(first.split("chunks: ")[1].split()[0])
    assert chunks > 2 and f"added: {chunks}" in first
    for spelling in (str(notes), "./notes/", "link-to-notes", str(tmp_path / "link-to-notes" / "..") + "/notes"):
        again = ingest(capsys, db, spelling)
        assert "files: 2" in again and f"added: 0  skipped: {chunks}" in again, (spelling, again)
    stored = chromadb.PersistentClient(path=str(db)).get_collection("notes", embedding_function=None)
    assert stored.count() == chunks
    sources = {meta["source"] for meta in stored.get(include=["metadatas"])["metadatas"]}
    assert sources == {str((notes / "tides.md").resolve()), str((notes / "bees.txt").resolve())}


def test_a_file_named_twice_is_read_once(notes: Path) -> None:
    records = list(read_records(["notes", "notes/bees.txt", "link-to-notes/bees.txt"]))
    assert len({r.metadata["source"] for r in records}) == 2
    assert len(records) == len({r.id for r in records})


def test_content_id_is_the_same_in_another_process() -> None:
    import subprocess
    import sys

    code = "from instructor_integrations.vectorstores import content_id; print(content_id('hello', {'chunk': 0}))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # a per-process hash would differ here
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert other.stdout.strip() == content_id("hello", {"chunk": 0})
    # A hash of the text and the metadata, both: different text or metadata, different id.
    assert len({content_id("hello"), content_id("hello!"), content_id("hello", {"chunk": 1})}) == 3
    assert content_id("hello", {"a": 1, "b": 2}) == content_id("hello", {"b": 2, "a": 1})


# ---------------------------------------------------------------------- given ids
def test_a_given_id_with_new_content_is_updated(ef: InstructorEmbeddingFunction) -> None:
    collection = fresh(ef)
    ingest_texts(collection, ["old text one", "text two"], ids=["a", "b"], progress=False)
    result = ingest_texts(collection, ["new text one", "text two"], ids=["a", "b"], progress=False)
    assert (result.written, result.skipped) == (1, 1)  # the changed row is updated, the unchanged one skipped
    got = collection.get(ids=["a"], include=["documents", "embeddings"])
    assert got["documents"] == ["new text one"]
    expected = ef.encoder.encode(["new text one"], GENERIC_RETRIEVAL.document)
    np.testing.assert_allclose(np.asarray(got["embeddings"]), expected, atol=1e-5)
    assert collection.count() == 2


def _by_texts(collection, rows, **kwargs):  # type: ignore[no-untyped-def]
    ids, texts, metas = zip(*rows, strict=True)
    return ingest_texts(collection, list(texts), ids=list(ids), metadatas=list(metas), progress=False, **kwargs)


def _by_stream(collection, rows, **kwargs):  # type: ignore[no-untyped-def]
    return ingest_stream(collection, iter(rows), progress=False, **kwargs)


@pytest.mark.parametrize("write", [_by_texts, _by_stream], ids=["ingest_texts", "ingest_stream"])
def test_both_writers_skip_what_is_stored_unchanged_and_update_what_changed(
    ef: InstructorEmbeddingFunction, monkeypatch: pytest.MonkeyPatch, write
) -> None:  # type: ignore[no-untyped-def]
    """One skip rule for both writers: unchanged rows are not embedded again; a changed text or metadata is."""
    collection = fresh(ef)
    rows = [("a", "alpha", {"n": 1}), ("b", "beta", {"n": 2}), ("c", "gamma", {"n": 3})]
    assert write(collection, rows).written == 3
    embedded: list[str] = []
    real = ef.encoder.encode
    monkeypatch.setattr(ef.encoder, "encode", lambda texts, *a, **k: embedded.extend(texts) or real(texts, *a, **k))
    changed = [("a", "alpha", {"n": 1}), ("b", "beta, edited", {"n": 2}), ("c", "gamma", {"n": 30})]
    result = write(collection, changed)
    assert (result.written, result.skipped, embedded) == (2, 1, ["beta, edited", "gamma"])
    got = collection.get(ids=["b", "c"], include=["documents", "metadatas"])
    assert got["documents"] == ["beta, edited", "gamma"] and got["metadatas"][1] == {"n": 30}
    embedded.clear()
    kept = write(collection, [("a", "alpha, edited", {"n": 1})], skip_existing=True)
    assert (kept.written, kept.skipped, embedded) == (0, 1, [])
    forced = write(collection, changed, skip_existing=False)
    assert (forced.written, forced.skipped, len(embedded)) == (3, 0, 3)


def test_skip_existing_keeps_the_stored_record_for_a_given_id(ef: InstructorEmbeddingFunction) -> None:
    collection = fresh(ef)
    ingest_texts(collection, ["old text"], ids=["a"], progress=False)
    result = ingest_texts(collection, ["new text", "other"], ids=["a", "b"], skip_existing=True, progress=False)
    assert (result.written, result.skipped) == (1, 1)
    assert collection.get(ids=["a"])["documents"] == ["old text"]


def test_content_ids_skip_what_is_stored_and_skip_existing_false_rewrites(
    ef: InstructorEmbeddingFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    collection = fresh(ef)
    texts = [f"document {i}" for i in range(5)]
    first = ingest_texts(collection, texts, progress=False)
    assert first.ids == [content_id(t) for t in texts] and first.written == 5
    embedded: list[int] = []
    real = ef.encoder.encode
    monkeypatch.setattr(ef.encoder, "encode", lambda rows, *a, **k: embedded.append(len(rows)) or real(rows, *a, **k))
    again = ingest_texts(collection, [*texts, "document 5"], progress=False)
    assert (again.written, again.skipped, embedded) == (1, 5, [1])  # only the new row is embedded
    forced = ingest_texts(collection, texts, skip_existing=False, progress=False)
    assert (forced.written, forced.skipped) == (5, 0) and collection.count() == 6


# ---------------------------------------------------------------------- batch limits
class SmallServer:
    """A real client that reports a small maximum batch size, as a Chroma server with a low limit does."""

    def __init__(self, limit: int) -> None:
        self.client = chromadb.EphemeralClient()
        self.limit = limit

    def get_max_batch_size(self) -> int:
        return self.limit


@pytest.mark.parametrize("stream", [False, True])
def test_writes_are_split_at_the_clients_maximum_batch_size(ef: InstructorEmbeddingFunction, stream: bool) -> None:
    server = SmallServer(7)
    collection = fresh(ef, server.client)
    sizes: list[int] = []
    real = collection.upsert

    def spy(**kwargs):  # type: ignore[no-untyped-def]
        sizes.append(len(kwargs["ids"]))
        return real(**kwargs)

    collection.upsert = spy  # type: ignore[method-assign]
    texts = [f"row {i}" for i in range(30)]
    if stream:
        result = ingest_stream(collection, iter(texts), client=server, batch_size=100, progress=False)
    else:
        result = ingest_texts(collection, texts, client=server, batch_size=100, progress=False)
    assert result.written == 30 == collection.count()
    assert max(sizes) == 7 and len(sizes) == math.ceil(30 / 7)


# ---------------------------------------------------------------------- partial failures
def test_ingest_stream_keeps_the_batches_written_before_a_bad_record(ef: InstructorEmbeddingFunction) -> None:
    collection = fresh(ef)
    good = [Record(f"id-{i}", f"text {i}", {"n": i}) for i in range(25)]

    def with_a_bad_record():  # type: ignore[no-untyped-def]
        yield from good[:22]
        yield Record("id-bad", None, {})  # type: ignore[arg-type]  # the third batch of 10 fails validation
        yield from good[22:]

    with pytest.raises(TypeError, match=r"records\[\]\.text\[2\] must be a str"):
        ingest_stream(collection, with_a_bad_record(), batch_size=10, progress=False)
    assert sorted(collection.get()["ids"]) == sorted(r.id for r in good[:20])  # two whole batches, nothing of the third
    rerun = ingest_stream(collection, iter(good), batch_size=10, progress=False)
    assert (rerun.skipped, rerun.written, collection.count()) == (20, 5, 25)


def test_ingest_stream_keeps_earlier_batches_when_embedding_fails(
    ef: InstructorEmbeddingFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    collection = fresh(ef)
    real = ef.encoder.encode
    calls = {"n": 0}

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash in the second batch")
        return real(*args, **kwargs)

    monkeypatch.setattr(ef.encoder, "encode", flaky)
    texts = [f"stream text {i}" for i in range(30)]
    with pytest.raises(RuntimeError, match="second batch"):
        ingest_stream(collection, iter(texts), batch_size=10, progress=False)
    assert collection.count() == 10
    monkeypatch.setattr(ef.encoder, "encode", real)
    rerun = ingest_stream(collection, iter(texts), batch_size=10, progress=False)
    assert (rerun.skipped, rerun.written, collection.count()) == (10, 20, 30)


def test_bad_metadata_anywhere_writes_nothing(ef: InstructorEmbeddingFunction) -> None:
    collection = fresh(ef)
    metadatas = [{"n": i} for i in range(30)]
    metadatas[25] = {"nested": {"not": "allowed"}}
    with pytest.raises(ValueError, match=r"metadatas\[25\]"):
        ingest_texts(collection, [f"t{i}" for i in range(30)], metadatas=metadatas, batch_size=10, progress=False)
    assert collection.count() == 0
