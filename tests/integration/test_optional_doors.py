"""Each framework door is an extra: importing the package loads none of them, and a missing one names its pip command."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

#: door module -> (the framework module it needs, the extra that installs it)
DOORS = {
    "instructor_integrations.langchain": ("langchain_core", "langchain"),
    "instructor_integrations.llama_index": ("llama_index", "llama-index"),
    "instructor_integrations.chroma": ("chromadb", "chroma"),
    "instructor_integrations.haystack": ("haystack", "haystack"),
    "instructor_integrations.mteb": ("mteb", "mteb"),
}


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_the_package_and_its_encoder_import_no_framework() -> None:
    frameworks = sorted({framework for framework, _ in DOORS.values()})
    done = _python(
        "import sys, instructor_integrations, instructor_integrations.encoder\n"
        "from instructor_integrations import InstructorEncoder, RemoteEncoder\n"
        f"print(sorted(m for m in {frameworks!r} if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("door", sorted(DOORS))
def test_a_door_without_its_framework_names_the_pip_command(door: str) -> None:
    framework, extra = DOORS[door]
    done = _python(f"import sys; sys.modules[{framework!r}] = None\nimport {door}")  # as if not installed
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError") and f'pip install "instructor-integrations[{extra}]"' in last, last
