"""Input validation shared by every public entry point.

Each check raises ``TypeError`` or ``ValueError`` whose message names the argument, the offending
position and value, and what is accepted, so that bad input never reaches the model as a deep
``AttributeError``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

__all__ = [
    "PRIORITIES",
    "Priority",
    "check_priority",
    "check_instruction",
    "check_text",
    "check_instructions",
    "check_pairs",
    "check_positive_int",
    "check_positive_seconds",
    "check_texts",
    "short",
]


#: How a call is scheduled on an encoder's queue.
Priority = Literal["auto", "interactive", "bulk"]
PRIORITIES: tuple[str, ...] = ("auto", "interactive", "bulk")


def check_priority(priority: object) -> None:
    """Raise ``ValueError`` naming ``priority`` unless it is one of :data:`PRIORITIES`."""
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(map(repr, PRIORITIES))}, got {priority!r}")


def short(value: Any, limit: int = 60) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_text(value: Any, name: str = "text") -> str:
    """Validate one text: a ``str`` of valid Unicode."""
    return _check_str(value, name)


def _check_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{where} must be a str, got {type(value).__name__}: {short(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{where} is not valid Unicode text (a lone surrogate at character {exc.start}): {short(value)}; "
            "decode your bytes with errors='replace' first"
        ) from None
    return value


def _as_list(value: Any, name: str, what: str) -> list[Any]:
    if value is None:
        raise TypeError(f"{name} must be {what}, got None")
    if isinstance(value, (str, bytes, bytearray)):
        raise TypeError(
            f"{name} must be {what}, got a single {type(value).__name__}: {short(value)}; wrap it in a list: [{name}]"
        )
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}: {short(value)}")
    return list(value)


def check_texts(texts: Any, name: str = "texts") -> list[str]:
    """Validate a batch of texts.

    Args:
        texts: A list (or any non-string iterable) of ``str``.
        name: The argument name used in error messages.

    Returns:
        The texts as a new list.

    Raises:
        TypeError: ``None``, a bare string or bytes, a mapping, or an item that is not a ``str``.
        ValueError: An item that is not valid Unicode (lone surrogates).
    """
    items = _as_list(texts, name, "a list of str")
    for index, item in enumerate(items):
        _check_str(item, f"{name}[{index}]")
    return items


def check_instruction(instruction: Any, name: str = "instruction") -> str | None:
    """Validate one instruction: ``None`` or a ``str``."""
    if instruction is None:
        return None
    return _check_str(instruction, name)


def check_instructions(instruction: Any, n: int, name: str = "instruction") -> list[str | None]:
    """Validate an instruction for ``n`` texts: one ``str``/``None`` for all, or one per row."""
    if instruction is None or isinstance(instruction, str):
        one = check_instruction(instruction, name)
        return [one] * n
    items = _as_list(instruction, name, "None, a str, or a list of str (one per text)")
    if len(items) != n:
        raise ValueError(f"{name} has {len(items)} items but there are {n} texts; give one instruction per text")
    return [check_instruction(item, f"{name}[{index}]") for index, item in enumerate(items)]


def check_pairs(pairs: Any, name: str = "pairs") -> list[tuple[str, str]]:
    """Validate ``[[instruction, text], ...]``.

    Raises:
        TypeError: Not a list, or a row that is not a two-item list/tuple of ``str``.
        ValueError: A row with a length other than 2.
    """
    rows = _as_list(pairs, name, "a list of [instruction, text] pairs")
    out: list[tuple[str, str]] = []
    for index, row in enumerate(rows):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence):
            raise TypeError(
                f"{name}[{index}] must be an [instruction, text] pair, got {type(row).__name__}: {short(row)}"
            )
        if len(row) != 2:
            raise ValueError(
                f"{name}[{index}] must have exactly 2 items [instruction, text], got {len(row)}: {short(row)}"
            )
        instruction = _check_str(row[0], f"{name}[{index}][0] (instruction)")
        text = _check_str(row[1], f"{name}[{index}][1] (text)")
        out.append((instruction, text))
    return out


def check_bool(value: Any, name: str, *, allow_none: bool = False) -> bool | None:
    """Validate a ``True``/``False`` setting such as ``compile`` (``None`` too when ``allow_none``)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, bool):
        allowed = "None, True or False" if allow_none else "True or False"
        raise TypeError(f"{name} must be {allowed}, got {short(value)}")
    return value


def check_positive_seconds(value: Any, name: str) -> float:
    """Validate a finite, positive number of seconds such as ``body_timeout``.

    Examples:
        >>> check_positive_seconds(2, "header_timeout")
        2
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a positive number of seconds, got {short(value)}")
    return value


def check_positive_int(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    """Validate a positive ``int`` setting such as ``batch_size``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {short(value)}")
    return value
