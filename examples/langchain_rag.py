"""Retrieval for a RAG chain in LangChain: INSTRUCTOR embeddings in a Chroma vector store.

python examples/langchain_rag.py --model hkunlp/instructor-large
"""

from __future__ import annotations

import argparse
import tempfile

from langchain_core.documents import Document

from instructor_integrations.vectorstores import langchain_vectorstore

DOCS = [
    Document(
        page_content="Insulin lowers blood sugar by helping cells take up glucose.", metadata={"topic": "biology"}
    ),
    Document(
        page_content="The Rosetta Stone made it possible to read Egyptian hieroglyphs.", metadata={"topic": "history"}
    ),
    Document(
        page_content="A lunar eclipse happens when the Earth lies between the Sun and the Moon.",
        metadata={"topic": "astronomy"},
    ),
]


def main() -> None:
    """Run the example."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="hkunlp/instructor-large")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        store = langchain_vectorstore(
            "rag-demo",
            path=folder,
            model_name=args.model,
            device=args.device,
            query_instruction="Represent the question for retrieving supporting documents: ",
            document_instruction="Represent the document for retrieval: ",
        )
        store.add_documents(DOCS)
        retriever = store.as_retriever(search_kwargs={"k": 1})
        question = "How was the ancient Egyptian script deciphered?"
        context = retriever.invoke(question)
        # A chain would now pass `context` to a language model; here we print what it would get.
        print(f"question: {question}\ncontext:  {context[0].page_content} ({context[0].metadata['topic']})")


if __name__ == "__main__":
    main()
