"""LangChain's ``HuggingFaceEndpointEmbeddings`` against the server's TEI protocol (slow).

Its package, langchain-huggingface, asks for huggingface-hub < 2, which transformers 5 cannot share an
environment with; so the client runs in a virtual environment of its own (built once per session from
the package registry, without torch), and its vectors come back as JSON to be held to the in-process
encoder's. Skipped, with the reason, where that environment cannot be built. Release 1.2.0 is the last
whose ``model`` takes an endpoint URL (1.2.1 and later take a hub repository id only).
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import venv
from pathlib import Path

import numpy as np
import pytest

from tests.integration.conftest import EmbedServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("fastapi")

KEY = "lc-key-90ab"
QUERY = "Represent the question for retrieving supporting documents: "
DOCUMENT = "Represent the document for retrieval: "
TEXTS = ["What causes the tides?", "The moon's gravity pulls the oceans.", "Bees navigate by the sun."]


@pytest.fixture(scope="session")
def langchain_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("langchain-huggingface-env")
    venv.create(folder, with_pip=True)
    python = str(folder / "bin" / "python")
    done = subprocess.run(
        [python, "-m", "pip", "install", "-qq", "langchain-huggingface==1.2.0", "numpy"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"could not build an environment with langchain-huggingface: {done.stderr[-500:]}")
    return python


def test_langchain_huggingface_endpoint_embeddings_get_the_in_process_vectors(
    langchain_python: str, tmp_path: Path, tiny_encoder
) -> None:
    server = EmbedServer(tmp_path, "--api-key", KEY).start()
    try:
        script = textwrap.dedent(
            f"""
            import json
            from langchain_huggingface import HuggingFaceEndpointEmbeddings

            def client(side):
                return HuggingFaceEndpointEmbeddings(
                    model={server.url!r}, huggingfacehub_api_token={KEY!r}, model_kwargs={{"prompt_name": side}}
                )

            print(json.dumps({{
                "documents": client("document").embed_documents({TEXTS!r}),
                "query": client("query").embed_query({TEXTS[0]!r}),
            }}))
            """
        )
        env = {"PATH": "/usr/bin:/bin", "HF_HUB_DISABLE_TELEMETRY": "1"}  # not offline: it talks to 127.0.0.1 only
        done = subprocess.run([langchain_python, "-c", script], capture_output=True, text=True, timeout=300, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        got = json.loads(done.stdout.strip().splitlines()[-1])
        np.testing.assert_allclose(np.asarray(got["documents"]), tiny_encoder.encode(TEXTS, DOCUMENT), atol=1e-5)
        np.testing.assert_allclose(np.asarray(got["query"]), tiny_encoder.encode(TEXTS[:1], QUERY)[0], atol=1e-5)
    finally:
        server.kill()
