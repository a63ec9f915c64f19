"""Exact messages of the shared input checks (the bad-input battery matches parts; these pin the whole)."""

from __future__ import annotations

import pytest

from instructor_integrations._validation import check_text, short


def test_short_keeps_up_to_the_limit_and_cuts_beyond_it() -> None:
    assert short("x" * 58) == repr("x" * 58)  # 60 characters with the quotes: kept
    assert short("x" * 59) == repr("x" * 59)[:57] + "..."
    assert len(short("x" * 500)) == 60
    assert short([1, 2, 3], limit=5) == "[1..."
    assert short(None) == "None"


def test_check_text_names_its_argument() -> None:
    with pytest.raises(TypeError) as info:
        check_text(3)
    assert str(info.value) == "text must be a str, got int: 3"
    assert check_text("fine") == "fine"


def test_a_single_bad_instruction_is_named() -> None:
    from instructor_integrations._validation import check_instructions

    with pytest.raises(ValueError) as info:
        check_instructions("Represent \ud800: ", 2)
    assert str(info.value).startswith("instruction is not valid Unicode text (a lone surrogate at character 10)")
    assert check_instructions("Represent: ", 2) == ["Represent: ", "Represent: "]


def test_check_bool_messages_and_none() -> None:
    from instructor_integrations._validation import check_bool

    assert check_bool(True, "compile") is True and check_bool(None, "pooling", allow_none=True) is None
    with pytest.raises(TypeError) as info:
        check_bool(None, "compile")  # None is refused unless allowed
    assert str(info.value) == "compile must be True or False, got None"
    with pytest.raises(TypeError) as info:
        check_bool("yes", "instructor_pooling", allow_none=True)
    assert str(info.value) == "instructor_pooling must be None, True or False, got 'yes'"


def test_check_pairs_messages() -> None:
    from instructor_integrations._validation import check_pairs

    with pytest.raises(TypeError) as info:
        check_pairs([["Represent: ", "ok"], 5])
    assert str(info.value) == "pairs[1] must be an [instruction, text] pair, got int: 5"
    with pytest.raises(ValueError) as info:
        check_pairs([["a", "b", "c"]])
    assert str(info.value) == "pairs[0] must have exactly 2 items [instruction, text], got 3: ['a', 'b', 'c']"


def test_check_instruction_default_name() -> None:
    from instructor_integrations._validation import check_instruction

    with pytest.raises(TypeError) as info:
        check_instruction(5)
    assert str(info.value) == "instruction must be a str, got int: 5"
    assert check_instruction(None) is None


def test_whole_messages_of_texts_and_numbers() -> None:
    from instructor_integrations._validation import check_positive_int, check_texts

    with pytest.raises(ValueError) as info:
        check_texts(["\ud800"])
    assert str(info.value) == (
        "texts[0] is not valid Unicode text (a lone surrogate at character 0): '\\ud800'; "
        "decode your bytes with errors='replace' first"
    )
    with pytest.raises(TypeError) as info:
        check_texts("hello")
    assert str(info.value) == "texts must be a list of str, got a single str: 'hello'; wrap it in a list: [texts]"
    for bad in (True, None, 0, 2.0):
        with pytest.raises(ValueError) as info:
            check_positive_int(bad, "batch_size")
        assert str(info.value) == f"batch_size must be a positive int, got {bad!r}"
    assert check_positive_int(None, "batch_size", allow_none=True) is None


def test_a_token_budget_counts_one_token_rows_as_one() -> None:
    from instructor_integrations._reference import plan_batches

    batches = plan_batches(["p"] * 8, [1] * 8, batch_size=8, token_budget=4, max_seq_length=512)
    assert [len(members) for _, members in batches] == [4, 4]
