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
