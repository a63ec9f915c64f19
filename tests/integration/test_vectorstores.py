"""vectorstores helpers against real Chroma (embedded and a server)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("chromadb")

from instructor_integrations.chroma import InstructorEmbeddingFunction
from instructor_integrations.vectorstores import add_texts, chroma_client, get_collection, ingest_stream

from ..conftest import TINY


def test_relative_paths_from_two_directories_are_two_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ef = InstructorEmbeddingFunction(str(TINY), device="cpu")
    counts = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        collection = get_collection(chroma_client("./.chroma"), "same-name", embedding=ef)
        add_texts(collection, [f"text in {name}", f"other {name}"], progress=False)
        counts.append(collection.count())
    assert counts == [2, 2]
    assert (tmp_path / "a" / ".chroma").is_dir() and (tmp_path / "b" / ".chroma").is_dir()


def test_stream_skips_duplicates_and_existing(tmp_path: Path) -> None:
    ef = InstructorEmbeddingFunction(str(TINY), device="cpu")
    collection = get_collection(chroma_client(tmp_path / "db"), "stream", embedding=ef)
    rows = [("id-1", "first", {"k": 1}), ("id-2", "second", None), ("id-1", "first", {"k": 1}), "plain text"]
    first = ingest_stream(collection, iter(rows), batch_size=2, progress=False)
    assert (first.written, first.duplicates, first.skipped) == (3, 1, 0)
    again = ingest_stream(collection, iter(rows), batch_size=2, progress=False)
    assert (again.written, again.skipped) == (0, 3)
    assert collection.get(ids=["id-1"], include=["metadatas"])["metadatas"] == [{"k": 1}]


@pytest.mark.slow
def test_server_client_round_trip(chroma_server: tuple[str, int]) -> None:
    host, port = chroma_server
    client = chroma_client(host=host, port=port)
    ef = InstructorEmbeddingFunction(str(TINY), device="cpu")
    collection = get_collection(client, "server-round-trip", embedding=ef)
    ids = add_texts(collection, ["alpha", "beta", "gamma"], client=client, progress=False)
    assert collection.count() == 3
    assert add_texts(collection, ["alpha", "beta", "gamma"], client=client, progress=False) == ids
    assert collection.count() == 3
    hit = collection.query(query_texts=["beta"], n_results=1)["documents"][0][0]
    assert hit in {"alpha", "beta", "gamma"}
