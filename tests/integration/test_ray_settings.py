"""Every encoder setting reaches the Ray actors (``embed_dataset``, ``ingest_to_chroma``, ``ingest --ray``).

The actors are built here from exactly the constructor arguments Ray would hand them (Ray itself runs in
``test_ray.py``, in the slow suite), so each setting is checked where the actor's encoder is made.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from instructor_integrations import EncoderSettings, clear_encoder_cache
from tests.conftest import TINY

pytestmark = pytest.mark.integration


def chosen(tmp_path: Path) -> dict[str, Any]:
    """A value other than the default for every setting that needs neither a GPU nor a compiler."""
    values = {
        "device": "cpu",
        "precision": "exact",
        "max_seq_length": 96,
        "batch_size": 7,
        "token_budget": 777,
        "cache_folder": str(tmp_path),
        "local_files_only": True,
        "trust_remote_code": True,
        "instructor_pooling": False,
        "num_workers": 2,
    }
    defaults = EncoderSettings().as_kwargs()
    assert all(values[name] != defaults[name] for name in values)
    untested = set(defaults) - set(values) - {"model_name_or_path", "show_progress_bar", "compile", "dtype"}
    assert not untested  # dtype excludes precision; compile needs a compiler; actors never show a bar
    return values


class FakeDataset:
    """Records what ``map_batches`` is given (the callable class and its constructor arguments)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def columns(self) -> list[str]:
        return ["text", "doc_id"]

    def map_batches(self, fn: Any, **kwargs: Any) -> FakeDataset:
        self.calls.append((fn, kwargs))
        return self

    def iter_rows(self) -> list[dict[str, int]]:
        return []


def check_actor(fn: Any, kwargs: dict[str, Any], values: dict[str, Any]) -> None:
    clear_encoder_cache()
    actor_kwargs = dict(kwargs["fn_constructor_kwargs"])
    actor = fn.__new__(fn)
    # Build only the encoder part of the actor (a Chroma writer would also connect to its server).
    from instructor_integrations.encoder import get_encoder

    settings = actor_kwargs["settings"]
    assert isinstance(settings, EncoderSettings)
    actor.encoder = get_encoder(settings)
    resolved = actor.encoder.settings
    for name, value in values.items():
        assert getattr(resolved, name) == value, name
    assert resolved.show_progress_bar is False
    actor.encoder.close()
    clear_encoder_cache()


def test_embed_dataset_hands_every_setting_to_its_actors(tmp_path: Path) -> None:
    from instructor_integrations.ray import embed_dataset

    values = chosen(tmp_path)
    ds = FakeDataset()
    # Ray's batch_size is its own; the encoder's rows per forward pass come in the settings, the rest by name.
    kwargs = {name: value for name, value in values.items() if name != "batch_size"}
    settings = EncoderSettings("ignored: model= names it", batch_size=values["batch_size"])
    embed_dataset(ds, model=str(TINY), instruction="Represent: ", batch_size=50, settings=settings, **kwargs)
    ((fn, kwargs),) = ds.calls
    assert kwargs["batch_size"] == 50  # Ray's rows per batch, apart from the encoder's rows per forward pass
    check_actor(fn, kwargs, values)


def test_ingest_to_chroma_hands_every_setting_to_its_writers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("chromadb")
    import instructor_integrations.vectorstores as stores
    from instructor_integrations.ray import ingest_to_chroma

    saved: dict[str, Any] = {}
    no_collections = SimpleNamespace(list_collections=lambda: [])
    monkeypatch.setattr(stores, "chroma_client", lambda **_: no_collections)
    monkeypatch.setattr(stores, "get_collection", lambda client, name, embedding: saved.update(embedding.get_config()))
    values = chosen(tmp_path)
    settings = EncoderSettings(str(TINY), **values)
    ds = FakeDataset()
    ingest_to_chroma(ds, collection="c", host="127.0.0.1", model=str(TINY), id_column="doc_id", settings=settings)
    ((fn, kwargs),) = ds.calls
    check_actor(fn, kwargs, values)
    # The saved collection config records the settings that decide the vectors.
    assert (saved["precision"], saved["max_seq_length"], saved["instructor_pooling"]) == ("exact", 96, False)


def test_unknown_and_bad_settings_fail_on_the_driver() -> None:
    from instructor_integrations.ray import embed_dataset

    with pytest.raises(TypeError, match=r"unknown encoder setting.*'max_len'.*the settings are: model_name_or_path"):
        embed_dataset(FakeDataset(), model=str(TINY), max_len=3)
    with pytest.raises(ValueError, match="max_seq_length must be a positive int, got 0"):
        embed_dataset(FakeDataset(), model=str(TINY), max_seq_length=0)


def test_cli_ingest_with_ray_passes_every_model_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ingest --ray``: each model option reaches the actors' settings; --batch-size is the encoder's, not Ray's."""
    import instructor_integrations.ray as ray_module
    from instructor_integrations.cli import main
    from instructor_integrations.ray import FileIngestReport

    seen: dict[str, Any] = {}

    def fake(paths: Any, **kwargs: Any) -> FileIngestReport:
        seen.update(kwargs)
        raise RuntimeError("stop here")  # no server needed: what matters is what would be sent

    monkeypatch.setattr(ray_module, "ingest_files_with_ray", fake)
    doc = tmp_path / "a.txt"
    doc.write_text("Tides follow the moon.")
    argv = ["ingest", str(doc), "--collection", "c", "--host", "127.0.0.1", "--ray", "--no-progress",
            "--model", str(TINY), "--device", "cpu", "--precision", "exact", "--max-seq-length", "96",
            "--batch-size", "7", "--token-budget", "777", "--cache-folder", str(tmp_path), "--local-files-only",
            "--no-instructor-pooling", "--ray-batch-size", "50"]  # fmt: skip
    assert main(argv) == 1
    settings = seen["settings"]
    assert (settings.device, settings.precision, settings.max_seq_length, settings.batch_size) == (
        "cpu",
        "exact",
        96,
        7,
    )
    assert (settings.token_budget, settings.cache_folder, settings.local_files_only) == (777, str(tmp_path), True)
    assert settings.instructor_pooling is False and seen["files_per_batch"] == 50


def test_the_ray_writer_writes_through_the_one_store_writer(tiny_encoder) -> None:
    """Ray's writer: the metadata checks, id and skip rules of ingest_stream, its vectors the actor's encoder's."""
    chromadb = pytest.importorskip("chromadb")
    import json

    import numpy as np

    from instructor_integrations.ray import _METADATA_COLUMN, _ChromaWriter

    collection = chromadb.EphemeralClient().create_collection("ray-writer", embedding_function=None)
    writer = _ChromaWriter.__new__(_ChromaWriter)  # what __init__ sets, without a Chroma server
    writer.encoder, writer.instruction, writer.collection = tiny_encoder, "Represent the note: ", collection
    writer.max_batch, writer.text_column, writer.id_column = 2, "text", "id"
    texts = ["Tides follow the moon.", "Bees dance.", "Ice floats.", "Bees dance."]
    batch = {
        "id": np.array(["a", "b", "c", "b"]),
        "text": np.array(texts),
        _METADATA_COLUMN: np.array([json.dumps({"n": i}) for i in range(4)]),
    }
    first = writer(dict(batch))
    assert (int(first["written"][0]), int(first["skipped"][0])) == (3, 0)  # "b" twice in one call: one record
    again = writer(dict(batch))
    assert (int(again["written"][0]), int(again["skipped"][0])) == (0, 3)
    stored = collection.get(ids=["a", "b", "c"], include=["embeddings", "metadatas"])
    expected = tiny_encoder.encode(texts[:3], "Represent the note: ")
    np.testing.assert_allclose(np.asarray(stored["embeddings"]), expected, atol=1e-6)
    assert stored["metadatas"] == [{"n": 0}, {"n": 1}, {"n": 2}]
    bad = {**batch, "id": np.array(["d", "e", "f", "g"]), _METADATA_COLUMN: np.array(['{"n": {"a": 1}}'] * 4)}
    with pytest.raises((TypeError, ValueError), match="is not valid Chroma metadata"):
        writer(bad)
    assert collection.count() == 3  # nothing of the bad batch written
