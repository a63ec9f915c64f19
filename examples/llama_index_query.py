"""INSTRUCTOR as LlamaIndex's Settings.embed_model, with a Chroma-backed VectorStoreIndex.

python examples/llama_index_query.py --model hkunlp/instructor-large
"""

from __future__ import annotations

import argparse
import tempfile

from llama_index.core import Document, Settings

from instructor_integrations.llama_index import InstructorEmbedding
from instructor_integrations.vectorstores import chroma_client, llama_index_index

DOCS = [
    "Penicillin was discovered by Alexander Fleming in 1928.",
    "The Great Barrier Reef is the largest coral reef system in the world.",
    "Python lists keep their items in insertion order.",
]


def main() -> None:
    """Run the example."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="hkunlp/instructor-large")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    Settings.embed_model = InstructorEmbedding(model_name=args.model, device=args.device, task="retrieval")
    with tempfile.TemporaryDirectory() as folder:
        client = chroma_client(folder)
        collection = client.create_collection("llama-demo", configuration={"hnsw": {"space": "cosine"}})
        index = llama_index_index(
            collection, embed_model=Settings.embed_model, documents=[Document(text=t) for t in DOCS], client=client
        )
        hits = index.as_retriever(similarity_top_k=1).retrieve("Who found the first antibiotic?")
        print("top hit:", hits[0].node.get_content())


if __name__ == "__main__":
    main()
