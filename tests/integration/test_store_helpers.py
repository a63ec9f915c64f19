"""The store helpers: Chroma clients, the LangChain and LlamaIndex stores, and what ingestion reports."""

from __future__ import annotations

import logging
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("chromadb")
pytest.importorskip("langchain_chroma")
pytest.importorskip("llama_index.core")

import chromadb

from instructor_integrations import vectorstores
from instructor_integrations.chroma import InstructorEmbeddingFunction
from instructor_integrations.instructions import GENERIC_RETRIEVAL
from instructor_integrations.vectorstores import (
    add_texts,
    chroma_client,
    content_id,
    get_collection,
    ingest_stream,
    ingest_texts,
    langchain_vectorstore,
    llama_index_index,
)

from ..conftest import TINY

pytestmark = pytest.mark.integration


class Recorder:
    """Stands in for chromadb's client classes: records what they were built with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.result: Any = None

    def client(self, kind: str):  # type: ignore[no-untyped-def]
        def build(**kwargs: Any) -> Any:
            self.calls.append((kind, kwargs))
            return kind if self.result is None else self.result

        return build


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(chromadb, "HttpClient", recorder.client("http"))
    monkeypatch.setattr(chromadb, "PersistentClient", recorder.client("persistent"))
    return recorder


def test_chroma_client_embedded_at_an_absolute_folder(
    recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert chroma_client() == "persistent"
    assert chroma_client("db") == "persistent"
    (_, default), (_, given) = recorder.calls
    assert default["path"] == str(tmp_path.resolve() / ".chroma")
    assert given["path"] == str(tmp_path.resolve() / "db")
    assert default["settings"].anonymized_telemetry is False


def test_chroma_client_for_a_server(recorder: Recorder) -> None:
    assert chroma_client(host="chroma.local") == "http"
    assert chroma_client(host="chroma.local", port=9000) == "http"
    (_, default), (_, given) = recorder.calls
    assert (default["host"], default["port"]) == ("chroma.local", 8000)
    assert (given["host"], given["port"]) == ("chroma.local", 9000)
    assert given["settings"].anonymized_telemetry is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "db", "host": "h"}, "give either path (embedded Chroma) or host/port (a Chroma server), not both"),
        ({"host": "h", "port": 0}, "port must be an int in 1..65535, got 0"),
        ({"host": "h", "port": 65536}, "port must be an int in 1..65535, got 65536"),
        ({"host": "h", "port": True}, "port must be an int in 1..65535, got True"),
        ({"host": "h", "port": "80"}, "port must be an int in 1..65535, got '80'"),
        ({"port": 8000}, "port was given without host; pass host= for a Chroma server"),
    ],
)
def test_chroma_client_refuses_bad_settings(recorder: Recorder, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        chroma_client(**kwargs)
    assert str(info.value) == message
    assert recorder.calls == []


@pytest.mark.parametrize("port", [1, 65535])
def test_chroma_client_port_bounds(recorder: Recorder, port: int) -> None:
    chroma_client(host="h", port=port)
    assert recorder.calls[0][1]["port"] == port


def test_without_chromadb_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "chromadb", None)
    with pytest.raises(ImportError, match=r'pip install "instructor-integrations\[chroma\]"'):
        chroma_client()


# ---------------------------------------------------------------------- what ingestion writes and reports
class SmallClient:
    """A client whose maximum batch size is ``limit``, as a Chroma server with a low limit reports."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def get_max_batch_size(self) -> int:
        return self.limit


def record_writes(collection: Any, *methods: str) -> list[int]:
    """Make ``collection``'s write methods record how many rows each call writes."""
    sizes: list[int] = []
    for name in methods or ("upsert",):
        real = getattr(collection, name)
        setattr(collection, name, lambda real=real, **kw: sizes.append(len(kw["ids"])) or real(**kw))
    return sizes


@pytest.fixture(scope="module")
def ef() -> InstructorEmbeddingFunction:
    return InstructorEmbeddingFunction(str(TINY), device="cpu")


def fresh(ef: InstructorEmbeddingFunction, client: Any = None) -> Any:
    return get_collection(client or chromadb.EphemeralClient(), f"helpers-{uuid.uuid4().hex[:10]}", embedding=ef)


def test_content_ids_include_the_metadata(ef: InstructorEmbeddingFunction) -> None:
    collection = fresh(ef)
    metadatas = [{"source": "a.txt"}, {"source": "b.txt"}]
    result = ingest_texts(collection, ["same text", "same text"], metadatas=metadatas, progress=False)
    assert result.ids == [content_id("same text", m) for m in metadatas] and result.written == 2
    got = collection.get(ids=result.ids, include=["metadatas"])
    assert [m["source"] for m in got["metadatas"]] == ["a.txt", "b.txt"]


def test_batch_size_splits_writes_without_a_client(ef: InstructorEmbeddingFunction) -> None:
    collection = fresh(ef)
    sizes = record_writes(collection)
    ingest_texts(collection, [f"t{i}" for i in range(10)], batch_size=4, progress=False)
    assert sizes == [4, 4, 2]


def test_add_texts_passes_every_setting_on(ef: InstructorEmbeddingFunction) -> None:
    collection = fresh(ef)
    sizes = record_writes(collection)
    ids = add_texts(
        collection, ["a", "b", "c", "d"], metadatas=[{"n": i} for i in range(4)], client=SmallClient(3), progress=False
    )
    assert sizes == [3, 1] and ids == [content_id(t, {"n": i}) for i, t in enumerate("abcd")]
    assert add_texts(collection, ["e", "f"], ids=["x", "y"], batch_size=1, progress=False) == ["x", "y"]
    assert sizes[-2:] == [1, 1]


def test_progress_bars_and_the_log_line(
    ef: InstructorEmbeddingFunction, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    collection = fresh(ef)
    with caplog.at_level(logging.INFO, logger="instructor_integrations.vectorstores"):
        ingest_texts(collection, ["one", "two"], progress=True)  # a bar when asked
        ingest_stream(collection, iter(["three"]), progress=True)
        add_texts(collection, ["four"], progress=True)
    err = capsys.readouterr().err
    assert err.count("Ingesting") >= 3 and "2/2" in err
    assert f"Ingested into {collection.name}: 2 written, 0 already present" in caplog.text
    assert f"Ingested into {collection.name}: 1 written" in caplog.text
    # By default, library code shows a bar on a terminal only: none here (stderr is captured, not a terminal).
    ingest_texts(collection, ["five"])
    ingest_stream(collection, iter(["six"]))
    add_texts(collection, ["seven"])
    ingest_texts(collection, ["eight"], progress=False)
    assert "Ingesting" not in capsys.readouterr().err


def test_bad_stream_records_are_named(ef: InstructorEmbeddingFunction) -> None:
    with pytest.raises(TypeError) as info:
        ingest_stream(fresh(ef), iter([("id", "text")]), progress=False)
    assert str(info.value) == (
        "records must be str, (id, text, metadata) tuples or objects with id/text/metadata, got ('id', 'text')"
    )


# ---------------------------------------------------------------------- LangChain and LlamaIndex stores
def test_langchain_vectorstore(tmp_path: Path) -> None:
    store = langchain_vectorstore(
        "lc-helper", path=tmp_path / "db", hnsw={"ef_search": 50}, model_name=str(TINY), device="cpu"
    )
    ids = store.add_texts(["Tides follow the moon.", "Bees dance."])
    assert store.similarity_search("What do the tides follow?", k=1)[0].page_content == "Tides follow the moon."
    stored = chromadb.PersistentClient(path=str(tmp_path / "db")).get_collection("lc-helper", embedding_function=None)
    assert stored.configuration["hnsw"]["space"] == "cosine" and stored.configuration["hnsw"]["ef_search"] == 50
    vectors = np.asarray(stored.get(ids=ids, include=["embeddings"])["embeddings"])
    expected = ef_vectors(["Tides follow the moon.", "Bees dance."])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def ef_vectors(texts: list[str]) -> np.ndarray:
    from instructor_integrations import get_encoder

    return get_encoder(str(TINY), device="cpu").encode(texts, GENERIC_RETRIEVAL.document)


def test_langchain_vectorstore_refuses_mixed_settings() -> None:
    from instructor_integrations.langchain import InstructorEmbeddings

    embeddings = InstructorEmbeddings(model_name=str(TINY), device="cpu")
    with pytest.raises(TypeError, match=r"pass either embedding= or embedding settings, not both: \['device'\]"):
        langchain_vectorstore("lc-mixed", embedding=embeddings, client=chromadb.EphemeralClient(), device="cpu")
    with pytest.raises(ValueError, match="collection name"):
        langchain_vectorstore("x", embedding=embeddings, client=chromadb.EphemeralClient())


def test_llama_index_index_inserts_within_the_clients_batch_size(ef: InstructorEmbeddingFunction) -> None:
    from llama_index.core import Document
    from llama_index.core.schema import TextNode

    collection = fresh(ef)
    sizes = record_writes(collection, "upsert", "add")
    nodes = [TextNode(text=f"node number {i} about {topic}", id_=f"n{i}") for i, topic in enumerate("abcdefg")]
    index = llama_index_index(collection, nodes=nodes, client=SmallClient(3), model_name=str(TINY), device="cpu")
    assert collection.count() == 7 and max(sizes) <= 3
    found = index.as_retriever(similarity_top_k=7).retrieve("node number 3 about d")
    assert sorted(hit.node.node_id for hit in found) == [f"n{i}" for i in range(7)]
    reopened = llama_index_index(collection, model_name=str(TINY), device="cpu")  # over what is stored
    assert len(reopened.as_retriever(similarity_top_k=7).retrieve("node")) == 7
    docs = llama_index_index(
        fresh(ef), documents=[Document(text="A document about volcanoes.")], model_name=str(TINY), device="cpu"
    )
    assert docs.as_retriever(similarity_top_k=1).retrieve("volcano")[0].text == "A document about volcanoes."


def test_llama_index_index_refuses_mixed_inputs(ef: InstructorEmbeddingFunction) -> None:
    from llama_index.core import Document

    from instructor_integrations.llama_index import InstructorEmbedding

    model = InstructorEmbedding(model_name=str(TINY), device="cpu")
    with pytest.raises(TypeError) as info:
        llama_index_index(fresh(ef), embedding=model, documents=[Document(text="a")], nodes=[])
    assert str(info.value) == "pass either documents= or nodes=, not both"
    with pytest.raises(TypeError, match=r"pass either embedding= or embedding settings, not both: \['device'\]"):
        llama_index_index(fresh(ef), embedding=model, device="cpu")
    assert vectorstores.llama_index_vector_store(fresh(ef)).class_name() == "ChromaVectorStore"


def test_every_helper_names_the_embedder_embedding_and_the_old_names_still_work(
    ef: InstructorEmbeddingFunction,
) -> None:
    from instructor_integrations.langchain import InstructorEmbeddings
    from instructor_integrations.llama_index import InstructorEmbedding

    lc = InstructorEmbeddings(model_name=str(TINY), device="cpu")
    li = InstructorEmbedding(model_name=str(TINY), device="cpu")
    assert langchain_vectorstore("lc-name", embedding=lc, client=chromadb.EphemeralClient()).embeddings is lc
    assert llama_index_index(fresh(ef), embedding=li)._embed_model is li
    with pytest.warns(DeprecationWarning, match=r"embeddings= is deprecated; pass the same object as embedding="):
        store = langchain_vectorstore("lc-old", embeddings=lc, client=chromadb.EphemeralClient())
    assert store.embeddings is lc
    with pytest.warns(DeprecationWarning, match=r"embed_model= is deprecated; pass the same object as embedding="):
        assert llama_index_index(fresh(ef), embed_model=li)._embed_model is li
    with pytest.raises(TypeError, match=r"pass either embedding= or embed_model= \(its old name\), not both"):
        llama_index_index(fresh(ef), embedding=li, embed_model=li)


def test_llama_index_documents_are_stored_once_however_often_they_are_inserted(
    ef: InstructorEmbeddingFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llama_index.core import Document

    from instructor_integrations.llama_index import InstructorEmbedding

    model = InstructorEmbedding(model_name=str(TINY), device="cpu")
    embedded: list[int] = []
    real = InstructorEmbedding.get_text_embedding_batch

    def counted(self: InstructorEmbedding, texts: list[str], **kwargs: Any) -> Any:
        embedded.append(len(texts))
        return real(self, texts, **kwargs)

    monkeypatch.setattr(InstructorEmbedding, "get_text_embedding_batch", counted)
    collection = fresh(ef)
    long = " ".join(f"Sentence {i} about the tides and the moon." for i in range(60))
    docs = [Document(text="The Danube flows through ten countries."), Document(text=long)]
    llama_index_index(collection, embedding=model, documents=docs)
    first = collection.count()
    assert first > 2 and sum(embedded) == first  # the long document is cut into several nodes
    again = [Document(text="The Danube flows through ten countries."), Document(text=long), Document(text="New.")]
    index = llama_index_index(collection, embedding=model, documents=[*again, Document(text="New.")])
    assert collection.count() == first + 1 and sum(embedded) == first + 1  # only the new document embedded
    hits = index.as_retriever(similarity_top_k=first + 1).retrieve("the Danube")
    assert sorted(hit.node.get_content() for hit in hits).count("The Danube flows through ten countries.") == 1
    # The nodes of a document still point at each other by their stored ids.
    stored = set(collection.get(include=[])["ids"])
    for hit in hits:
        for related in (hit.node.prev_node, hit.node.next_node):
            assert related is None or related.node_id in stored


def test_langchain_vectorstore_opens_the_server_it_is_given(recorder: Recorder) -> None:
    from instructor_integrations.langchain import InstructorEmbeddings

    recorder.result = chromadb.EphemeralClient()
    embeddings = InstructorEmbeddings(model_name=str(TINY), device="cpu")
    langchain_vectorstore("lc-server", embedding=embeddings, host="chroma.local", port=9000)
    assert [(kind, call["host"], call["port"]) for kind, call in recorder.calls] == [("http", "chroma.local", 9000)]


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("langchain_chroma", "langchain"),
        ("llama_index.core", "llama-index"),
        ("llama_index.vector_stores.chroma", "llama-index"),
        ("chromadb.api.types", "chroma"),
    ],
)
def test_without_the_framework_the_error_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, ef: InstructorEmbeddingFunction, module: str, extra: str
) -> None:
    collection = fresh(ef)
    client = chromadb.EphemeralClient()
    calls = {
        "langchain_chroma": lambda: langchain_vectorstore("missing", client=client),
        "llama_index.core": lambda: llama_index_index(collection),
        "llama_index.vector_stores.chroma": lambda: vectorstores.llama_index_vector_store(collection),
        "chromadb.api.types": lambda: ingest_texts(collection, ["t"], metadatas=[{"a": 1}], progress=False),
    }
    call = calls[module]
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=rf'pip install "instructor-integrations\[{extra}\]"'):
        call()


def test_llama_index_documents_are_inserted_within_the_batch_size_quietly(
    ef: InstructorEmbeddingFunction, capsys: pytest.CaptureFixture[str]
) -> None:
    from llama_index.core import Document

    collection = fresh(ef)
    sizes = record_writes(collection, "upsert", "add")
    docs = [
        Document(text=f"document {i} about {topic}") for i, topic in enumerate(["sea", "sky", "soil", "sun", "ice"])
    ]
    capsys.readouterr()
    llama_index_index(collection, documents=docs, client=SmallClient(2), model_name=str(TINY), device="cpu")
    assert collection.count() == 5 and sizes and max(sizes) <= 2
    assert not capsys.readouterr().err  # no progress bars unless asked
    llama_index_index(fresh(ef), documents=docs[:1], show_progress=True, model_name=str(TINY), device="cpu")
    shown = capsys.readouterr().err
    assert "Parsing nodes" in shown and "Embedding" in shown  # LlamaIndex's splitting bar, then the encoder's


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metadatas": {"a": 1}}, "metadatas must be a list of dicts (one per text), got dict"),
        ({"metadatas": [{"a": 1}, 5]}, "metadatas[1] must be a dict, got int: 5"),
        ({"ids": "ab"}, "ids must be a list of str (one per text), got str: 'ab'"),
        ({"ids": ["a", 7]}, "ids[1] must be a non-empty str, got 7"),
    ],
)
def test_bad_ids_and_metadata_messages(ef: InstructorEmbeddingFunction, kwargs: dict, message: str) -> None:
    with pytest.raises(TypeError) as info:
        ingest_texts(fresh(ef), ["one", "two"], progress=False, **kwargs)
    assert str(info.value) == message


def test_repeated_ids_are_named_and_timing_is_reported(ef: InstructorEmbeddingFunction) -> None:
    with pytest.raises(ValueError) as info:
        ingest_texts(fresh(ef), ["one", "two"], ids=["a", "a"], progress=False)
    assert str(info.value) == "ids[1] repeats ids[0]: 'a'; ids must be unique"
    result = ingest_texts(fresh(ef), ["one"], progress=False)
    assert 0 < result.seconds < 600


def test_get_collection_sets_the_space_and_refuses_no_function(ef: InstructorEmbeddingFunction) -> None:
    client = chromadb.EphemeralClient()
    collection = get_collection(client, "space-default", embedding=ef, hnsw={"ef_search": 77})
    assert collection.configuration["hnsw"]["space"] == "cosine" and collection.configuration["hnsw"]["ef_search"] == 77

    class InnerProduct(InstructorEmbeddingFunction):
        def default_space(self) -> str:
            return "ip"

    inner = InnerProduct(str(TINY), device="cpu", encoder=ef.encoder)
    assert get_collection(client, "space-ip", embedding=inner).configuration["hnsw"]["space"] == "ip"
    with pytest.raises(TypeError) as info:
        get_collection(client, "space-none", embedding=None)
    assert str(info.value) == "embedding must be an embedding function, e.g. InstructorEmbeddingFunction(...), got None"
    with pytest.raises(ValueError) as info:
        get_collection(client, "a", embedding=ef)
    assert str(info.value).endswith("starting and ending with a letter or digit, got 'a'")


def test_content_id_value_and_a_bad_batch_size_message(ef: InstructorEmbeddingFunction) -> None:
    assert content_id("hello") == "2cf24dba5fb0a30e26e83b2ac5b9e29e"  # sha256("hello")[:32]
    assert content_id("héllo", {"k": "é"}) != content_id("hello", {"k": "e"}) and len(content_id("héllo")) == 32
    with pytest.raises(ValueError) as info:
        ingest_texts(fresh(ef), ["t"], batch_size=0, progress=False)
    assert str(info.value) == "batch_size must be a positive int, got 0"


def test_counts_and_shape_messages(ef: InstructorEmbeddingFunction) -> None:
    with pytest.raises(ValueError) as info:
        ingest_texts(fresh(ef), ["one", "two"], ids=["a"], progress=False)
    assert str(info.value) == "ids has 1 items but there are 2 texts"
    with pytest.raises(TypeError) as info:
        ingest_texts(fresh(ef), ["one", "two"], metadatas="ab", progress=False)  # type: ignore[arg-type]
    assert str(info.value) == "metadatas must be a list of dicts (one per text), got str"
    result = ingest_stream(fresh(ef), iter([("x", "t", None)] * 4), batch_size=1, progress=False)  # across batches
    assert (result.written, result.duplicates) == (1, 3)
