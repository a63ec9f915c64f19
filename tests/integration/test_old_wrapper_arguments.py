"""Code written for the old wrappers keeps working: their constructor arguments keep their meaning, with a
DeprecationWarning naming the new setting, or are refused with a message that names the replacement."""

from __future__ import annotations

import numpy as np
import pytest

from instructor_integrations import InstructorEncoder

from ..conftest import TINY

pytestmark = pytest.mark.integration


def test_langchain_model_kwargs_and_encode_kwargs_keep_their_meaning() -> None:
    pytest.importorskip("langchain_core")
    from instructor_integrations.langchain import InstructorEmbeddings

    with pytest.warns(DeprecationWarning, match="is deprecated|is not needed") as caught:
        old = InstructorEmbeddings(  # as written for HuggingFaceInstructEmbeddings
            model_name=str(TINY),
            model_kwargs={"device": "cpu"},
            encode_kwargs={"batch_size": 16, "normalize_embeddings": True},
        )
    messages = " ".join(str(w.message) for w in caught)
    assert "model_kwargs['device'] is deprecated, use device=" in messages
    assert "encode_kwargs['batch_size'] is deprecated, use batch_size=" in messages
    assert "normalize_embeddings" in messages
    assert (old.device, old.batch_size) == ("cpu", 16)
    texts = ["Tides follow the moon.", "Bees dance."]
    expected = InstructorEncoder(str(TINY), device="cpu").encode(texts, old.document_instruction)
    np.testing.assert_allclose(np.asarray(old.embed_documents(texts)), expected, atol=1e-6)
    assert np.allclose(np.linalg.norm(expected, axis=1), 1.0)  # "normalize_embeddings": they are


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encode_kwargs": {"normalize_embeddings": False}}, r"normalize_embeddings'\]=False is not available"),
        ({"encode_kwargs": {"convert_to_numpy": True}}, r"encode_kwargs\['convert_to_numpy'\] has no setting here; "
         r"the encode_kwargs keys that do: batch_size, show_progress_bar, normalize_embeddings"),
        ({"model_kwargs": {"device": "cpu"}, "device": "cpu"}, r"give device= or model_kwargs\['device'\], not both"),
    ],
)  # fmt: skip
def test_langchain_old_arguments_without_a_meaning_here_are_refused_by_name(kwargs: dict, message: str) -> None:
    pytest.importorskip("langchain_core")
    from instructor_integrations.langchain import InstructorEmbeddings

    with pytest.raises(ValueError, match=message):
        InstructorEmbeddings(model_name=str(TINY), **kwargs)


def test_chromas_old_instruction_argument_sets_both_instructions() -> None:
    pytest.importorskip("chromadb")
    from instructor_integrations.chroma import InstructorEmbeddingFunction

    with pytest.warns(DeprecationWarning, match="instruction= is deprecated"):
        old = InstructorEmbeddingFunction(model_name=str(TINY), device="cpu", instruction="Represent the note: ")
    assert old.document_instruction == old.query_instruction == "Represent the note: "
    expected = InstructorEncoder(str(TINY), device="cpu").encode(["Tides follow the moon."], "Represent the note: ")
    np.testing.assert_allclose(np.asarray(old(["Tides follow the moon."])), expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"give instruction= .* or the instructions/task, not both"):
        InstructorEmbeddingFunction(model_name=str(TINY), instruction="a: ", task="SciFact")
