"""LangChain's own standard test suites for InstructorEmbeddings and langchain_vectorstore."""

from __future__ import annotations

import uuid

import pytest

pytest.importorskip("langchain_tests")
pytest.importorskip("langchain_chroma")

from langchain_tests.integration_tests import EmbeddingsIntegrationTests, VectorStoreIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from instructor_integrations.langchain import InstructorEmbeddings
from instructor_integrations.vectorstores import langchain_vectorstore

from ..conftest import TINY


class TestInstructorEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[InstructorEmbeddings]:
        return InstructorEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model_name": str(TINY), "device": "cpu"}


class TestInstructorEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[InstructorEmbeddings]:
        return InstructorEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model_name": str(TINY), "device": "cpu"}


class TestLangchainVectorstore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self):
        import chromadb

        store = langchain_vectorstore(
            f"standard-{uuid.uuid4().hex[:12]}", embedding=self.get_embeddings(), client=chromadb.EphemeralClient()
        )
        yield store
        store.delete_collection()


class TestLangchainVectorstoreWithInstructor(VectorStoreIntegrationTests):
    """The same suite with our own embeddings behind the store."""

    @pytest.fixture
    def vectorstore(self):
        import chromadb

        store = langchain_vectorstore(
            f"standard-ii-{uuid.uuid4().hex[:12]}",
            client=chromadb.EphemeralClient(),
            model_name=str(TINY),
            device="cpu",
        )
        yield store
        store.delete_collection()
