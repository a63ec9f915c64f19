"""Every code block of the docs (and the README) runs, offline, with the test models.

* ``python`` blocks run in order, one namespace per page, in a scratch folder. Hub names of the
  INSTRUCTOR checkpoints become the tiny reference checkpoint; ``all-MiniLM-L6-v2`` the packaged one.
* ``bash`` blocks: ``instructor-embed`` lines run in a shell (same substitutions); ``pip install`` lines are
  checked against the extras pyproject.toml declares; any other line fails the test, so every shell
  line in the docs is either run or checked.
* ``text`` blocks are output samples and ``mermaid`` blocks are pictures: not code.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from ..conftest import FIXTURES, TINY
from .conftest import EmbedServer, free_port

ROOT = Path(__file__).resolve().parents[2]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
NOT_CODE = {"text", "mermaid"}


def blocks(page: Path) -> list[tuple[str, str]]:
    return [(lang, body) for lang, body in FENCE.findall(page.read_text("utf-8"))]


def substitute(code: str, minilm: str) -> str:
    code = re.sub(r"hkunlp/instructor-(base|large|xl)", str(TINY), code)
    return code.replace("sentence-transformers/all-MiniLM-L6-v2", minilm)


def extras() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    return set(data["project"]["optional-dependencies"])


def check_pip(line: str) -> None:
    for spec in re.findall(r'"instructor-integrations\[([^\]]*)\]"', line):
        unknown = {extra.strip() for extra in spec.split(",")} - extras()
        assert not unknown, f"docs name unknown extras {unknown}: {line}"
    assert line.startswith("pip install "), line


#: The old wrappers' imports, and the one line the migration page says replaces each.
MIGRATED_IMPORTS = {
    "from langchain_community.embeddings import HuggingFaceInstructEmbeddings": (
        "from instructor_integrations.langchain import InstructorEmbeddings as HuggingFaceInstructEmbeddings"
    ),
    "from llama_index.embeddings.instructor import InstructorEmbedding": (
        "from instructor_integrations.llama_index import InstructorEmbedding"
    ),
    "from chromadb.utils.embedding_functions import InstructorEmbeddingFunction": (
        "from instructor_integrations.chroma import InstructorEmbeddingFunction"
    ),
    "from InstructorEmbedding import INSTRUCTOR": "from instructor_integrations import INSTRUCTOR",
    "from haystack_integrations.components.embedders.instructor_embedders import InstructorDocumentEmbedder, "
    "InstructorTextEmbedder": "from instructor_integrations.haystack import InstructorDocumentEmbedder, InstructorTextEmbedder",
}


def migrated(code: str, page: str) -> str:
    """A ``# before`` block (the old wrappers' code) with its one old import replaced as the page says.

    The import is found as Python reads it (a formatter may wrap it over several lines).
    """
    import ast

    lines = code.splitlines()
    old = [node for node in ast.walk(ast.parse(code)) if ast.unparse(node) in MIGRATED_IMPORTS]
    assert len(old) == 1, f"a before block imports exactly one old wrapper: {[ast.unparse(n) for n in old]}"
    (node,) = old
    new = MIGRATED_IMPORTS[ast.unparse(node)]
    assert f"`{new}`" in page.replace("\n", " "), f"the page does not tell the reader to write {new!r}"
    assert node.end_lineno is not None
    return "\n".join([*lines[: node.lineno - 1], new, *lines[node.end_lineno :]])


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "tides.md").write_text("# Tides\nTides are caused by the moon's gravity.\n")
    (tmp_path / "notes" / "bees.txt").write_text("Bees dance to tell where flowers are.\n")
    (tmp_path / "scifact").symlink_to(FIXTURES / "mini-beir")
    (tmp_path / "banking77").symlink_to(FIXTURES / "mini-classification")
    (tmp_path / "stsbenchmark").symlink_to(FIXTURES / "mini-sts")
    monkeypatch.chdir(tmp_path)
    # Chroma keeps one client per path as written: "./.chroma" of the last page is not this page's.
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    return tmp_path


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text("utf-8")
    for page in PAGES[:-1]:
        assert page.name in nav, f"{page.name} is not in mkdocs.yml's nav"


def test_every_block_has_a_known_language() -> None:
    for page in PAGES:
        for lang, _ in blocks(page):
            assert lang in {"python", "bash", *NOT_CODE}, f"{page.name}: code block with language {lang!r}"


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_page_code_runs(page: Path, scratch: Path, minilm: str) -> None:
    namespace: dict[str, object] = {"__name__": "__docs__"}
    servers: list[EmbedServer] = []
    port = free_port()
    try:
        _run_page(page, scratch, minilm, namespace, servers, port)
    finally:
        for server in servers:
            server.kill()


QUICKSTARTS = sorted((ROOT / "docs").glob("quickstart-*.md"))


@pytest.mark.parametrize("page", QUICKSTARTS, ids=[page.name for page in QUICKSTARTS])
def test_a_quickstart_block_that_starts_with_its_imports_runs_alone(page: Path, scratch: Path, minilm: str) -> None:
    """A block that opens with imports is one a reader copies on its own: it needs no name from the blocks above."""
    _run_page(page, scratch, minilm, {"__name__": "__docs__"}, [], free_port(), alone=True)


def _run_page(
    page: Path,
    scratch: Path,
    minilm: str,
    namespace: dict[str, object],
    servers: list[EmbedServer],
    port: int,
    *,
    alone: bool = False,
) -> None:
    for lang, body in blocks(page):
        if alone and lang == "python" and body.startswith(("import ", "from ")):
            namespace = {"__name__": "__docs__"}
        # A page's server runs on a free port: the docs' 8080 becomes it.
        code = substitute(body, minilm).replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        if lang == "python" and body.startswith("# before"):
            code = migrated(code, page.read_text("utf-8"))
        if lang == "python":
            with contextlib.redirect_stdout(io.StringIO()), _local_inference_client(code):
                exec(compile(code, f"{page.name}:block", "exec"), namespace)
        elif lang == "bash":
            for line in code.splitlines():
                line = line.split("  #")[0].strip()
                if not line:
                    continue
                if line.startswith("pip install"):
                    check_pip(line)
                    continue
                if line.startswith("make "):
                    target = line.split()[1]
                    assert re.search(rf"^{re.escape(target)}:", (ROOT / "Makefile").read_text(), re.M), line
                    continue
                assert line.startswith("instructor-embed "), f"{page.name}: unsupported shell line: {line}"
                argv = shlex.split(line)[1:]
                if argv[0] == "serve":  # runs in the background for the rest of the page
                    args = argv[1:]
                    at = args.index("--port")
                    args[at + 1 : at + 2] = [str(port)]
                    model_at = args.index("--model")
                    model = args.pop(model_at + 1)
                    args.pop(model_at)
                    servers.append(EmbedServer(scratch, "--device", "cpu", *args, model=model, port=port).start())
                    continue
                # Through a shell, as a user types it (``$(python -c ...)`` included), with this
                # environment's ``instructor-embed`` and ``python`` first on the PATH.
                bin_dir = str(Path(sys.executable).parent)
                env = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
                out = subprocess.run(
                    ["bash", "-c", line],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    env=env,
                )
                assert out.returncode == 0, f"{page.name}: {line}\n{out.stderr[-2000:]}"


@contextlib.contextmanager
def _local_inference_client(code: str):
    """huggingface_hub's InferenceClient refuses every URL in offline mode, the page's server on 127.0.0.1 too:
    for a block that uses it, offline mode is lifted (nothing here reaches the hub, which is unreachable)."""
    if "InferenceClient(" not in code:
        yield
        return
    from huggingface_hub import constants

    saved, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


#: A measured figure: a ratio, a percentage, a duration or a rate, a memory size.
MEASURED = re.compile(
    r"\b\d+(\.\d+)?x\b|\b\d+(\.\d+)?\s?%|\b\d[\d,.]*\s?(ms|s|seconds|minutes|MiB|GiB)\b"
    r"|\b\d[\d,.]*\s?(tokens|docs|documents|queries|requests|texts|characters|TFLOP)/s\b"
)
GUIDES = ["performance.md", "serving.md", "long-documents.md"]


@pytest.mark.parametrize("page", [*GUIDES, "README.md"])
def test_guides_carry_no_hand_typed_measurements(page: str) -> None:
    """The guides' and the README's figures come from result files at build time (``<!-- results: NAME -->``).

    The rule: outside code blocks, no ratio ("1.5x"), percentage, duration, rate or memory size is typed
    into these pages. Setting values (``batch_size=1024``) and the published scores the evaluation
    reproduces are not measurements of this code's speed and are allowed. The log page is the record
    of experiments and is exempt.
    """
    text = (ROOT / page if page == "README.md" else ROOT / "docs" / page).read_text("utf-8")
    prose = FENCE.sub("", text)
    found = [m.group(0) for m in MEASURED.finditer(prose)]
    assert not found, f"{page}: hand-typed measurements {found}; generate them from docs/benchmarks"


def test_the_performance_guide_is_short_and_its_tables_render() -> None:
    assert len((ROOT / "docs" / "performance.md").read_text("utf-8").splitlines()) <= 200
    sys.path.insert(0, str(ROOT / "scripts"))
    import mkdocs_hooks

    for page in GUIDES:
        markdown = (ROOT / "docs" / page).read_text("utf-8")
        rendered = mkdocs_hooks.on_page_markdown(markdown)
        assert "<!-- results:" not in rendered and "Measured on" in rendered, page


#: Extras for developing this package, not for its users: a page cannot count on them.
DEVELOPER_EXTRAS = {"test", "docs", "dev"}
IMPORT = re.compile(r"^(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.MULTILINE)


def _distribution(module: str) -> str | None:
    """The installed distribution (canonical name) that provides ``module``; ``None`` for the standard library."""
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top == "instructor_integrations":
        return None
    candidates = [canonicalize_name(name) for name in packages_distributions().get(top, [])]
    assert candidates, f"no installed distribution provides {module!r}"
    if len(candidates) == 1:
        return candidates[0]
    # A namespace package (llama_index): the distribution named after the longest prefix of the module path.
    parts = module.split(".")
    for size in range(len(parts), 0, -1):
        name = canonicalize_name("-".join(parts[:size]))
        if name in candidates:
            return name
    raise AssertionError(f"{module!r} is provided by several distributions: {candidates}")


def _requirements_of(specs: list[str]) -> set[str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return {canonicalize_name(Requirement(spec).name) for spec in specs}


def test_every_package_a_page_imports_is_ours_or_named_on_the_page() -> None:
    """A reader who installs what the page says can run its code: each import is ours, an extra, or on a pip line."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    extras = data["project"]["optional-dependencies"]
    ours = _requirements_of(data["project"]["dependencies"]) | {
        name
        for extra, specs in extras.items()
        if extra not in DEVELOPER_EXTRAS
        for name in _requirements_of(specs)
        if name != "instructor-integrations"
    }
    missing: list[str] = []
    for page in PAGES:
        found = [(kind, body) for kind, body in blocks(page) if not body.startswith("# before")]  # the old code
        code = {lang: "\n".join(body for kind, body in found if kind == lang) for lang in ("python", "bash")}
        inline = re.findall(r"`(pip install [^`]+)`", FENCE.sub("", page.read_text("utf-8")))
        named = _requirements_of(
            [
                word
                for line in [*code["bash"].splitlines(), *inline]
                if line.startswith("pip install ")
                for word in shlex.split(line.split("  #")[0])[2:]
                if not word.startswith(("-", "instructor-integrations")) and "://" not in word
            ]
        )
        for match in IMPORT.finditer(code["python"]):
            module = match.group(1) or match.group(2)
            distribution = _distribution(module)
            if distribution is not None and distribution not in ours | named:
                missing.append(f"{page.name}: {module} ({distribution})")
    assert not missing, f"imports whose package the page does not name in a pip line: {missing}"


def test_the_readme_installs_torch_as_the_install_page_does() -> None:
    def torch_lines(text: str) -> list[str]:
        return [line.split("  #")[0].strip() for line in text.splitlines() if line.startswith("pip install torch")]

    readme = torch_lines((ROOT / "README.md").read_text("utf-8"))
    install = torch_lines((ROOT / "docs" / "install.md").read_text("utf-8"))
    assert readme and readme == install


def test_the_migration_pages_before_blocks_are_what_the_old_wrappers_accept() -> None:
    """Each ``# before`` block calls an old wrapper only with arguments its published release takes.

    The record, tests/fixtures/old-wrappers.json, is read from the wheels by scripts/old_wrapper_signatures.py;
    Chroma's old function is the one chromadb still ships.
    """
    import ast
    import inspect
    import json

    from chromadb.utils.embedding_functions import InstructorEmbeddingFunction as ChromasOwn

    record = json.loads((FIXTURES / "old-wrappers.json").read_text("utf-8"))
    chroma = list(inspect.signature(ChromasOwn.__init__).parameters)[1:]
    record["InstructorEmbeddingFunction"] = {"positional": chroma, "keywords": chroma}
    before = [body for lang, body in blocks(ROOT / "docs" / "migration.md") if body.startswith("# before")]
    assert len(before) == 5  # LangChain, LlamaIndex, Chroma, Haystack, INSTRUCTOR
    checked: set[str] = set()
    for body in before:
        for node in ast.walk(ast.parse(body)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            # A method call is an INSTRUCTOR model's in the block that imports INSTRUCTOR (its only object).
            name = func.id if isinstance(func, ast.Name) else f"INSTRUCTOR.{func.attr}"
            if name not in record or (isinstance(func, ast.Attribute) and "import INSTRUCTOR" not in body):
                continue
            accepted = record[name]
            assert len(node.args) <= len(accepted["positional"]), f"{ast.unparse(node)}: too many positional arguments"
            unknown = {kw.arg for kw in node.keywords} - set(accepted["keywords"])
            assert not unknown, f"{ast.unparse(node)}: the old {name} takes no {unknown}"
            checked.add(name)
    assert checked == set(record), f"calls checked: {checked}"
