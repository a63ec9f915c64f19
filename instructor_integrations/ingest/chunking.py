"""Chunks measured in the model's own tokens, so that no chunk is truncated when it is embedded.

INSTRUCTOR reads at most ``max_seq_length`` tokens (512), instruction included, and silently drops the
rest. A :class:`Chunker` cuts text into chunks that fit, with the instruction they will be embedded
with: its budget is ``max_seq_length`` minus the tokens of the instruction and of the special tokens,
counted with the encoder's tokenizer, and every chunk is checked against the limit afterwards.

The splitting itself is `semantic-text-splitter <https://github.com/benbrandt/text-splitter>`_ (Rust,
counting with the Hugging Face tokenizer): it cuts at the largest semantic unit that fits (sections,
then paragraphs, sentences, words), keeps Markdown's code blocks and tables whole where it can, and
returns each chunk's offset, so a document's chunks can be checked to cover it.

Examples:
    >>> from instructor_integrations import InstructorEncoder
    >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
    >>> chunker = Chunker.for_encoder(encoder, "Represent the document for retrieval: ", max_tokens=24)
    >>> chunks = chunker.split("Tides follow the moon. " * 6)
    >>> len(chunks), chunks[1].start
    (6, 23)
    >>> max(encoder.count_tokens([c.text for c in chunks], "Represent the document for retrieval: ")) <= 512
    True
"""

from __future__ import annotations

import bisect
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._validation import check_instruction, short

__all__ = ["Chunk", "Chunker", "chunk_budget"]

# The module's public name, which logging configurations name (the code moved into ingest/).
logger = logging.getLogger("instructor_integrations.chunking")


@dataclass(frozen=True)
class Chunk:
    """A piece of a text: its characters and where they start in the text."""

    text: str
    start: int


def chunk_budget(encoder: Any, instruction: str | None) -> int:
    """Tokens a chunk may hold: ``max_seq_length`` minus those of ``instruction`` and the special tokens.

    Examples:
        >>> from instructor_integrations import InstructorEncoder
        >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
        >>> chunk_budget(encoder, None) == encoder.max_seq_length - 1  # T5 adds one token, </s>
        True
    """
    base = encoder.count_tokens([""], instruction)[0]
    budget = int(encoder.max_seq_length) - int(base)
    if budget < 1:
        raise ValueError(
            f"the instruction takes {base} of the model's {encoder.max_seq_length} tokens: no room is left for text"
        )
    return budget


class Chunker:
    """Cuts texts into chunks that fit the model with their instruction (see the module doc).

    Build it with :meth:`for_encoder`. Use :meth:`split` for chunks with their offsets, or
    :meth:`split_text` for the strings. The same chunker backs ``InstructorEmbeddings.text_splitter()``,
    ``InstructorEmbedding.node_parser()``, ``instructor-embed ingest`` and the store helpers.

    Args:
        tokenizer: A ``tokenizers.Tokenizer`` (no truncation, no padding) that counts the model's tokens.
        max_tokens: Most tokens in a chunk, special tokens and instruction not counted.
        overlap_tokens: Most tokens consecutive chunks may share (0: none).
        markdown: Cut at Markdown's structure (headings, code blocks, tables) first.
        fits: Called with chunk texts; returns those that would be truncated (each chunk that does is
            cut again, smaller).

    Examples:
        >>> from instructor_integrations import InstructorEncoder
        >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
        >>> chunker = Chunker.for_encoder(encoder, None, markdown=True)
        >>> chunker.max_tokens == encoder.max_seq_length - 1
        True
    """

    def __init__(
        self,
        tokenizer: Any,
        max_tokens: int,
        *,
        overlap_tokens: int = 0,
        markdown: bool = False,
        fits: Callable[[list[str]], list[bool]] | None = None,
    ) -> None:
        for name, value, low in (("max_tokens", max_tokens, 1), ("overlap_tokens", overlap_tokens, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {short(value)}")
        if overlap_tokens >= max_tokens:
            raise ValueError(f"overlap_tokens must be smaller than max_tokens={max_tokens}, got {overlap_tokens}")
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.markdown = markdown
        self._tokenizer = tokenizer
        self._fits = fits
        self._splitter = self._make(max_tokens)

    def _make(self, capacity: int) -> Any:
        import semantic_text_splitter as splitters

        kind = splitters.MarkdownSplitter if self.markdown else splitters.TextSplitter
        overlap = min(self.overlap_tokens, capacity - 1)
        return kind.from_huggingface_tokenizer(self._tokenizer, capacity, overlap=overlap)

    @classmethod
    def for_encoder(
        cls,
        encoder: Any,
        instruction: str | None,
        *,
        max_tokens: int | None = None,
        overlap_tokens: int = 0,
        markdown: bool = False,
    ) -> Chunker:
        """A chunker for texts that ``encoder`` will embed with ``instruction``.

        Args:
            encoder: An :class:`~instructor_integrations.encoder.InstructorEncoder` (its tokenizer counts).
            instruction: The instruction the chunks will be embedded with (``None``: none).
            max_tokens: At most this many tokens per chunk (default and ceiling: what fits, see
                :func:`chunk_budget`).
            overlap_tokens: Tokens consecutive chunks may share.
            markdown: Cut at Markdown's structure first.
        """
        tokenizer = getattr(encoder, "fast_tokenizer", None)
        if tokenizer is None:
            raise TypeError(
                f"chunking needs the model's tokenizer; {type(encoder).__name__} has none here "
                "(use an InstructorEncoder of the same model: only its tokenizer is used for chunking)"
            )
        instruction = check_instruction(instruction)
        budget = chunk_budget(encoder, instruction)
        if max_tokens is not None:
            if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
                raise ValueError(f"max_tokens must be a positive int, got {short(max_tokens)}")
            if max_tokens > budget:
                raise ValueError(
                    f"max_tokens={max_tokens} does not fit: with this instruction a chunk has room for {budget} tokens "
                    f"(max_seq_length={encoder.max_seq_length})"
                )
        limit = int(encoder.max_seq_length)

        def fits(texts: list[str]) -> list[bool]:
            return [count <= limit for count in encoder.count_tokens(texts, instruction)]

        return cls(tokenizer, max_tokens or budget, overlap_tokens=overlap_tokens, markdown=markdown, fits=fits)

    def as_markdown(self) -> Chunker:
        """This chunker, cutting at Markdown's structure first (itself if it already does)."""
        if self.markdown:
            return self
        return Chunker(
            self._tokenizer, self.max_tokens, overlap_tokens=self.overlap_tokens, markdown=True, fits=self._fits
        )

    def reserve(self, prefix: str) -> Chunker:
        """A chunker for chunks that will be embedded after ``prefix`` (LlamaIndex puts a node's metadata there).

        Its chunks leave room for the prefix's tokens, and are checked with the prefix in front.
        """
        if not prefix:
            return self
        used = len(self._tokenizer.encode(prefix, add_special_tokens=False))
        if used >= self.max_tokens:
            raise ValueError(
                f"the metadata text takes {used} tokens, {self.max_tokens} fit in a chunk: no room is left for text "
                "(exclude metadata keys from the embedding, or shorten them)"
            )
        fits = self._fits
        return Chunker(
            self._tokenizer,
            self.max_tokens - used,
            overlap_tokens=min(self.overlap_tokens, self.max_tokens - used - 1),
            markdown=self.markdown,
            fits=None if fits is None else (lambda texts: fits([prefix + text for text in texts])),
        )

    def split(self, text: str) -> list[Chunk]:
        """The chunks of ``text`` with their character offsets, in order; none for blank text.

        Chunks hold no leading or trailing whitespace; together they hold every other character of
        ``text`` (consecutive chunks may share up to ``overlap_tokens``).
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        chunks = _trimmed(self._splitter.chunk_indices(text), 0)
        if self.markdown and len(chunks) > 1:
            chunks = self._headings_with_text(text, chunks)
        if self._fits is None or not chunks:
            return chunks
        return self._refit(chunks, self.max_tokens)

    def _tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def _headings_with_text(self, text: str, chunks: list[Chunk]) -> list[Chunk]:
        """Headings at the end of a chunk (or making up all of it) open the next chunk instead.

        The splitter packs greedily, so a heading can end one chunk while its text starts the next. The
        heading moves forward; when the next chunk has no room for it, that chunk is cut again with the
        heading's tokens held back.
        """
        queue = deque(chunks)
        fences = [match.start() for match in _FENCE_LINE.finditer(text)]
        out: list[Chunk] = []
        waiting: int | None = None  # where the headings waiting for the next chunk start in ``text``
        while queue:
            chunk = queue.popleft()
            if waiting is not None and chunk.start > waiting:
                end = chunk.start + len(chunk.text)
                if self._tokens(text[waiting:end]) <= self.max_tokens:
                    chunk = Chunk(text[waiting:end], waiting)
                else:
                    room = self.max_tokens - self._tokens(text[waiting : chunk.start]) - 1
                    if room >= 1:
                        pieces = _trimmed(self._make(room).chunk_indices(chunk.text), chunk.start)
                        first = pieces[0]
                        chunk = Chunk(text[waiting : first.start + len(first.text)], waiting)
                        queue.extendleft(reversed(pieces[1:]))
                    else:  # the headings take the room: all but the last go on their own
                        heads = text[waiting : chunk.start]
                        last = waiting + heads.rstrip().rfind("\n") + 1
                        if last > waiting:
                            out.append(Chunk(text[waiting:last].strip(), waiting))
                            waiting = last
                            queue.appendleft(chunk)
                            continue
                        out.append(Chunk(heads.strip(), waiting))  # one heading too long to share a chunk
            waiting = None
            cut = _trailing_headings(chunk.text) if queue else None
            if cut is not None and bisect.bisect_left(fences, chunk.start + cut) % 2:
                cut = None  # inside fenced code: not a heading
            if cut is not None:
                waiting = chunk.start + cut
                chunk = Chunk(chunk.text[:cut].rstrip(), chunk.start)
                if not chunk.text:
                    continue
            out.append(chunk)
        return out

    def _refit(self, chunks: list[Chunk], capacity: int) -> list[Chunk]:
        """Cut again, smaller, the chunks that would still be truncated (tokens merge at joins)."""
        assert self._fits is not None
        verdicts = self._fits([chunk.text for chunk in chunks])
        if all(verdicts):
            return chunks
        if capacity <= 1:
            raise ValueError("a chunk of one token does not fit the model with this instruction")
        smaller = self._make(max(1, capacity * 9 // 10))
        out: list[Chunk] = []
        for chunk, ok in zip(chunks, verdicts, strict=True):
            if ok:
                out.append(chunk)
            else:
                pieces = _trimmed(smaller.chunk_indices(chunk.text), chunk.start)
                out.extend(self._refit(pieces, max(1, capacity * 9 // 10)))
        return out

    def split_text(self, text: str) -> list[str]:
        """The chunks of ``text`` as strings."""
        return [chunk.text for chunk in self.split(text)]


#: An ATX heading line (``#`` to ``######``).
HEADING_LINE = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE_LINE = re.compile(r"^[ \t]*(```|~~~)", re.MULTILINE)


def _trailing_headings(text: str) -> int | None:
    """Where the heading lines that end ``text`` start, or ``None``."""
    lines = text.split("\n")
    at = len(lines)
    while at > 0 and (not lines[at - 1].strip() or HEADING_LINE.match(lines[at - 1])):
        at -= 1
    if at == len(lines):
        return None
    while not lines[at].strip():
        at += 1
    return sum(len(line) + 1 for line in lines[:at])


def _trimmed(indexed: list[tuple[int, str]], offset: int) -> list[Chunk]:
    """Chunks without leading or trailing whitespace (Markdown mode keeps a line's indentation), at ``offset``."""
    chunks = []
    for start, piece in indexed:
        text = piece.strip()
        if text:
            chunks.append(Chunk(text, offset + start + len(piece) - len(piece.lstrip())))
    return chunks
