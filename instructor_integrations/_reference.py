"""INSTRUCTOR's reference semantics, torch-free: how a row becomes model input and what pooling leaves out.

What ``InstructorEmbedding`` 1.0.1 computes for one ``[instruction, text]`` row (``shared/parity``'s
``REFERENCE.md`` has the original code):

* the text is stripped; the model input is ``(instruction + text).strip()``, no space inserted;
* the instruction is tokenized on its own (stripped, truncated at the input limit); its token count
  minus the final ``</s>`` is ``n``; a one-token instruction (``n <= 1``) is *not* left out (``n = 0``);
* mean pooling leaves out the first ``n`` tokens of the input.

:func:`split_row` turns a row into a ``(prompt, body)`` pair: the prompt is the stripped instruction,
whose measured length is ``n``, and the runner hands both to sentence-transformers' public
``preprocess(..., prompt=...)`` / ``forward`` (what ``SentenceTransformer.encode(prompt=...)`` runs per
batch), with ``include_prompt=False`` pooling.
:func:`plan_batches` is how rows are grouped into forward passes; it changes no number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["REFERENCE_MAX_SEQ_LENGTH", "Batch", "instruction_length", "plan_batches", "split_row"]

#: The reference truncates every input at 512 tokens, whatever the checkpoint's config says.
REFERENCE_MAX_SEQ_LENGTH = 512

#: One forward pass: the prompt its rows share and the indices of its rows.
Batch = tuple[str, list[int]]


def instruction_length(token_count: int, max_seq_length: int) -> int:
    """The reference's ``n`` for an instruction of ``token_count`` tokens (special tokens included).

    Truncation keeps ``max_seq_length`` tokens; the final ``</s>`` is not counted; an instruction of one
    token or less is not left out of the pooling at all.

    Examples:
        >>> instruction_length(8, 512), instruction_length(600, 512), instruction_length(2, 512)
        (7, 511, 0)
    """
    n = min(token_count, max_seq_length) - 1
    return 0 if n <= 1 else n


def split_row(
    instruction: str | None, text: str, *, pooling: bool, instruction_tokens: Callable[[str], int]
) -> tuple[str, str]:
    """Turn one row into ``(prompt, body)``: ``prompt + body`` is the model input.

    Args:
        instruction: The row's instruction, or ``None`` for plain mean pooling.
        text: The row's text.
        pooling: Leave the instruction's tokens out of the pooling (INSTRUCTOR pooling).
        instruction_tokens: The reference's ``n`` of a stripped instruction (see
            :func:`instruction_length`).

    Returns:
        The prompt (``""`` when no token is left out of the pooling) and the rest of the input.

    Examples:
        >>> n = lambda instruction: 3
        >>> split_row("  Represent it: ", " text ", pooling=True, instruction_tokens=n)
        ('Represent it:', ' text')
        >>> split_row("Represent it: ", " text ", pooling=False, instruction_tokens=n)
        ('', 'Represent it: text')
        >>> split_row(None, " text ", pooling=True, instruction_tokens=n)
        ('', 'text')
    """
    text = text.strip()
    if instruction is None:
        return "", text
    full = (instruction + text).strip()
    stripped = instruction.strip()
    if not pooling or not stripped or instruction_tokens(stripped) == 0:
        return "", full
    return stripped, full[len(stripped) :]


def plan_batches(
    prompts: Sequence[str],
    lengths: Sequence[int],
    *,
    batch_size: int,
    token_budget: int | None,
    max_seq_length: int,
) -> list[Batch]:
    """Group rows by prompt, sort each group by token count (longest first), cut it into batches.

    A batch holds at most ``batch_size`` rows and, with a ``token_budget``, at most that many padded
    tokens (rows times its longest row, capped at ``max_seq_length``), but never less than one row.

    Examples:
        >>> plan_batches(["p", "p", "", "p"], [5, 9, 4, 7], batch_size=2, token_budget=None, max_seq_length=512)
        [('p', [1, 3]), ('p', [0]), ('', [2])]
        >>> plan_batches(["p"] * 4, [9, 9, 3, 3], batch_size=4, token_budget=18, max_seq_length=512)
        [('p', [0, 1]), ('p', [2, 3])]
    """
    groups: dict[str, list[int]] = {}
    for index, prompt in enumerate(prompts):
        groups.setdefault(prompt, []).append(index)
    batches: list[Batch] = []
    for prompt, members in groups.items():
        members.sort(key=lambda i: -lengths[i])
        start = 0
        while start < len(members):
            size = batch_size
            if token_budget is not None:
                longest = min(lengths[members[start]], max_seq_length)
                size = max(1, min(batch_size, token_budget // max(longest, 1)))
            batches.append((prompt, members[start : start + size]))
            start += size
    return batches
