"""schemathesis against a live server, from the server's own /openapi.json (slow).

It generates requests for every route from the document (examples, boundary values, random bodies, the
bearer key in a header) and checks each answer: no 5xx, a status the document lists, its content type,
its body against the document's schema. Zero failures; the number of requests it sent is printed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import EmbedServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]
httpx = pytest.importorskip("httpx")
pytest.importorskip("schemathesis", reason="schemathesis is in the [test] extra")

KEY = "schema-key-3e1d"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_schemathesis_finds_no_failure_on_any_route(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    executable = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    args = ["--api-key", KEY, "--max-inputs", "16", "--max-request-bytes", "65536"]
    server = EmbedServer(tmp_path, *args).start()
    try:
        command = [executable, "run", f"{server.url}/openapi.json", "--checks", CHECKS, "--max-examples", "100"]
        command += ["--header", f"Authorization: Bearer {KEY}", "--seed", "20261206", "--no-color"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=tmp_path)
        report = done.stdout + done.stderr
        assert done.returncode == 0, report[-6000:]
        assert "No issues found" in report or " 0 failures" in report or "passed" in report.lower(), report[-3000:]
        sent = re.search(r"(\d[\d,]*) test cases? generated", report) or re.search(r"(\d[\d,]*) generated", report)
        with capsys.disabled():
            print(f"\nschemathesis: {sent.group(0) if sent else 'see report'}; {report.strip().splitlines()[-1]}")
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        assert "Traceback" not in server.log(), server.log()[-3000:]
    finally:
        server.kill()
