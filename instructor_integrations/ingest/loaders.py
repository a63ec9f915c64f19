"""Reading the files people have: text, Markdown, HTML, Word (DOCX) and PDF, as sections with metadata.

Each reader turns a file into :class:`Section` objects: PDF one per page (``page``, from 1), Markdown,
HTML and DOCX one per heading (``heading``: the path of headings, ``"Install > From source"``), plain
text one. Chunking happens afterwards, per section (see :mod:`instructor_integrations.sources`), so a
chunk never spans two pages or two headings.

The format libraries are optional extras, each named in the error when missing: ``[pdf]`` (pypdf, pure
Python, page by page), ``[docx]`` (python-docx: paragraph styles give the headings), ``[html]``
(Beautiful Soup with the standard library's parser). A file is read whole before any of its chunks is
written: an unreadable, corrupt or encrypted file raises :class:`SourceError` naming it, and nothing
of it is stored.

Examples:
    >>> sections = read_markdown(chr(10).join(["# Tides", "The moon pulls.", "## Spring", "Big ones."]))
    >>> [section.metadata["heading"] for section in sections]
    ['Tides', 'Tides > Spring']
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._optional import require
from .chunking import HEADING_LINE

__all__ = [
    "DOCUMENT_SUFFIXES",
    "FORMAT_EXTRAS",
    "MARKDOWN_SUFFIXES",
    "Section",
    "check_readers",
    "read_docx",
    "read_file",
    "read_html",
    "read_markdown",
    "read_pdf",
]

PLAIN_SUFFIXES = frozenset({".txt", ".text", ".rst"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
#: Every suffix :func:`read_file` reads.
DOCUMENT_SUFFIXES = PLAIN_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES | {".docx", ".pdf"}

#: The extra each format needs, with the module it installs.
FORMAT_EXTRAS: dict[str, tuple[str, str]] = {
    ".pdf": ("pdf", "pypdf"),
    ".docx": ("docx", "docx"),
    ".html": ("html", "bs4"),
    ".htm": ("html", "bs4"),
}

_HEADING = HEADING_LINE
_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")


class SourceError(ValueError):
    """An input file cannot be read; the message names the file (and line)."""


@dataclass
class Section:
    """A part of a document: its text, what locates it (``page``, ``heading``), and whether it is Markdown.

    Markdown sections are cut at their structure (headings, code blocks, tables) first.
    """

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    markdown: bool = False


def read_markdown(text: str) -> list[Section]:
    """Markdown as one section per ATX heading (``#`` to ``######``), outside fenced code.

    Text before the first heading is a section without ``heading``; blank sections are dropped. A
    heading with no text of its own (``# Keys`` followed at once by ``## Rotation``) is kept with the
    section that follows it, so no section, and no chunk, is a bare heading.
    """
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    heading: str | None = None
    fenced = False

    def close() -> None:
        body = "\n".join(lines).strip()
        if not body:
            return
        if heading is not None and all(not line.strip() or _HEADING.match(line) for line in lines):
            carried.append(body)  # only headings: they open the next section
            return
        body = "\n\n".join([*carried, body])
        carried.clear()
        sections.append(Section(body, {"heading": heading} if heading else {}, markdown=True))

    carried: list[str] = []

    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match:
            close()
            level, title = len(match.group(1)), match.group(2).strip()
            path = [(lvl, name) for lvl, name in path if lvl < level] + [(level, title)]
            heading = " > ".join(name for _, name in path)
            lines = []
        lines.append(line)
    close()
    if carried:  # the document ends with headings only: they are its last section
        sections.append(Section("\n\n".join(carried), {"heading": heading} if heading else {}, markdown=True))
    return sections


def read_html(markup: str) -> list[Section]:
    """HTML as Markdown-like text, one section per heading.

    Headings become ``#`` lines, ``<pre>`` fenced code, block elements lines of their own, table cells
    ``|``-separated; scripts, styles and templates are dropped.
    """
    bs4 = require("bs4", "html")
    soup = bs4.BeautifulSoup(markup, "html.parser")
    for tag in soup(["script", "style", "template", "noscript", "head"]):
        tag.decompose()
    for tag in soup.find_all(re.compile(r"^h[1-6]$")):
        title = " ".join(tag.get_text(" ").split())
        tag.replace_with(f"\n\n{'#' * int(tag.name[1])} {title}\n\n" if title else "\n")
    for tag in soup.find_all("pre"):
        tag.replace_with(f"\n\n```\n{tag.get_text()}\n```\n\n")
    for tag in soup.find_all("br"):
        tag.replace_with("\n")
    blocks = ["p", "div", "li", "tr", "table", "ul", "ol", "section", "article", "blockquote", "dt", "dd", "title"]
    for tag in soup.find_all(blocks):
        tag.insert_before("\n")
        tag.insert_after("\n")
    for tag in soup.find_all(["td", "th"]):
        tag.insert_after(" | ")
    text = soup.get_text()
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return read_markdown(text)


def read_docx(path: Path) -> list[Section]:
    """A Word document: paragraphs and tables in order, one section per heading style (Heading 1-9, Title)."""
    docx = require("docx", "docx")
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises zipfile, lxml and its own errors for a bad file
        raise SourceError(f"{path}: not a readable DOCX file ({type(exc).__name__}: {exc})") from None
    lines: list[str] = []
    for block in document.iter_inner_content():
        if hasattr(block, "rows"):  # a table: one line per row
            for row in block.rows:
                cells = [" ".join(cell.text.split()) for cell in row.cells]
                lines.append(" | ".join(cells))
            lines.append("")
            continue
        text = block.text.strip()
        style = (block.style.name if block.style is not None else "") or ""
        level = 1 if style == "Title" else int(style.split()[-1]) if re.fullmatch(r"Heading [1-9]", style) else 0
        if level and text:
            lines.extend(["", f"{'#' * min(level, 6)} {' '.join(text.split())}", ""])
        else:
            lines.append(text)
    return read_markdown("\n".join(lines))


def read_pdf(path: Path) -> list[Section]:
    """A PDF, one section per page with text (``page`` from 1). Encrypted files open only without a password."""
    pypdf = require("pypdf", "pdf")
    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise SourceError(f"{path}: the PDF is encrypted (a password is needed to read it)")
        pages = [page.extract_text() or "" for page in reader.pages]
    except SourceError:
        raise
    except Exception as exc:  # pypdf raises PdfReadError, and others for damaged files
        if "decrypt" in str(exc).lower() or "encrypt" in str(exc).lower():
            raise SourceError(f"{path}: the PDF is encrypted ({exc})") from None
        raise SourceError(f"{path}: not a readable PDF ({type(exc).__name__}: {exc})") from None
    return [Section(text.strip(), {"page": number}) for number, text in enumerate(pages, 1) if text.strip()]


def read_text_file(path: Path) -> str:
    """A UTF-8 text file's content; :class:`SourceError` naming it otherwise."""
    try:
        return path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not UTF-8 text (byte {exc.start}); convert it to UTF-8 first") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror})") from None


def check_readers(paths: Iterable[Path]) -> None:
    """Check that every format among ``paths`` can be read, before anything is read or written.

    Raises:
        SourceError: The first file whose format's extra is not installed, with the pip command, on one line.

    Examples:
        >>> check_readers([Path("notes.md"), Path("paper.pdf")])  # with the [pdf] extra installed
    """
    checked: dict[str, bool] = {}
    for path in paths:
        extra_module = FORMAT_EXTRAS.get(path.suffix.lower())
        if extra_module is None:
            continue
        extra, module = extra_module
        if module not in checked:
            try:
                importlib.import_module(module)
                checked[module] = True
            except ImportError:
                checked[module] = False
        if not checked[module]:
            raise SourceError(
                f"{path}: reading {path.suffix.lower()} files needs the [{extra}] extra: "
                f'pip install "instructor-integrations[{extra}]" (or leave those files out)'
            )


def read_file(path: Path) -> list[Section]:
    """The sections of a document file, by its suffix (see :data:`DOCUMENT_SUFFIXES`; others: UTF-8 text).

    Raises:
        SourceError: The file cannot be read, is not UTF-8 text, is damaged or encrypted.
        ImportError: The extra for the format is missing; the message holds the pip command.
    """
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return read_pdf(path)
    if suffix == ".docx":
        return read_docx(path)
    if suffix in HTML_SUFFIXES:
        return read_html(read_text_file(path))
    if suffix in MARKDOWN_SUFFIXES:
        return read_markdown(read_text_file(path))
    text = read_text_file(path).strip()  # plain text, and any other file named directly (code, logs...)
    return [Section(text)] if text else []
