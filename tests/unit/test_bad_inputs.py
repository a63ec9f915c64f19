"""The bad-input battery: every public entry point, every case a clear TypeError/ValueError.

Each case id is listed in docs/reliability.md (a test below checks that), with the message a user sees.
Regenerate that table with `python scripts/gen_reliability.py`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from instructor_integrations import InstructorEncoder, ModelLoadError, get_encoder
from instructor_integrations.instructions import build_instruction, get_preset

TINY = str(Path(__file__).resolve().parents[1] / "fixtures" / "tiny-instructor")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


@functools.cache
def encoder() -> InstructorEncoder:
    return get_encoder(TINY, device="cpu")


@functools.cache
def langchain() -> Any:
    from instructor_integrations.langchain import InstructorEmbeddings

    return InstructorEmbeddings(model_name=TINY, device="cpu")


@functools.cache
def llama() -> Any:
    from instructor_integrations.llama_index import InstructorEmbedding

    return InstructorEmbedding(model_name=TINY, device="cpu")


@functools.cache
def chroma_ef() -> Any:
    from instructor_integrations.chroma import InstructorEmbeddingFunction

    return InstructorEmbeddingFunction(TINY, device="cpu")


def collection() -> Any:
    import uuid

    import chromadb

    from instructor_integrations.vectorstores import get_collection

    return get_collection(chromadb.EphemeralClient(), f"bad-{uuid.uuid4().hex[:10]}", embedding=chroma_ef())


def get_collection(name: str) -> Any:
    import chromadb

    from instructor_integrations.vectorstores import get_collection as get

    return get(chromadb.EphemeralClient(), name, embedding=chroma_ef())


def add(**kwargs: Any) -> Any:
    from instructor_integrations.vectorstores import add_texts

    return add_texts(collection(), progress=False, **kwargs)


def client(*args: Any, **kwargs: Any) -> Any:
    from instructor_integrations.vectorstores import chroma_client

    return chroma_client(*args, **kwargs)


def lc_model(**kwargs: Any) -> Any:
    from instructor_integrations.langchain import InstructorEmbeddings

    return InstructorEmbeddings(model_name=TINY, device="cpu", **kwargs)


def chroma_config(config: dict[str, Any]) -> Any:
    from instructor_integrations.chroma import InstructorEmbeddingFunction

    return InstructorEmbeddingFunction.build_from_config(config)


@dataclass(frozen=True)
class Case:
    id: str
    where: str
    input: str
    call: Callable[[], Any]
    error: type[BaseException]
    message: str
    needs: str | None = None


CASES = [
    Case(
        "none-texts",
        "InstructorEncoder.encode",
        "texts=None",
        lambda: encoder().encode(None),
        TypeError,
        "texts must be a list of str, got None",
    ),
    Case(
        "bare-string",
        "InstructorEncoder.encode",
        'texts="hello"',
        lambda: encoder().encode("hello"),
        TypeError,
        "wrap it in a list",
    ),
    Case(
        "bytes-texts",
        "InstructorEncoder.encode",
        'texts=b"hello"',
        lambda: encoder().encode(b"hello"),
        TypeError,
        "got a single bytes",
    ),
    Case(
        "int-item",
        "InstructorEncoder.encode",
        'texts=[1, "a"]',
        lambda: encoder().encode([1, "a"]),
        TypeError,
        "texts[0] must be a str, got int: 1",
    ),
    Case(
        "none-item",
        "InstructorEncoder.encode",
        'texts=["a", None]',
        lambda: encoder().encode(["a", None]),
        TypeError,
        "texts[1] must be a str, got NoneType",
    ),
    Case(
        "bytes-item",
        "InstructorEncoder.encode",
        'texts=[b"x"]',
        lambda: encoder().encode([b"x"]),
        TypeError,
        "texts[0] must be a str, got bytes",
    ),
    Case(
        "dict-item",
        "InstructorEncoder.encode",
        'texts=[{"text": "a"}]',
        lambda: encoder().encode([{"text": "a"}]),
        TypeError,
        "texts[0] must be a str, got dict",
    ),
    Case(
        "nested-list",
        "InstructorEncoder.encode",
        'texts=[["a"]]',
        lambda: encoder().encode([["a"]]),
        TypeError,
        "texts[0] must be a str, got list",
    ),
    Case(
        "mapping-texts",
        "InstructorEncoder.encode",
        'texts={"a": 1}',
        lambda: encoder().encode({"a": 1}),
        TypeError,
        "texts must be a list of str, got dict",
    ),
    Case(
        "int-texts",
        "InstructorEncoder.encode",
        "texts=42",
        lambda: encoder().encode(42),
        TypeError,
        "texts must be a list of str, got int",
    ),
    Case(
        "lone-surrogate",
        "InstructorEncoder.encode",
        'texts=["\\ud800"]',
        lambda: encoder().encode(["\ud800"]),
        ValueError,
        "texts[0] is not valid Unicode",
    ),
    Case(
        "int-instruction",
        "InstructorEncoder.encode",
        "instruction=3",
        lambda: encoder().encode(["a"], 3),
        TypeError,
        "instruction must be None, a str, or a list of str (one per text), got int: 3",
    ),
    Case(
        "instruction-count",
        "InstructorEncoder.encode",
        'texts=["a", "b"], instruction=["x"]',
        lambda: encoder().encode(["a", "b"], ["x"]),
        ValueError,
        "instruction has 1 items but there are 2 texts",
    ),
    Case(
        "bytes-instruction-item",
        "InstructorEncoder.encode",
        'instruction=[b"x"]',
        lambda: encoder().encode(["a"], [b"x"]),
        TypeError,
        "instruction[0] must be a str, got bytes",
    ),
    Case(
        "zero-batch",
        "InstructorEncoder.encode",
        "batch_size=0",
        lambda: encoder().encode(["a"], batch_size=0),
        ValueError,
        "batch_size must be a positive int, got 0",
    ),
    Case(
        "short-pair",
        "InstructorEncoder.encode_pairs",
        'pairs=[["only one"]]',
        lambda: encoder().encode_pairs([["only one"]]),
        ValueError,
        "pairs[0] must have exactly 2 items",
    ),
    Case(
        "long-pair",
        "InstructorEncoder.encode_pairs",
        'pairs=[["i", "t", 0]]',
        lambda: encoder().encode_pairs([["i", "t", 0]]),
        ValueError,
        "got 3",
    ),
    Case(
        "string-pair",
        "InstructorEncoder.encode_pairs",
        'pairs=["not a pair"]',
        lambda: encoder().encode_pairs(["not a pair"]),
        TypeError,
        "pairs[0] must be an [instruction, text] pair",
    ),
    Case(
        "none-instruction-in-pair",
        "InstructorEncoder.encode_pairs",
        'pairs=[[None, "t"]]',
        lambda: encoder().encode_pairs([[None, "t"]]),
        TypeError,
        "pairs[0][0] (instruction) must be a str",
    ),
    Case(
        "int-text-in-pair",
        "InstructorEncoder.encode_pairs",
        'pairs=[["i", 5]]',
        lambda: encoder().encode_pairs([["i", 5]]),
        TypeError,
        "pairs[0][1] (text) must be a str, got int",
    ),
    Case(
        "string-pairs",
        "InstructorEncoder.encode_pairs",
        'pairs="x"',
        lambda: encoder().encode_pairs("x"),
        TypeError,
        "pairs must be a list of [instruction, text] pairs",
    ),
    Case(
        "bad-dtype",
        "InstructorEncoder()",
        'dtype="fp8"',
        lambda: InstructorEncoder(TINY, dtype="fp8"),
        ValueError,
        "dtype must be one of 'auto', 'float32', 'bfloat16', 'float16', got 'fp8'",
    ),
    Case(
        "bad-device",
        "InstructorEncoder()",
        'device="gpu"',
        lambda: InstructorEncoder(TINY, device="gpu"),
        ValueError,
        "device must be None, 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu'",
    ),
    Case(
        "dtype-and-precision",
        "InstructorEncoder()",
        'dtype="float16", precision="fast"',
        lambda: InstructorEncoder(TINY, dtype="float16", precision="fast"),
        ValueError,
        "not both",
    ),
    Case(
        "missing-model-offline",
        "InstructorEncoder()",
        '"no-such-org/no-such-model", local_files_only=True',
        lambda: InstructorEncoder("no-such-org/no-such-model", device="cpu", local_files_only=True),
        ModelLoadError,
        "Could not load model 'no-such-org/no-such-model'",
    ),
    Case(
        "lc-bare-string",
        "InstructorEmbeddings.embed_documents",
        'texts="doc"',
        lambda: langchain().embed_documents("doc"),
        TypeError,
        "texts must be a list of str",
        "langchain_core",
    ),
    Case(
        "lc-none-query",
        "InstructorEmbeddings.embed_query",
        "text=None",
        lambda: langchain().embed_query(None),
        TypeError,
        "text must be a str, got NoneType",
        "langchain_core",
    ),
    Case(
        "lc-list-query",
        "InstructorEmbeddings.embed_query",
        'text=["q"]',
        lambda: langchain().embed_query(["q"]),
        TypeError,
        "text must be a str, got list",
        "langchain_core",
    ),
    Case(
        "lc-unknown-field",
        "InstructorEmbeddings()",
        "multi_process=True",
        lambda: lc_model(multi_process=True),
        ValueError,
        "Extra inputs are not permitted",
        "langchain_core",
    ),
    Case(
        "lc-zero-batch",
        "InstructorEmbeddings()",
        "batch_size=0",
        lambda: lc_model(batch_size=0),
        ValueError,
        "greater than 0",
        "langchain_core",
    ),
    Case(
        "lc-unknown-task",
        "InstructorEmbeddings()",
        'task="SciFakt"',
        lambda: lc_model(task="SciFakt"),
        ValueError,
        "Close matches: SciFact",
        "langchain_core",
    ),
    Case(
        "li-none-query",
        "InstructorEmbedding.get_query_embedding",
        "query=None",
        lambda: llama().get_query_embedding(None),
        TypeError,
        "query must be a str",
        "llama_index.core",
    ),
    Case(
        "li-int-text",
        "InstructorEmbedding.get_text_embedding_batch",
        "texts=[1]",
        lambda: llama().get_text_embedding_batch([1]),
        TypeError,
        "texts[0] must be a str, got int",
        "llama_index.core",
    ),
    Case(
        "chroma-bare-string",
        "InstructorEmbeddingFunction.__call__",
        'input="doc"',
        lambda: chroma_ef()("doc"),
        TypeError,
        "input must be a list of str",
        "chromadb",
    ),
    Case(
        "chroma-remote-code",
        "InstructorEmbeddingFunction.build_from_config",
        "trust_remote_code=True",
        lambda: chroma_config({"model_name": TINY, "trust_remote_code": True}),
        ValueError,
        "'trust_remote_code' is refused",
        "chromadb",
    ),
    Case(
        "chroma-unknown-key",
        "InstructorEmbeddingFunction.build_from_config",
        'config={"colour": ...}',
        lambda: chroma_config({"model_name": TINY, "colour": "blue"}),
        ValueError,
        "unknown config key 'colour'",
        "chromadb",
    ),
    Case(
        "metadata-count",
        "vectorstores.add_texts",
        "2 texts, 1 metadata",
        lambda: add(texts=["a", "b"], metadatas=[{}]),
        ValueError,
        "metadatas has 1 items but there are 2 texts",
        "chromadb",
    ),
    Case(
        "duplicate-ids",
        "vectorstores.add_texts",
        'ids=["x", "x"]',
        lambda: add(texts=["a", "b"], ids=["x", "x"]),
        ValueError,
        "ids[1] repeats ids[0]: 'x'",
        "chromadb",
    ),
    Case(
        "int-id",
        "vectorstores.add_texts",
        "ids=[1]",
        lambda: add(texts=["a"], ids=[1]),
        TypeError,
        "ids[0] must be a non-empty str, got 1",
        "chromadb",
    ),
    Case(
        "bad-metadata-value",
        "vectorstores.add_texts",
        'metadatas=[{"k": object()}]',
        lambda: add(texts=["a"], metadatas=[{"k": object()}]),
        ValueError,
        "metadatas[0] is not valid Chroma metadata",
        "chromadb",
    ),
    Case(
        "short-collection-name",
        "vectorstores.get_collection",
        'name="a"',
        lambda: get_collection("a"),
        ValueError,
        "collection name must be 3-512 characters",
        "chromadb",
    ),
    Case(
        "path-and-host",
        "vectorstores.chroma_client",
        'path="db", host="h"',
        lambda: client("db", host="h"),
        ValueError,
        "give either path",
        "chromadb",
    ),
    Case(
        "bad-port",
        "vectorstores.chroma_client",
        "port=70000",
        lambda: client(host="h", port=70000),
        ValueError,
        "port must be an int in 1..65535, got 70000",
        "chromadb",
    ),
    Case(
        "preset-not-str",
        "instructions.get_preset",
        "dataset=3",
        lambda: get_preset(3),
        TypeError,
        "dataset must be a str, got int",
    ),
    Case(
        "empty-text-type",
        "instructions.build_instruction",
        'text_type=""',
        lambda: build_instruction(""),
        ValueError,
        "text_type must be a non-empty str",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case) -> None:
    if case.needs:
        pytest.importorskip(case.needs)
    with pytest.raises(case.error) as info:
        case.call()
    assert case.message in str(info.value)


def test_battery_is_large_and_unique() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


def test_every_case_is_documented() -> None:
    text = DOCS.read_text("utf-8")
    missing = [case.id for case in CASES if f"`{case.id}`" not in text]
    assert not missing, f"add these cases to docs/reliability.md (scripts/gen_reliability.py): {missing}"
