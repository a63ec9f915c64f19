"""The Haystack components: pipelines with Haystack's in-memory store, serialization, async, the old names."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ..conftest import TINY

pytestmark = pytest.mark.integration
pytest.importorskip("haystack")

DOC = "Represent the tide document for retrieval: "
QUERY = "Represent the tide question for retrieving supporting documents: "
SETTINGS = {"model_name": str(TINY), "device": "cpu", "document_instruction": DOC, "query_instruction": QUERY}
TEXTS = ["Tides are caused by the moon's gravity.", "Bees dance to tell where flowers are.", "Rain falls from clouds."]


def _pipelines(store):
    from haystack import Pipeline
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from haystack.components.writers import DocumentWriter

    from instructor_integrations.haystack import InstructorDocumentEmbedder, InstructorTextEmbedder

    indexing = Pipeline()
    indexing.add_component("embedder", InstructorDocumentEmbedder(**SETTINGS))
    indexing.add_component("writer", DocumentWriter(document_store=store))
    indexing.connect("embedder.documents", "writer.documents")
    query = Pipeline()
    query.add_component("embedder", InstructorTextEmbedder(**SETTINGS))
    query.add_component("retriever", InMemoryEmbeddingRetriever(document_store=store, top_k=3))
    query.connect("embedder.embedding", "retriever.query_embedding")
    return indexing, query


def test_an_indexing_and_a_query_pipeline_store_and_find_the_langchain_adapters_vectors() -> None:
    pytest.importorskip("langchain_core")
    from haystack import Document
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    from instructor_integrations.langchain import InstructorEmbeddings

    store = InMemoryDocumentStore()
    indexing, query = _pipelines(store)
    written = indexing.run({"embedder": {"documents": [Document(id=str(i), content=t) for i, t in enumerate(TEXTS)]}})
    assert written["writer"]["documents_written"] == 3
    langchain = InstructorEmbeddings(**SETTINGS)
    stored = {d.id: d.embedding for d in store.filter_documents()}
    np.testing.assert_allclose([stored[str(i)] for i in range(3)], langchain.embed_documents(TEXTS), atol=1e-6)

    found = query.run({"embedder": {"text": "What causes the tides?"}}, include_outputs_from={"embedder"})
    np.testing.assert_allclose(
        found["embedder"]["embedding"], langchain.embed_query("What causes the tides?"), atol=1e-6
    )
    # The retriever's order is the cosine order of the LangChain adapter's vectors (the same vectors).
    documents, question = (
        np.asarray(langchain.embed_documents(TEXTS)),
        np.asarray(langchain.embed_query("What causes the tides?")),
    )
    expected = [str(i) for i in np.argsort(-(documents @ question))]
    assert [d.id for d in found["retriever"]["documents"]] == expected


def _load(saved: str):
    """Haystack 3 loads classes only from the modules it is told to trust; 2.x has no such list."""
    import inspect

    from haystack import Pipeline

    if "allowed_modules" in inspect.signature(Pipeline.loads).parameters:
        return Pipeline.loads(saved, allowed_modules=["instructor_integrations.haystack"])
    return Pipeline.loads(saved)


def test_a_pipeline_saved_as_yaml_loads_with_the_same_vectors_and_no_trust_remote_code() -> None:
    from haystack import Document
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    store = InMemoryDocumentStore()
    indexing, query = _pipelines(store)
    saved = query.dumps()
    assert "trust_remote_code" not in saved and QUERY in saved
    again = _load(saved)
    text = {"embedder": {"text": "What causes the tides?"}}
    before = query.run(text, include_outputs_from={"embedder"})["embedder"]["embedding"]
    after = again.run(text, include_outputs_from={"embedder"})["embedder"]["embedding"]
    assert before == after
    documents = [Document(content=t) for t in TEXTS]
    np.testing.assert_array_equal(
        [d.embedding for d in _load(indexing.dumps()).get_component("embedder").run(documents)["documents"]],
        [d.embedding for d in indexing.get_component("embedder").run(documents)["documents"]],
    )


def test_a_saved_pipeline_cannot_turn_on_remote_code_nor_hold_an_encoder_object(tiny_encoder) -> None:
    from instructor_integrations.haystack import InstructorTextEmbedder

    data = InstructorTextEmbedder(**SETTINGS).to_dict()
    data["init_parameters"]["trust_remote_code"] = True
    with pytest.raises(ValueError, match="trust_remote_code is not taken from a saved pipeline"):
        InstructorTextEmbedder.from_dict(data)
    with pytest.raises(TypeError, match="with encoder= cannot be serialized"):
        InstructorTextEmbedder(encoder=tiny_encoder, query_instruction=QUERY).to_dict()


def test_meta_fields_are_embedded_with_the_content_as_haystacks_own_embedders_do(tiny_encoder) -> None:
    from haystack import Document

    from instructor_integrations.haystack import InstructorDocumentEmbedder

    embedder = InstructorDocumentEmbedder(
        **SETTINGS, meta_fields_to_embed=["title", "missing"], embedding_separator=" | "
    )
    document = Document(content="They rise twice a day.", meta={"title": "Tides"})
    (out,) = embedder.run([document])["documents"]
    np.testing.assert_allclose(
        out.embedding, tiny_encoder.encode(["Tides | They rise twice a day."], DOC)[0], atol=1e-6
    )
    assert document.embedding is None and out.meta == document.meta  # a new Document; the input is unchanged


def test_run_async_gives_what_run_gives() -> None:
    from haystack import Document

    from instructor_integrations.haystack import InstructorDocumentEmbedder, InstructorTextEmbedder

    text, documents = InstructorTextEmbedder(**SETTINGS), InstructorDocumentEmbedder(**SETTINGS)
    batch = [Document(content=t) for t in TEXTS]

    async def both():
        return await asyncio.gather(text.run_async("What causes the tides?"), documents.run_async(batch))

    query, docs = asyncio.run(both())
    assert query["embedding"] == text.run("What causes the tides?")["embedding"]
    np.testing.assert_allclose(
        [d.embedding for d in docs["documents"]], [d.embedding for d in documents.run(batch)["documents"]], atol=1e-6
    )


def test_the_wrong_input_names_the_other_component() -> None:
    from haystack import Document

    from instructor_integrations.haystack import InstructorDocumentEmbedder, InstructorTextEmbedder

    with pytest.raises(TypeError, match="use InstructorDocumentEmbedder"):
        InstructorTextEmbedder(**SETTINGS).run([Document(content="a")])
    with pytest.raises(TypeError, match="use InstructorTextEmbedder"):
        InstructorDocumentEmbedder(**SETTINGS).run("a")


def test_instructor_embedders_haystacks_arguments_keep_their_meaning(tiny_encoder) -> None:
    from haystack import Document
    from haystack.utils import ComponentDevice

    from instructor_integrations.haystack import InstructorDocumentEmbedder, InstructorTextEmbedder

    with pytest.warns(DeprecationWarning, match="model= is deprecated, use model_name="):
        old_text = InstructorTextEmbedder(
            model=str(TINY), device=ComponentDevice.from_str("cpu"), instruction=QUERY, progress_bar=False
        )
    assert (old_text.model_name, old_text.device, old_text.query_instruction) == (str(TINY), "cpu", QUERY)
    with pytest.warns(DeprecationWarning, match="instruction= is deprecated, use document_instruction="):
        old_docs = InstructorDocumentEmbedder(model=str(TINY), device="cpu", instruction=DOC, normalize_embeddings=True)
    (out,) = old_docs.run([Document(content=TEXTS[0])])["documents"]
    np.testing.assert_allclose(out.embedding, tiny_encoder.encode([TEXTS[0]], DOC)[0], atol=1e-6)
    from haystack.utils import Secret

    with pytest.warns(DeprecationWarning, match="token= is not used: the Hugging Face token is read from the HF_TOKEN"):
        InstructorTextEmbedder(model_name=str(TINY), device="cpu", token=Secret.from_token("hf_x"))
    with pytest.raises(ValueError, match="normalize_embeddings=False is not available"):
        InstructorTextEmbedder(model_name=str(TINY), normalize_embeddings=False)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) prefix; the old component's names"):
        InstructorTextEmbedder(model_name=str(TINY), prefix="query: ")
