"""Reading documents for ingestion: files and folders (text, Markdown, HTML, DOCX, PDF), JSONL; chunking.

With a :class:`~instructor_integrations.chunking.Chunker` (what ``instructor-embed ingest`` uses), chunks
are measured in the model's tokens and never truncated; without one, :func:`chunk_text` cuts by
characters (the 0.1 behaviour, kept for code that calls it).

Examples:
    >>> chunks = chunk_text("one two three four five six", chunk_size=10, chunk_overlap=5)
    >>> chunks
    ['one two', 'two three', 'three four', 'four five', 'five six']
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._ids import content_id
from .._validation import check_positive_int, short
from .loaders import DOCUMENT_SUFFIXES, Section, SourceError, read_file, read_text_file

if TYPE_CHECKING:  # pragma: no cover
    from .chunking import Chunker

__all__ = [
    "TEXT_SUFFIXES",
    "BadInput",
    "CountingReader",
    "FileIngestReport",
    "FileProgress",
    "Record",
    "SourceError",
    "chunk_text",
    "iter_paths",
    "read_records",
]

# The module's public name, which logging configurations name (the code moved into ingest/).
logger = logging.getLogger("instructor_integrations.sources")

#: Suffixes read from folders: documents (see :data:`~instructor_integrations.loaders.DOCUMENT_SUFFIXES`).
TEXT_SUFFIXES = DOCUMENT_SUFFIXES
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})


@dataclass
class BadInput:
    """One input skipped with ``skip_bad``: where and why."""

    where: str
    reason: str


@dataclass
class Record:
    """One chunk to ingest."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FileIngestReport:
    """What an ingest of files did (``instructor-embed ingest``, in one process or on Ray workers).

    Attributes:
        files: Files that gave at least one chunk.
        chunks: Chunks read.
        written: Chunks embedded and written in this run.
        skipped: Chunks whose id was already stored.
        bad: ``(where, reason)`` of each input that could not be read.
        file_ids: Each document file read whole, with the ids of its chunks (to delete what an edit left behind).
    """

    files: int
    chunks: int
    written: int
    skipped: int
    bad: list[tuple[str, str]]
    file_ids: dict[str, list[str]]


class CountingReader:
    """:func:`read_records` over ``paths`` that counts what it yields, for a :class:`FileIngestReport`.

    Iterate it once (into a store writer), then call :meth:`report` with what the writer did.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.txt").write_text("Tides follow the moon.")
        >>> reader = CountingReader([folder])
        >>> len(list(reader)), reader.report(written=1, skipped=0).files
        (1, 1)
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        chunker: Chunker | None = None,
        skip_bad: bool = False,
        progress: FileProgress | None = None,
    ) -> None:
        self.paths, self.chunker, self.skip_bad = paths, chunker, skip_bad
        self.bad: list[BadInput] = []
        self.file_ids: dict[str, list[str]] = {}
        self.files: set[str] = set()
        self.chunks = 0
        #: Told of each chunk read, so that it can count the files whose chunks are all written.
        self.progress = progress

    def __iter__(self) -> Iterator[Record]:
        records = read_records(
            self.paths, chunker=self.chunker, skip_bad=self.skip_bad, bad=self.bad, files=self.file_ids
        )
        for record in records:
            self.chunks += 1
            source = str(record.metadata["source"])
            head, colon, tail = source.rpartition(":")
            name = head if colon and tail.isdigit() else source  # a JSONL row's source is file:line
            if self.progress is not None and name not in self.files:
                self.progress.file_starts(self.chunks - 1)
            self.files.add(name)
            yield record
        if self.progress is not None:
            self.progress.file_starts(self.chunks)  # the last file ends here

    def report(self, *, written: int, skipped: int) -> FileIngestReport:
        """The counts of what was read, with what the writer wrote and skipped."""
        return FileIngestReport(
            len(self.files), self.chunks, written, skipped, [(b.where, b.reason) for b in self.bad], self.file_ids
        )


class FileProgress:
    """A progress bar over files that also counts chunks, for :class:`CountingReader` and the store writer.

    The files are counted before any is read (:func:`iter_paths`), so the bar has its total from the
    start. The writer advances it by the rows it writes (``update``, as on a tqdm bar); a file counts
    as done once all its chunks are written, and the chunks written so far are shown beside it.

    Examples:
        >>> from tqdm import tqdm
        >>> progress = FileProgress(tqdm(disable=True), files=2)
        >>> progress.file_starts(0); progress.file_starts(3); progress.file_starts(5)  # two files: 3 + 2 chunks
        >>> progress.update(4); progress.files_done, progress.written
        (1, 4)
    """

    def __init__(self, bar: Any, files: int) -> None:
        self.bar = bar
        self.bar.total = files
        self.written = 0
        self.files_done = 0
        self._ends: list[int] = []  # where each file read so far ends, in chunks read
        self._started = False

    @property
    def disable(self) -> bool:
        """Whether the bar is hidden (the writer writes smaller batches only for a shown one)."""
        return bool(self.bar.disable)

    def file_starts(self, chunks_before: int) -> None:
        """A new file's first chunk is read (or, at the end, the last file ended) after ``chunks_before``."""
        if self._started:
            self._ends.append(chunks_before)
        self._started = True
        self._advance()

    def update(self, rows: int) -> None:
        """``rows`` more rows were written (or skipped as stored)."""
        self.written += rows
        self._advance()

    def _advance(self) -> None:
        done = 0
        while self._ends and self._ends[0] <= self.written:
            self._ends.pop(0)
            done += 1
        self.files_done += done
        self.bar.set_postfix_str(f"{self.written} chunks", refresh=False)
        if done:
            self.bar.update(done)
        else:
            self.bar.refresh()

    def close(self, *, finished: bool) -> None:
        """Close the bar; ``finished``: every file is done (those with no text too), it shows its total."""
        if finished:
            self.bar.update(max(0, (self.bar.total or 0) - self.files_done))
            self.files_done = self.bar.total or 0
        self.bar.close()


def chunk_text(text: str, *, chunk_size: int = 1000, chunk_overlap: int = 200) -> list[str]:
    """Split ``text`` into chunks of at most ``chunk_size`` characters on word boundaries.

    Consecutive chunks share whole words of up to ``chunk_overlap`` characters in all (spaces not
    counted), as many as leave room for the next new word; every chunk adds at least one word. A single
    word longer than ``chunk_size`` is cut.
    """
    check_positive_int(chunk_size, "chunk_size")
    if isinstance(chunk_overlap, bool) or not isinstance(chunk_overlap, int) or not 0 <= chunk_overlap < chunk_size:
        raise ValueError(f"chunk_overlap must be an int in [0, chunk_size={chunk_size}), got {short(chunk_overlap)}")
    words: list[str] = []
    for word in text.split():
        words.extend(word[i : i + chunk_size] for i in range(0, len(word), chunk_size))
    chunks: list[str] = []
    start = 0
    while start < len(words):
        end, length = start, 0
        while end < len(words) and length + len(words[end]) + (1 if end > start else 0) <= chunk_size:
            length += len(words[end]) + (1 if end > start else 0)
            end += 1
        chunks.append(" ".join(words[start:end]))
        if end >= len(words):
            break
        back, overlap = end, 0
        while back - 1 > start and overlap + len(words[back - 1]) <= chunk_overlap:
            overlap += len(words[back - 1])
            back -= 1
        # The next chunk must reach the next new word: shared words that leave it no room are dropped.
        while back < end and sum(len(word) + 1 for word in words[back : end + 1]) - 1 > chunk_size:
            back += 1
        start = back
    return chunks


def iter_paths(paths: Sequence[str | Path]) -> Iterator[Path]:
    """Files named, and the document and JSONL files under folders named (recursive, sorted).

    Every file comes as its canonical path (absolute, symbolic links resolved), once, whatever the
    spelling it was reached by: ``notes``, ``./notes/``, ``/home/me/notes`` and a link to it name the same
    files. A chunk's id includes this path, so re-ingesting a folder from another working directory, or
    by another spelling, finds the chunks already stored.

    Raises:
        SourceError: A path that does not exist.
    """
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise SourceError(f"{str(raw)!r} does not exist")
        if path.is_dir():
            children = (c for c in sorted(path.rglob("*")) if c.suffix.lower() in TEXT_SUFFIXES | JSONL_SUFFIXES)
            files = [child.resolve() for child in children if child.is_file()]
        else:
            files = [path.resolve()]
        for file in files:
            if file not in seen:
                seen.add(file)
                yield file


def _jsonl_row(line: str, where: str) -> dict[str, Any]:
    """One JSONL line as a checked row; :class:`SourceError` naming the place when it is not one."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(row, dict):
        raise SourceError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if not isinstance(row.get("text"), str):
        raise SourceError(f"{where}: missing a string 'text' field")
    for key in ("title", "id"):
        if key in row and not isinstance(row[key], (str, int)):
            raise SourceError(f"{where}: {key!r} must be a string, got {short(row[key])}")
    return row


def _jsonl_records(path: Path, skip_bad: bool, bad: list[BadInput]) -> Iterator[tuple[dict[str, Any], str]]:
    text = read_text_file(path)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = _jsonl_row(line, where)
        except SourceError as error:
            if not skip_bad:
                raise
            bad.append(BadInput(where, str(error)))
            continue
        yield row, where


def _scalar_metadata(row: dict[str, Any]) -> dict[str, Any]:
    raw = row.get("metadata")
    meta: dict[str, Any] = raw if isinstance(raw, dict) else {}
    extra = {k: v for k, v in row.items() if k not in ("text", "title", "id", "_id", "metadata")}
    merged = {**extra, **meta}
    return {k: v for k, v in merged.items() if isinstance(v, (str, int, float, bool))}


def read_records(
    paths: Sequence[str | Path],
    *,
    chunker: Chunker | None = None,
    chunk_size: int = 1000,
    chunk_overlap: int = 200,
    skip_bad: bool = False,
    bad: list[BadInput] | None = None,
    files: dict[str, list[str]] | None = None,
) -> Iterator[Record]:
    """Yield chunks of every input, with stable ids and a ``source`` metadata field.

    A chunk's identity is its text, its place in its file (``section``: the page or heading section,
    from 0; ``chunk``: its index there) and the file's canonical path (``source``, see :func:`iter_paths`):
    the id is :func:`~instructor_integrations.vectorstores.content_id` of these and the section's
    ``page`` or ``heading``, so an unchanged file gives the same ids from any working directory, and an
    edit changes the ids of the edited sections' chunks (and of later ones only when sections come or go).

    Documents are read by :func:`~instructor_integrations.loaders.read_file` (PDF by page, Markdown,
    HTML and DOCX by heading). JSONL rows: ``text`` (required), ``title`` (prepended, MTEB style), ``id``
    (kept as the id of a single-chunk row, ``id#n`` for chunks), ``metadata`` (a dict) and other scalar
    fields (metadata).

    Args:
        paths: Files and folders.
        chunker: Cuts by the model's tokens (see :class:`~instructor_integrations.chunking.Chunker`);
            ``None``: by characters with ``chunk_size`` and ``chunk_overlap``.
        chunk_size: Maximum characters per chunk, without a chunker.
        chunk_overlap: Characters shared by consecutive chunks, without a chunker.
        skip_bad: Record unreadable files and malformed lines in ``bad`` and go on, instead of raising.
        bad: The list that collects skipped inputs.
        files: When given, receives each document file read (its ``source``) with the ids of its chunks,
            once the file is read whole (for deleting the chunks an edit left behind).

    Raises:
        SourceError: A missing, unreadable or malformed input (without ``skip_bad``).
        ImportError: A file format's extra is missing (the message holds the pip command).
    """
    collected = bad if bad is not None else []
    if chunker is None:
        chunk_text("", chunk_size=chunk_size, chunk_overlap=chunk_overlap)  # validate the settings up front

    def cut(text: str, markdown: bool = False) -> list[str]:
        if chunker is None:
            return chunk_text(text, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
        return (chunker.as_markdown() if markdown else chunker).split_text(text)

    for path in iter_paths(paths):
        try:
            if path.suffix.lower() in JSONL_SUFFIXES:
                yield from _jsonl_chunks(path, cut, skip_bad, collected)
            else:
                records = list(_document_chunks(path, read_file(path), cut))  # the whole file, before any write
                if files is not None:
                    files[str(path)] = [record.id for record in records]
                yield from records
        except SourceError as error:
            if not skip_bad:
                raise
            collected.append(BadInput(str(path), str(error)))


def _document_chunks(path: Path, sections: list[Section], cut: Any) -> Iterator[Record]:
    for number, section in enumerate(sections):
        for index, piece in enumerate(cut(section.text, section.markdown)):
            meta = {"source": str(path), **section.metadata, "section": number, "chunk": index}
            yield Record(content_id(piece, meta), piece, meta)


def _jsonl_chunks(path: Path, cut: Any, skip_bad: bool, collected: list[BadInput]) -> Iterator[Record]:
    for row, where in _jsonl_records(path, skip_bad, collected):
        title = str(row.get("title") or "")
        body = (title + " " + row["text"]).strip()
        metadata = {"source": where, **_scalar_metadata(row)}
        pieces = cut(body) or [""]
        base = row.get("id", row.get("_id"))
        for index, piece in enumerate(pieces):
            meta = {**metadata, "chunk": index}
            if base is not None:
                rid = str(base) if len(pieces) == 1 else f"{base}#{index}"
            else:
                rid = content_id(piece, meta)
            yield Record(rid, piece, meta)
