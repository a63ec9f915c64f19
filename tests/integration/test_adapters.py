"""The three adapters on one shared encoder: identical vectors, instructions routed, stores wired."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("chromadb")
pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

import chromadb

from instructor_integrations import InstructorEncoder, get_encoder
from instructor_integrations.chroma import InstructorEmbeddingFunction
from instructor_integrations.instructions import GENERIC_RETRIEVAL, get_preset
from instructor_integrations.langchain import InstructorEmbeddings
from instructor_integrations.llama_index import InstructorEmbedding
from instructor_integrations.vectorstores import add_texts, chroma_client, get_collection, ingest_texts

from ..conftest import TINY

DOCS = [
    "INSTRUCTOR embeds every text together with an instruction.",
    "Chroma stores vectors and their documents.",
    "The quick brown fox jumps over the lazy dog.",
    "  Whitespace around a document is stripped.  ",
]
QUERY = "Which model uses instructions?"


def name() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="module")
def encoder() -> InstructorEncoder:
    return get_encoder(str(TINY), device="cpu")


@pytest.fixture(scope="module")
def adapters(encoder: InstructorEncoder):
    kwargs = {"model_name": str(TINY), "device": "cpu"}
    return (
        InstructorEmbeddings(**kwargs),
        InstructorEmbedding(**kwargs),
        InstructorEmbeddingFunction(str(TINY), device="cpu"),
    )


def test_one_model_in_memory(adapters, encoder: InstructorEncoder) -> None:
    lc, li, ch = adapters
    assert lc.instructor_encoder is encoder
    assert li.instructor_encoder is encoder
    assert ch.encoder is encoder
    assert lc.instructor_encoder.model is ch.encoder.model


def test_num_workers_is_routed_to_one_shared_encoder(tiny_path: str, encoder: InstructorEncoder) -> None:
    # Worker processes start at the first multi-batch call; building the adapters starts none.
    lc = InstructorEmbeddings(model_name=tiny_path, device="cpu", num_workers=2)
    ch = InstructorEmbeddingFunction(tiny_path, device="cpu", num_workers=2)
    pooled = lc.instructor_encoder
    assert pooled.num_workers == 2 and encoder.num_workers == 1
    assert ch.encoder is pooled
    # LlamaIndex's own num_workers (concurrent async jobs) keeps its meaning; worker processes come
    # with an encoder that has them.
    li = InstructorEmbedding(model_name=tiny_path, device="cpu", num_workers=2)
    assert li.num_workers == 2 and li.instructor_encoder is encoder
    assert InstructorEmbedding(encoder=pooled).instructor_encoder is pooled
    assert pooled._pool is not None and not pooled._pool.started
    assert "num_workers" not in ch.get_config()
    with pytest.raises(ValueError, match="num_workers must be a positive int, got 0"):
        InstructorEmbeddingFunction(tiny_path, device="cpu", num_workers=0)


def test_compile_is_routed_to_one_compiled_encoder(tiny_path: str, encoder: InstructorEncoder) -> None:
    # torch.compile runs at the first forward pass; building the adapters compiles nothing yet.
    lc = InstructorEmbeddings(model_name=tiny_path, device="cpu", compile=True)
    li = InstructorEmbedding(model_name=tiny_path, device="cpu", compile=True)
    ch = InstructorEmbeddingFunction(tiny_path, device="cpu", compile=True)
    compiled = lc.instructor_encoder
    assert compiled.compiled and not encoder.compiled
    assert compiled is not encoder
    assert li.instructor_encoder is compiled and ch.encoder is compiled
    # A runtime choice, like the device: not saved with a collection.
    assert "compile" not in ch.get_config()
    with pytest.raises(TypeError, match="compile must be True or False, got 'yes'"):
        InstructorEmbeddingFunction(tiny_path, device="cpu", compile="yes")  # type: ignore[arg-type]


def test_explicit_encoder_is_shared(tiny_path: str) -> None:
    own = InstructorEncoder(tiny_path, device="cpu", batch_size=4)
    assert InstructorEmbeddings(model_name=tiny_path, encoder=own).instructor_encoder is own
    assert InstructorEmbedding(model_name=tiny_path, encoder=own).instructor_encoder is own
    assert InstructorEmbeddingFunction(tiny_path, encoder=own).encoder is own


def test_identical_vectors_through_every_adapter(adapters, encoder: InstructorEncoder) -> None:
    lc, li, ch = adapters
    docs = encoder.encode(DOCS, GENERIC_RETRIEVAL.document)
    query = encoder.encode([QUERY], GENERIC_RETRIEVAL.query)[0]
    for got in (lc.embed_documents(DOCS), li.get_text_embedding_batch(DOCS), ch(DOCS)):
        np.testing.assert_allclose(np.asarray(got), docs, atol=1e-5)
    for got in (lc.embed_query(QUERY), li.get_query_embedding(QUERY), ch.embed_query([QUERY])[0]):
        np.testing.assert_allclose(np.asarray(got), query, atol=1e-5)
    # and the two instructions really differ
    assert np.abs(encoder.encode([QUERY], GENERIC_RETRIEVAL.document)[0] - query).max() > 1e-3


def test_task_presets_set_both_instructions(tiny_path: str) -> None:
    preset = get_preset("SciFact")
    lc = InstructorEmbeddings(model_name=tiny_path, device="cpu", task="SciFact")
    li = InstructorEmbedding(model_name=tiny_path, device="cpu", task="SciFact")
    ch = InstructorEmbeddingFunction(tiny_path, device="cpu", task="SciFact")
    assert (lc.query_instruction, lc.embed_instruction) == (preset.query, preset.document)
    assert (li.query_instruction, li.text_instruction) == (preset.query, preset.document)
    assert (ch.query_instruction, ch.document_instruction) == (preset.query, preset.document)
    explicit = InstructorEmbeddings(model_name=tiny_path, device="cpu", task="SciFact", query_instruction="Q: ")
    assert explicit.query_instruction == "Q: " and explicit.embed_instruction == preset.document


def test_langchain_fields_are_strict(tiny_path: str) -> None:
    with pytest.raises(ValueError, match="extra"):
        InstructorEmbeddings(model_name=tiny_path, device="cpu", multi_process=True)  # model_kwargs= is mapped now
    with pytest.raises(ValueError, match="no instruction preset"):
        InstructorEmbeddings(model_name=tiny_path, device="cpu", task="NoSuchDataset")


async def test_async_methods_match_sync(adapters) -> None:
    lc, li, _ = adapters
    assert await lc.aembed_documents(DOCS) == lc.embed_documents(DOCS)
    assert await lc.aembed_query(QUERY) == lc.embed_query(QUERY)
    assert await li.aget_text_embedding_batch(DOCS) == li.get_text_embedding_batch(DOCS)
    assert await li.aget_query_embedding(QUERY) == li.get_query_embedding(QUERY)


def test_llama_index_batches_are_whole(tiny_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One encoder call per batch request; forward passes of embed_batch_size rows."""
    from instructor_integrations import InstructorEncoder

    encoder = InstructorEncoder(tiny_path, device="cpu")
    model = InstructorEmbedding(model_name=tiny_path, encoder=encoder, embed_batch_size=3)
    calls: list[int] = []
    passes: list[int] = []
    original_encode, original_forward = encoder.encode, encoder._runner.tokenize

    def spy_encode(texts, instruction=None, **kwargs):
        calls.append(len(texts))
        return original_encode(texts, instruction, **kwargs)

    def spy_forward(prompt, bodies):
        passes.append(len(bodies))
        return original_forward(prompt, bodies)

    monkeypatch.setattr(encoder, "encode", spy_encode)
    monkeypatch.setattr(encoder._runner, "tokenize", spy_forward)
    texts = [f"text {'x ' * i}" for i in range(7)]
    got = model.get_text_embedding_batch(texts)
    assert calls == [7]
    assert passes == [3, 3, 1]
    expected = original_encode(texts, model.text_instruction)
    assert np.abs(np.asarray(got) - expected).max() <= 1e-5


def test_llama_index_serialization_round_trip(tiny_path: str) -> None:
    model = InstructorEmbedding(model_name=tiny_path, device="cpu", task="NFCorpus", embed_batch_size=5)
    data = model.to_dict()
    assert data["class_name"] == "InstructorIntegrationsEmbedding"
    assert "_encoder" not in data and "encoder" not in data
    json.dumps(data)  # no weights, plain JSON
    again = InstructorEmbedding.from_dict(data)
    assert again.query_instruction == model.query_instruction and again.embed_batch_size == 5
    assert again.get_query_embedding("x") == model.get_query_embedding("x")


def test_llama_index_settings_and_index(adapters) -> None:
    from llama_index.core import Document, Settings, VectorStoreIndex

    _, li, _ = adapters
    Settings.embed_model = li
    try:
        index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS])
        hits = index.as_retriever(similarity_top_k=1).retrieve(DOCS[2])
        assert hits[0].text == DOCS[2]
    finally:
        Settings.embed_model = None  # type: ignore[assignment]


def test_chroma_config_round_trip(adapters) -> None:
    _, _, ch = adapters
    config = ch.get_config()
    assert "device" not in config and "trust_remote_code" not in config
    rebuilt = InstructorEmbeddingFunction.build_from_config(config)
    assert rebuilt.get_config() == config
    assert ch.default_space() == "cosine"
    assert not ch.is_legacy()
    from chromadb.utils.embedding_functions import known_embedding_functions

    assert known_embedding_functions[InstructorEmbeddingFunction.name()] is InstructorEmbeddingFunction
    assert InstructorEmbeddingFunction.name() != "instructor"


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"model_name": "m", "trust_remote_code": True}, "refused"),
        ({"model_name": "m", "colour": "blue"}, "unknown config key 'colour'"),
        ({"model_name": 3}, "'model_name' must be str"),
        ({"model_name": "m", "max_seq_length": "512"}, "'max_seq_length' must be int or None"),
        ({"model_name": "m", "instructor_pooling": "yes"}, "'instructor_pooling' must be bool or None"),
        ({"document_instruction": "x"}, "must contain 'model_name'"),
    ],
)
def test_chroma_config_validation(config: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        InstructorEmbeddingFunction.validate_config(config)


def test_chroma_refuses_instruction_change(adapters) -> None:
    _, _, ch = adapters
    with pytest.raises(ValueError, match="cannot change 'query_instruction'"):
        ch.validate_config_update(ch.get_config(), {"query_instruction": "Represent something else: "})


def test_collection_query_uses_query_instruction(adapters, encoder: InstructorEncoder) -> None:
    _, _, ch = adapters
    collection = get_collection(chromadb.EphemeralClient(), name(), embedding=ch)
    add_texts(collection, DOCS, progress=False)
    result = collection.query(query_texts=[QUERY], n_results=len(DOCS), include=["distances", "documents"])
    docs = encoder.encode(DOCS, GENERIC_RETRIEVAL.document)
    with_query = 1 - docs @ encoder.encode([QUERY], GENERIC_RETRIEVAL.query)[0]
    with_document = 1 - docs @ encoder.encode([QUERY], GENERIC_RETRIEVAL.document)[0]
    got = dict(zip(result["documents"][0], result["distances"][0], strict=True))
    expected = {doc: d for doc, d in zip(DOCS, with_query, strict=True)}
    wrong = {doc: d for doc, d in zip(DOCS, with_document, strict=True)}
    for doc in DOCS:
        assert abs(got[doc] - expected[doc]) < 1e-4
    assert max(abs(got[doc] - wrong[doc]) for doc in DOCS) > 1e-3


def test_ingesting_twice_adds_nothing(tmp_path: Path, adapters) -> None:
    _, _, ch = adapters
    client = chroma_client(tmp_path / "db")
    collection = get_collection(client, "twice", embedding=ch)
    texts = [f"document number {i} about topic {i % 17}" for i in range(1000)]
    first = ingest_texts(collection, texts, client=client, batch_size=300, progress=False)
    assert (first.written, first.skipped, collection.count()) == (1000, 0, 1000)
    second = ingest_texts(collection, texts, client=client, batch_size=300, progress=False)
    assert (second.written, second.skipped, collection.count()) == (0, 1000, 1000)
    assert second.ids == first.ids


def test_bad_metadata_writes_nothing(adapters) -> None:
    _, _, ch = adapters
    collection = get_collection(chromadb.EphemeralClient(), name(), embedding=ch)
    metadatas = [{"n": i} for i in range(9)] + [{"bad": object()}]
    with pytest.raises(ValueError, match=r"metadatas\[9\]"):
        add_texts(collection, [f"t{i}" for i in range(10)], metadatas=metadatas, batch_size=2, progress=False)
    assert collection.count() == 0


REOPEN = """
import json, sys
import chromadb
import instructor_integrations.chroma  # registers the function; nothing is passed below
client = chromadb.PersistentClient(path=sys.argv[1])
collection = client.get_collection(sys.argv[2])
result = collection.query(query_texts=[sys.argv[3]], n_results=3)
print(json.dumps({"ids": result["ids"][0], "distances": result["distances"][0],
                  "config": collection.configuration_json["embedding_function"]}))
"""


def test_persisted_collection_reopens_in_new_process(tmp_path: Path, tiny_path: str) -> None:
    """The saved config rebuilds the function in a new process, on whatever device that machine has.

    precision="exact" is saved with the collection, so the reopened function embeds in float32 on a GPU
    too, and the distances agree to float32 rounding (docs/reliability.md: with the default dtype="auto"
    a GPU reopens in bfloat16, and distances then differ by up to about 1e-2).
    """
    ef = InstructorEmbeddingFunction(tiny_path, device="cpu", task="SciFact", precision="exact")
    client = chroma_client(tmp_path / "db")
    collection = get_collection(client, "persisted", embedding=ef)
    add_texts(collection, DOCS, progress=False)
    found = collection.query(query_texts=[QUERY], n_results=3)
    here, distances = found["ids"][0], found["distances"][0]
    del client, collection
    out = subprocess.run(
        [sys.executable, "-c", REOPEN, str(tmp_path / "db"), "persisted", QUERY],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    reopened = json.loads(out.stdout.strip().splitlines()[-1])
    assert reopened["ids"] == here
    assert reopened["config"]["config"]["precision"] == "exact"
    assert max(abs(a - b) for a, b in zip(reopened["distances"], distances, strict=True)) <= 1e-5
    assert reopened["config"]["name"] == "instructor_integrations"
    assert reopened["config"]["config"]["query_instruction"] == get_preset("SciFact").query


@pytest.mark.parametrize("pooling", [True, False])
def test_every_adapter_sets_instructor_pooling(golden: dict, pooling: bool) -> None:
    """instructor_pooling reaches the encoder from each adapter, and all three share that encoder."""
    kwargs = {"model_name": str(TINY), "device": "cpu", "instructor_pooling": pooling}
    lc, li = InstructorEmbeddings(**kwargs), InstructorEmbedding(**kwargs)
    ch = InstructorEmbeddingFunction(str(TINY), device="cpu", instructor_pooling=pooling)
    assert lc.instructor_encoder is li.instructor_encoder is ch.encoder
    assert ch.encoder.instructor_pooling is pooling
    instruction, text = next(pair for pair in golden["pairs"] if len(pair[0].split()) > 2)
    pooled = np.asarray(lc.instructor_encoder.encode([text], instruction))
    reference = get_encoder(str(TINY), device="cpu").encode([text], instruction)  # the checkpoint's default: on
    assert np.allclose(pooled, reference, atol=1e-5) is pooling
