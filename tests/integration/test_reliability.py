"""Concurrency, event-loop lag, and faults during ingestion."""

from __future__ import annotations

import asyncio
import threading
import uuid

import numpy as np
import pytest

pytest.importorskip("chromadb")
pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

import chromadb

from instructor_integrations import get_encoder
from instructor_integrations.chroma import InstructorEmbeddingFunction
from instructor_integrations.langchain import InstructorEmbeddings
from instructor_integrations.llama_index import InstructorEmbedding
from instructor_integrations.vectorstores import get_collection, ingest_texts

from ..conftest import TINY

QUERIES = [f"question number {i} about {['tides', 'bees', 'volcanoes', 'vaccines'][i % 4]}?" for i in range(200)]


def test_encoder_is_safe_from_many_threads() -> None:
    encoder = get_encoder(str(TINY), device="cpu")
    batches = [[f"thread {t} text {i}" for i in range(20)] for t in range(8)]
    serial = [encoder.encode(batch, "Represent the sentence: ") for batch in batches]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            results[index] = encoder.encode(batches[index], "Represent the sentence: ", batch_size=3)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for index, expected in enumerate(serial):
        assert np.abs(results[index] - expected).max() <= 1e-5


def _async_model(framework: str, monkeypatch: pytest.MonkeyPatch | None = None):  # type: ignore[no-untyped-def]
    if framework == "langchain":
        model = InstructorEmbeddings(model_name=str(TINY), device="cpu")
        return model, model.embed_query, model.aembed_query
    model = InstructorEmbedding(model_name=str(TINY), device="cpu")
    return model, model.get_query_embedding, model.aget_query_embedding


@pytest.mark.parametrize("framework", ["langchain", "llama-index"])
async def test_200_concurrent_async_queries_return_the_serial_results(framework: str) -> None:
    _, sync, call = _async_model(framework)
    serial = np.asarray([sync(q) for q in QUERIES])
    together = np.asarray(await asyncio.gather(*(call(q) for q in QUERIES)))
    # Concurrent queries share forward passes: the same vectors up to float rounding of other paddings.
    assert np.abs(together - serial).max() <= 1e-5


@pytest.mark.parametrize("framework", ["langchain", "llama-index"])
async def test_the_event_loop_runs_while_a_query_is_embedded(framework: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic: the embedding call waits until another task on the loop has run.

    Were the call made on the loop's thread, that task could never run and the call would give up
    (the loop's lag and tick counts under load are measured by benchmarks/experiments/async_queries.py).
    """
    model, _, call = _async_model(framework)
    encoder = model.instructor_encoder
    loop_ran = threading.Event()
    real = encoder._execute

    def waits_for_the_loop(*args, **kwargs):  # type: ignore[no-untyped-def]
        assert threading.current_thread() is not threading.main_thread()
        if not loop_ran.wait(timeout=30):
            raise AssertionError("the event loop did not run while a query was being embedded")
        return real(*args, **kwargs)

    async def other_task() -> None:
        loop_ran.set()

    monkeypatch.setattr(encoder, "_execute", waits_for_the_loop)  # the forward passes, in the engine's thread
    vector, _ = await asyncio.gather(call("what causes tides?"), other_task())
    assert loop_ran.is_set()
    monkeypatch.setattr(encoder, "_execute", real)
    assert vector == (await call("what causes tides?"))


def test_failed_ingest_leaves_whole_batches_and_rerun_completes(monkeypatch: pytest.MonkeyPatch) -> None:
    ef = InstructorEmbeddingFunction(str(TINY), device="cpu")
    collection = get_collection(chromadb.EphemeralClient(), f"fault-{uuid.uuid4().hex[:8]}", embedding=ef)
    texts = [f"fault test document {i}" for i in range(100)]
    real = ef.encoder.encode
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash in the third batch")
        return real(*args, **kwargs)

    monkeypatch.setattr(ef.encoder, "encode", flaky)
    with pytest.raises(RuntimeError, match="third batch"):
        ingest_texts(collection, texts, batch_size=20, progress=False)
    assert collection.count() == 40  # two whole batches, nothing of the third
    monkeypatch.setattr(ef.encoder, "encode", real)
    result = ingest_texts(collection, texts, batch_size=20, progress=False)
    assert (result.skipped, result.written, collection.count()) == (40, 60, 100)
