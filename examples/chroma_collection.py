"""A persisted Chroma collection with INSTRUCTOR embeddings, reopened without passing the function.

python examples/chroma_collection.py --model hkunlp/instructor-large
"""

from __future__ import annotations

import argparse
import tempfile

import chromadb

import instructor_integrations.chroma  # noqa: F401  (registers the function for reopening)
from instructor_integrations.chroma import InstructorEmbeddingFunction
from instructor_integrations.vectorstores import add_texts, chroma_client, get_collection

DOCS = [
    "The Amazon rainforest produces a large share of the world's oxygen through photosynthesis.",
    "Mount Etna in Sicily is one of the most active volcanoes in Europe.",
    "Honeybees tell their hive mates where flowers are with a waggle dance.",
]


def main() -> None:
    """Run the example."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="hkunlp/instructor-large")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        ef = InstructorEmbeddingFunction(args.model, device=args.device, task="retrieval")
        collection = get_collection(chroma_client(folder), "facts", embedding=ef)
        ids = add_texts(collection, DOCS, progress=False)
        print(f"stored {collection.count()} documents, ids {ids[0][:8]}...")

        # Reopen: the function is rebuilt from the collection's saved config.
        reopened = chromadb.PersistentClient(path=folder).get_collection("facts")
        result = reopened.query(query_texts=["Which volcano erupts often?"], n_results=1)
        print("top hit:", result["documents"][0][0])


if __name__ == "__main__":
    main()
