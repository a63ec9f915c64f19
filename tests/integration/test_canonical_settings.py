"""One name per concept across the adapters; each framework's legacy names keep working."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import TINY

pytestmark = pytest.mark.integration
DOC = "Represent the tide document: "
QUERY = "Represent the tide question: "
CANONICAL = {
    "model_name": str(TINY),
    "document_instruction": DOC,
    "query_instruction": QUERY,
    "device": "cpu",
    "dtype": "auto",
    "precision": "exact",
    "max_seq_length": 128,
    "instructor_pooling": True,
    "batch_size": 8,
    "show_progress_bar": False,
    "compile": False,
}


def adapters(settings: dict):
    from instructor_integrations.chroma import InstructorEmbeddingFunction
    from instructor_integrations.haystack import InstructorDocumentEmbedder
    from instructor_integrations.langchain import InstructorEmbeddings
    from instructor_integrations.llama_index import InstructorEmbedding

    return {
        "langchain": InstructorEmbeddings(**settings),
        "llama_index": InstructorEmbedding(**settings),
        "chroma": InstructorEmbeddingFunction(**settings),
        "haystack": InstructorDocumentEmbedder(**settings),
    }


def test_the_adapters_take_the_same_canonical_settings():
    built = adapters(CANONICAL)
    for name, adapter in built.items():
        for key in ("document_instruction", "query_instruction", "batch_size", "show_progress_bar"):
            assert getattr(adapter, key) == CANONICAL[key], (name, key)
    encoders = {name: a.encoder for name, a in built.items()}
    assert len({id(encoder) for encoder in encoders.values()}) == 1  # one shared encoder for these settings
    (encoder,) = set(encoders.values())
    assert (encoder.max_seq_length, encoder.precision, encoder.instructor_pooling) == (128, "exact", True)
    texts = ["Tides follow the moon.", "Bees dance."]
    expected = encoder.encode(texts, DOC)
    np.testing.assert_allclose(built["langchain"].embed_documents(texts), expected, atol=1e-6)
    np.testing.assert_allclose(built["llama_index"].get_text_embedding_batch(texts), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(built["chroma"](texts)), expected, atol=1e-6)
    from haystack import Document

    embedded = built["haystack"].run([Document(content=t) for t in texts])["documents"]
    np.testing.assert_allclose([d.embedding for d in embedded], expected, atol=1e-6)


def test_legacy_names_still_work_and_read_back():
    from instructor_integrations.langchain import InstructorEmbeddings
    from instructor_integrations.llama_index import InstructorEmbedding

    lc = InstructorEmbeddings(model_name=str(TINY), device="cpu", embed_instruction=DOC, show_progress=True)
    assert (lc.document_instruction, lc.embed_instruction, lc.show_progress_bar, lc.show_progress) == (
        DOC, DOC, True, True,
    )  # fmt: skip
    li = InstructorEmbedding(
        model_name=str(TINY), device="cpu", text_instruction=DOC, show_progress=True, embed_batch_size=4
    )
    assert (li.document_instruction, li.text_instruction, li.show_progress_bar, li.batch_size) == (DOC, DOC, True, 4)
    # LlamaIndex's serialization round-trips under the canonical names.
    again = InstructorEmbedding.from_dict(li.to_dict())
    assert (again.document_instruction, again.embed_batch_size) == (DOC, 4)


@pytest.mark.parametrize(
    ("adapter", "settings", "message"),
    [
        ("langchain", {"embed_instruction": "a", "document_instruction": "b"},
         "give document_instruction= or its legacy name embed_instruction=, not both"),
        ("langchain", {"show_progress": True, "show_progress_bar": True},
         "give show_progress_bar= or its legacy name show_progress=, not both"),
        ("llama_index", {"text_instruction": "a", "document_instruction": "b"},
         "give document_instruction= or its legacy name text_instruction=, not both"),
        ("llama_index", {"batch_size": 4, "embed_batch_size": 8}, "give batch_size= or embed_batch_size=, not both"),
    ],
)  # fmt: skip
def test_both_names_of_one_setting_are_refused(adapter, settings, message):
    from instructor_integrations.langchain import InstructorEmbeddings
    from instructor_integrations.llama_index import InstructorEmbedding

    cls = InstructorEmbeddings if adapter == "langchain" else InstructorEmbedding
    with pytest.raises(ValueError, match=message):
        cls(model_name=str(TINY), device="cpu", **settings)


def test_every_encoder_setting_reaches_the_shared_encoder_from_every_adapter(tmp_path):
    """One settings object: each adapter takes every model setting of ``EncoderSettings`` (LlamaIndex names the
    encoder's worker processes ``encoder_num_workers``), shows it as ``encoder_settings``, and the three share the
    one encoder built from it."""
    from instructor_integrations import EncoderSettings, clear_encoder_cache
    from instructor_integrations._adapter import MODEL_SETTINGS

    # A value other than the default for every setting that does not need a GPU or a compiler.
    chosen = {
        "device": "cpu",
        "precision": "exact",
        "max_seq_length": 96,
        "token_budget": 777,
        "cache_folder": str(tmp_path),
        "local_files_only": True,
        "trust_remote_code": True,
        "instructor_pooling": False,
        "num_workers": 2,
    }
    defaults = EncoderSettings().as_kwargs()
    assert set(MODEL_SETTINGS) == set(defaults) - {"model_name_or_path", "batch_size", "show_progress_bar"}
    assert all(chosen[name] != defaults[name] for name in chosen)
    expected = EncoderSettings(str(TINY), **chosen)
    clear_encoder_cache()
    llama = {**{k: v for k, v in chosen.items() if k != "num_workers"}, "encoder_num_workers": 2}
    from instructor_integrations.chroma import InstructorEmbeddingFunction
    from instructor_integrations.langchain import InstructorEmbeddings
    from instructor_integrations.llama_index import InstructorEmbedding

    built = {
        "langchain": InstructorEmbeddings(model_name=str(TINY), **chosen),
        "llama_index": InstructorEmbedding(model_name=str(TINY), **llama),
        "chroma": InstructorEmbeddingFunction(str(TINY), **chosen),
    }
    for name, adapter in built.items():
        assert adapter.encoder_settings == expected, name
    encoders = {id(a.instructor_encoder if name != "chroma" else a.encoder) for name, a in built.items()}
    assert len(encoders) == 1
    encoder = built["langchain"].instructor_encoder
    resolved = encoder.settings
    for name, value in chosen.items():
        assert getattr(resolved, name) == value, name
    assert encoder._pool is not None and encoder._pool.workers == 2 and not encoder._pool.started
    encoder.close()
    clear_encoder_cache()


@pytest.mark.parametrize(
    ("adapter", "settings", "message"),
    [
        ("langchain", {"token_budget": 0}, "token_budget (or 'auto') must be a positive int, got 0"),
        ("langchain", {"token_budget": "big"}, "token_budget (or 'auto') must be a positive int, got 'big'"),
        ("llama_index", {"max_seq_length": 0}, "max_seq_length must be a positive int, got 0"),
        ("llama_index", {"precision": "fast", "dtype": "float16"}, "pass either dtype='float16' or precision='fast'"),
        ("chroma", {"trust_remote_code": 1}, "trust_remote_code must be True or False, got 1"),
        ("chroma", {"dtype": "int8"}, "dtype must be one of 'auto', 'float32', 'bfloat16', 'float16', got 'int8'"),
    ],
)
def test_adapters_refuse_a_bad_encoder_setting_by_name_before_loading(adapter, settings, message):
    from instructor_integrations.chroma import InstructorEmbeddingFunction
    from instructor_integrations.langchain import InstructorEmbeddings
    from instructor_integrations.llama_index import InstructorEmbedding

    cls = {"langchain": InstructorEmbeddings, "llama_index": InstructorEmbedding, "chroma": InstructorEmbeddingFunction}
    with pytest.raises((TypeError, ValueError), match=message.replace("(", r"\(").replace(")", r"\)")):
        cls[adapter](model_name="/nonexistent/model", **settings)


def test_one_attribute_names_the_encoder_in_use_on_every_adapter(tiny_path):
    """``encoder`` on LangChain, LlamaIndex and Chroma: the encoder given, or the shared one; the old name warns."""
    from instructor_integrations import InstructorEncoder, get_encoder

    built = adapters({"model_name": tiny_path, "device": "cpu"})
    shared = get_encoder(tiny_path, device="cpu")
    assert all(adapter.encoder is shared for adapter in built.values())
    own = InstructorEncoder(tiny_path, device="cpu", batch_size=3)
    given = adapters({"model_name": tiny_path, "device": "cpu", "encoder": own})
    assert all(adapter.encoder is own for adapter in given.values())
    for name in ("langchain", "llama_index"):
        with pytest.warns(DeprecationWarning, match="instructor_encoder is deprecated, use encoder"):
            assert given[name].instructor_encoder is own
