"""Record the constructor arguments of the old INSTRUCTOR wrappers, read from their published wheels.

The migration page's "before" blocks are checked against this record (tests/integration/test_docs.py), so
they are code the old wrappers accept. The wheels are read, never imported (they import the broken
``InstructorEmbedding``). Chroma's old function ships inside chromadb, which the tests import directly.

    python scripts/old_wrapper_signatures.py            # downloads the wheels with pip (a package index)
    python scripts/old_wrapper_signatures.py A.whl B.whl
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "old-wrappers.json"
#: distribution, module file in its wheel, class, the import a user wrote
WRAPPERS = [
    (
        "langchain-community==0.4.2",
        "langchain_community/embeddings/huggingface.py",
        "HuggingFaceInstructEmbeddings",
        "from langchain_community.embeddings import HuggingFaceInstructEmbeddings",
    ),
    (
        "llama-index-embeddings-instructor==0.6.0",
        "llama_index/embeddings/instructor/base.py",
        "InstructorEmbedding",
        "from llama_index.embeddings.instructor import InstructorEmbedding",
    ),
    (
        "instructor-embedders-haystack==0.4.1",
        "haystack_integrations/components/embedders/instructor_embedders/instructor_text_embedder.py",
        "InstructorTextEmbedder",
        "from haystack_integrations.components.embedders.instructor_embedders import InstructorTextEmbedder",
    ),
    (
        "instructor-embedders-haystack==0.4.1",
        "haystack_integrations/components/embedders/instructor_embedders/instructor_document_embedder.py",
        "InstructorDocumentEmbedder",
        "from haystack_integrations.components.embedders.instructor_embedders import InstructorDocumentEmbedder",
    ),
    (
        "InstructorEmbedding==1.0.1",
        "InstructorEmbedding/instructor.py",
        "INSTRUCTOR.encode",
        "from InstructorEmbedding import INSTRUCTOR",
    ),
]


def accepted(source: str, name: str) -> dict[str, list[str]]:
    """The keyword and positional arguments of ``name``: a class's constructor, or ``Class.method``.

    A function with named parameters and no ``**kwargs`` decides; otherwise (a pydantic model whose
    ``__init__`` passes ``**kwargs`` on) the public annotated fields are the keywords, none positional.
    """
    class_name, _, method = name.partition(".")
    cls = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef) and n.name == class_name)
    wanted = method or "__init__"
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == wanted), None)
    if init is not None and init.args.kwarg is None:
        params = [a.arg for a in init.args.args[1:]]
        return {"positional": params, "keywords": params + [a.arg for a in init.args.kwonlyargs]}
    fields = [
        n.target.id
        for n in cls.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and not n.target.id.startswith("_")
    ]
    return {"positional": [], "keywords": fields}


def main(wheels: list[str]) -> None:
    if not wheels:
        folder = tempfile.mkdtemp()
        specs = sorted({spec for spec, *_ in WRAPPERS})
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", folder, *specs], check=True)
        wheels = [str(p) for p in sorted(Path(folder).glob("*.whl"))]
    record = {}
    for spec, module, name, import_line in WRAPPERS:
        distribution, version = spec.split("==")
        stem = f"{distribution.replace('-', '_')}-{version}-"
        wheel = next(w for w in wheels if Path(w).name.startswith(stem))
        with zipfile.ZipFile(wheel) as archive:
            source = archive.read(module).decode("utf-8")
        record[name] = {"distribution": spec, "import": import_line, **accepted(source, name)}
    OUT.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
