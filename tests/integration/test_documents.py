"""Real documents in, nothing truncated: PDF, DOCX, HTML, Markdown and text files written here, ingested
through the CLI into a real Chroma; every chunk fits the model with its instruction, every source is
covered by its chunks, re-ingesting writes nothing, and an edit replaces exactly its file's chunks."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from instructor_integrations.cli import EXIT_OK, EXIT_USAGE, main
from instructor_integrations.loaders import read_file
from tests.conftest import TINY

pytestmark = pytest.mark.integration
pytest.importorskip("chromadb")
ROOT = Path(__file__).resolve().parents[2]
DOC_INSTRUCTION = "Represent the document for retrieval: "

SCRIPTS = (
    "潮汐是由月球和太阳的引力引起的海平面周期性涨落。" * 6,
    "المد والجزر هو ارتفاع وانخفاض مستوى سطح البحر بسبب جاذبية القمر. " * 5,
    "Приливы и отливы вызваны притяжением Луны и Солнца. " * 5,
)
CODE = "def tide(t):\n    return 1.2 * math.sin(2 * math.pi * t / 12.42) + 0.3 * math.sin(2 * math.pi * t / 12.0)\n" * 8
TABLE = "\n".join(f"| {i} | {i * 3.14159:.5f} | 0x{i * 7919:08x} |" for i in range(40))


def write_pdf(path: Path, pages: list[str]) -> None:
    fpdf = pytest.importorskip("fpdf")
    pdf = fpdf.FPDF()
    pdf.set_font("helvetica", size=10)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 5, text)
    pdf.output(str(path))


def write_docx(path: Path) -> None:
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_heading("Tide tables", level=1)
    document.add_paragraph("Harbour masters publish tide tables a year ahead. " * 30)
    document.add_heading("Reading a table", level=2)
    document.add_paragraph("Each row gives a time and a height above chart datum. " * 30)
    table = document.add_table(rows=20, cols=3)
    for i, row in enumerate(table.rows):
        for j, cell in enumerate(row.cells):
            cell.text = f"{i:02d}:{j * 20:02d} {i * 0.37 + j:.2f} m"
    document.add_heading("Приливы", level=2)
    document.add_paragraph(SCRIPTS[2])
    document.save(str(path))


def write_corpus(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    files = {
        "pdf": folder / "tides.pdf",
        "docx": folder / "tables.docx",
        "html": folder / "guide.html",
        "md": folder / "notes.md",
        "txt": folder / "scripts.txt",
    }
    write_pdf(
        files["pdf"],
        ["The moon's gravity raises two bulges of water on opposite sides of the Earth. " * 25,
         "Spring tides come at new and full moon, neap tides at the quarters. " * 25 + "\n" + TABLE[:1500],
         "Tide gauges record the sea level every six minutes. " * 20],
    )  # fmt: skip
    write_docx(files["docx"])
    files["html"].write_text(
        "<html><head><title>Guide</title><style>p{}</style></head><body>"
        "<h1>Tidal power</h1><p>" + "Barrages hold the tide behind a dam and release it through turbines. " * 30
        + "</p><h2>Code</h2><pre>" + CODE + "</pre><h2>Table</h2><table>"
        + "".join(f"<tr><td>{i}</td><td>{i * 1.5}</td></tr>" for i in range(60))
        + "</table><script>var x = 'not text';</script></body></html>",
        encoding="utf-8",
    )  # fmt: skip
    files["md"].write_text(
        "# Notes\n\n" + "Tides are the rise and fall of the sea. " * 40 + "\n\n## Code\n\n```python\n" + CODE
        + "```\n\n## Numbers\n\n" + TABLE + "\n\n## Scripts\n\n" + "\n\n".join(SCRIPTS) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    files["txt"].write_text("\n\n".join(SCRIPTS * 3), encoding="utf-8")
    # Long real documentation: this project's own guides, as a Markdown tree.
    shutil.copytree(ROOT / "docs", folder / "docs", ignore=shutil.ignore_patterns("benchmarks", "img"))
    return files


def ingest(db: Path, *paths: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return ["ingest", *map(str, paths), "--collection", "docs", "--db", str(db), "--model", str(TINY), "--device",
            "cpu", "--doc-instruction", DOC_INSTRUCTION, "--no-progress", *extra]  # fmt: skip


def summary(out: str) -> dict[str, int]:
    fields = out.strip().splitlines()[-1].replace("bad inputs", "bad").split("  ")
    return {key: int(float(value)) for key, value in (field.split(": ") for field in fields) if key != "seconds"}


def stored(db: Path) -> dict:
    import chromadb

    return chromadb.PersistentClient(path=str(db)).get_collection("docs").get(include=["documents", "metadatas"])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("corpus") / "corpus"
    return folder, write_corpus(folder)


def test_every_format_is_ingested_whole_and_no_chunk_is_truncated(corpus, tmp_path, tiny_encoder, capsys, caplog):
    folder, files = corpus
    db = tmp_path / "db"
    with caplog.at_level(logging.WARNING, logger="instructor_integrations.encoder"):
        assert main(ingest(db, folder)) == EXIT_OK
    counts = summary(capsys.readouterr().out)
    assert counts["bad"] == 0 and counts["added"] == counts["chunks"] > 40
    assert not [r for r in caplog.records if "truncated" in r.getMessage()]  # zero truncation warnings

    data = stored(db)
    documents, metadatas = data["documents"], data["metadatas"]
    tokens = tiny_encoder.count_tokens(documents, DOC_INSTRUCTION)
    assert max(tokens) <= tiny_encoder.max_seq_length
    assert max(tokens) > tiny_encoder.max_seq_length * 0.8  # chunks are filled, not tiny

    by_source: dict[str, list[tuple[int, int, str]]] = {}
    for text, meta in zip(documents, metadatas, strict=True):
        by_source.setdefault(meta["source"], []).append((meta["section"], meta["chunk"], text))
    for kind, path in files.items():
        assert str(path.resolve()) in by_source, kind
    pdf_pages = {m["page"] for m in metadatas if m["source"] == str(files["pdf"].resolve())}
    import pypdf

    page_count = len(pypdf.PdfReader(str(files["pdf"])).pages)
    assert page_count >= 3 and pdf_pages == set(range(1, page_count + 1))
    headings = {m.get("heading") for m in metadatas if m["source"] == str(files["docx"].resolve())}
    assert {"Tide tables", "Tide tables > Reading a table", "Tide tables > Приливы"} <= headings
    html_headings = {m.get("heading") for m in metadatas if m["source"] == str(files["html"].resolve())}
    assert {"Tidal power", "Tidal power > Code", "Tidal power > Table"} <= html_headings
    assert not any("not text" in text for text in documents)  # the <script> is gone

    # Coverage: each source's sections, rebuilt from its stored chunks in order, hold all their text.
    for source, chunks in by_source.items():
        sections = read_file(Path(source))
        chunks.sort()
        for number, section in enumerate(sections):
            pieces = [text for s, _, text in chunks if s == number]
            assert_covers(section.text, pieces, f"{source} section {number}")
        assert {s for s, _, _ in chunks} == set(range(len(sections)))


def assert_covers(text: str, pieces: list[str], where: str) -> None:
    """The pieces appear in order in text, and only whitespace lies outside them."""
    position = 0
    for piece in pieces:
        found = text.find(piece, position)
        assert found >= 0, f"{where}: a chunk is not in the text at or after {position}"
        assert not text[position:found].strip(), f"{where}: text between chunks was lost: {text[position:found]!r}"
        position = found + len(piece)
    assert not text[position:].strip(), f"{where}: the end of the text was lost"


def test_reingest_writes_nothing_and_an_edit_replaces_exactly_its_files_chunks(corpus, tmp_path, capsys):
    source, _ = corpus
    folder = tmp_path / "copy"
    shutil.copytree(source, folder)
    db = tmp_path / "db"
    assert main(ingest(db, folder)) == EXIT_OK
    first = summary(capsys.readouterr().out)
    before = stored(db)

    assert main(ingest(db, folder)) == EXIT_OK
    again = summary(capsys.readouterr().out)
    assert (again["added"], again["removed"], again["skipped"]) == (0, 0, first["chunks"])

    notes = folder / "notes.md"
    text = notes.read_text("utf-8")
    notes.write_text(text.replace("## Numbers", "## Figures").split("## Scripts")[0], encoding="utf-8")
    assert main(ingest(db, folder)) == EXIT_OK
    edited = summary(capsys.readouterr().out)
    after = stored(db)
    edited_source = str(notes.resolve())
    old_ids = {i for i, m in zip(before["ids"], before["metadatas"], strict=True) if m["source"] == edited_source}
    new_ids = {i for i, m in zip(after["ids"], after["metadatas"], strict=True) if m["source"] == edited_source}
    assert edited["added"] == len(new_ids - old_ids) > 0
    assert edited["removed"] == len(old_ids - new_ids) > 0
    assert old_ids & new_ids  # the unedited sections kept their chunks
    others_before = {i for i, m in zip(before["ids"], before["metadatas"], strict=True) if m["source"] != edited_source}
    others_after = {i for i, m in zip(after["ids"], after["metadatas"], strict=True) if m["source"] != edited_source}
    assert others_before == others_after
    assert len(after["ids"]) == edited["chunks"]  # records == the current chunks


def test_encrypted_and_corrupt_files_are_reported_by_name(tmp_path, capsys):
    pypdf = pytest.importorskip("pypdf")
    folder = tmp_path / "bad"
    folder.mkdir()
    write_pdf(folder / "plain.pdf", ["Readable page about tides. " * 10])
    writer = pypdf.PdfWriter(clone_from=str(folder / "plain.pdf"))
    writer.encrypt("secret", algorithm="RC4-128")
    with open(folder / "locked.pdf", "wb") as handle:
        writer.write(handle)
    (folder / "broken.docx").write_bytes(b"PK\x03\x04 this is not a zip archive")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<>> garbage")
    db = tmp_path / "db"

    assert main(ingest(db, folder)) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "broken.docx: not a readable DOCX file" in err  # sorted: the first bad file stops the run

    assert main(ingest(db, folder, extra=("--skip-bad",))) == EXIT_OK
    out, err = capsys.readouterr()
    assert "locked.pdf: the PDF is encrypted" in err
    assert "broken.docx: not a readable DOCX file" in err
    assert "broken.pdf: not a readable PDF" in err
    assert summary(out)["bad"] == 3
    sources = {Path(m["source"]).name for m in stored(db)["metadatas"]}
    assert sources == {"plain.pdf"}  # nothing of a bad file is stored


def test_a_missing_format_extra_names_the_pip_command(tmp_path, monkeypatch):
    import sys

    from instructor_integrations.loaders import read_pdf

    monkeypatch.setitem(sys.modules, "pypdf", None)
    with pytest.raises(ImportError, match=r'pip install "instructor-integrations\[pdf\]"'):
        read_pdf(tmp_path / "x.pdf")


@pytest.mark.slow
def test_an_edit_replaces_its_chunks_in_a_chroma_server_too(chroma_server, tmp_path, capsys):
    import chromadb

    host, port = chroma_server
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\n" + "Alpha tides. " * 200 + "\n\n# B\n\n" + "Beta tides. " * 200)
    (folder / "b.txt").write_text("Gamma tides. " * 50)
    argv = ["ingest", str(folder), "--collection", "edits", "--host", host, "--port", str(port),
            "--model", str(TINY), "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == EXIT_OK
    first = summary(capsys.readouterr().out)
    (folder / "a.md").write_text("# A\n\n" + "Alpha tides. " * 200)
    assert main(argv) == EXIT_OK
    second = summary(capsys.readouterr().out)
    collection = chromadb.HttpClient(host=host, port=port).get_collection("edits")
    assert second["added"] == 0 and second["removed"] == first["chunks"] - second["chunks"] > 0
    assert collection.count() == second["chunks"]


def test_llama_index_index_cuts_documents_to_fit_with_their_metadata(tmp_path, tiny_encoder):
    import chromadb
    from llama_index.core import Document

    from instructor_integrations.chroma import InstructorEmbeddingFunction
    from instructor_integrations.vectorstores import get_collection, llama_index_index

    ef = InstructorEmbeddingFunction(encoder=tiny_encoder, document_instruction=DOC_INSTRUCTION)
    collection = get_collection(chromadb.EphemeralClient(), "li-long", embedding=ef)
    text = "Tides are the rise and fall of the sea. " * 300 + SCRIPTS[0]
    document = Document(text=text, metadata={"source": "tides.md", "topic": "oceans"})
    llama_index_index(collection, documents=[document], encoder=tiny_encoder, text_instruction=DOC_INSTRUCTION)
    chunks = collection.get(include=["documents"])["documents"]
    assert len(chunks) > 2
    # What LlamaIndex embeds: the metadata text, a blank line, the chunk.
    embedded = [f"source: tides.md\ntopic: oceans\n\n{chunk}" for chunk in chunks]
    assert max(tiny_encoder.count_tokens(embedded, DOC_INSTRUCTION)) <= tiny_encoder.max_seq_length
