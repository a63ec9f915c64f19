"""Property-based tests (hypothesis) on the reference checkpoint, exact precision."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instructor_integrations import InstructorEncoder

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
INSTRUCTIONS = st.sampled_from([None, "", "Represent the sentence: ", "Q:", "a ", "represent the Science passage; "])


@SETTINGS
@given(text=st.text(max_size=300), instruction=INSTRUCTIONS)
def test_any_unicode_text_gives_a_finite_unit_vector(tiny_encoder: InstructorEncoder, text: str, instruction) -> None:
    vector = tiny_encoder.encode([text], instruction)
    assert vector.shape == (1, tiny_encoder.embedding_dimension)
    assert np.isfinite(vector).all()
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


@SETTINGS
@given(
    texts=st.lists(st.text(min_size=0, max_size=120), min_size=1, max_size=12),
    instruction=INSTRUCTIONS,
    batch_size=st.integers(min_value=1, max_value=8),
    data=st.data(),
)
def test_embedding_does_not_depend_on_batch_or_position(
    tiny_encoder: InstructorEncoder, texts: list[str], instruction, batch_size: int, data: st.DataObject
) -> None:
    together = tiny_encoder.encode(texts, instruction, batch_size=batch_size)
    order = data.draw(st.permutations(range(len(texts))))
    shuffled = tiny_encoder.encode([texts[i] for i in order], instruction, batch_size=batch_size)
    alone = np.concatenate([tiny_encoder.encode([text], instruction) for text in texts])
    assert np.abs(together - alone).max() <= 1e-5
    assert np.abs(shuffled - together[list(order)]).max() <= 1e-5
