"""The server as a Ray Serve application: two replicas on a local Ray instance, under load, exact."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from tests.conftest import TINY
from tests.integration.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("ray.serve")
httpx = pytest.importorskip("httpx")

DOC = "Represent the document for retrieval: "


@pytest.fixture(scope="module")
def ray_serve_url():
    import ray
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()
    ray.shutdown()


def test_two_replicas_answer_a_load_test_with_the_in_process_vectors(ray_serve_url, tiny_encoder):
    from ray import serve

    from instructor_integrations import RemoteEncoder
    from instructor_integrations.ray import serve_app

    app = serve_app({"model": str(TINY), "num_replicas": "2", "num_cpus": "0.5", "device": "cpu",
                     "served_model_name": "tiny", "max_inputs": "16"})  # fmt: skip
    serve.run(app, name="instructor", route_prefix="/", blocking=False)
    status = serve.status().applications["instructor"]
    end = time.monotonic() + 180
    while status.status != "RUNNING" and time.monotonic() < end:
        time.sleep(0.5)
        status = serve.status().applications["instructor"]
    assert status.status == "RUNNING", status
    (deployment,) = status.deployments.values()
    assert deployment.replica_states.get("RUNNING") == 2

    texts = [f"text {i} about {'tides ' * (i % 5)}" for i in range(200)]

    async def load() -> list[np.ndarray]:
        async with httpx.AsyncClient(base_url=ray_serve_url, timeout=120) as client:
            answers = await asyncio.gather(
                *(client.post("/v1/embeddings", json={"input": [text], "instruction": DOC}) for text in texts)
            )
        assert {answer.status_code for answer in answers} == {200}
        return [np.asarray(answer.json()["data"][0]["embedding"], dtype=np.float32) for answer in answers]

    got = np.stack(asyncio.run(load()))
    np.testing.assert_allclose(got, tiny_encoder.encode(texts, DOC), atol=1e-5)
    remote = RemoteEncoder(ray_serve_url)
    assert remote.model_name == "tiny"
    np.testing.assert_allclose(remote.encode(texts, DOC), tiny_encoder.encode(texts, DOC), atol=1e-5)  # 13 requests


def test_serve_app_refuses_unknown_and_bad_arguments():
    from instructor_integrations.ray import serve_app

    with pytest.raises(ValueError, match="unknown argument\\(s\\) 'colour' for serve_app"):
        serve_app({"model": "m", "colour": "red"})
    with pytest.raises(ValueError, match="num_replicas='two' is not a valid value"):
        serve_app({"model": "m", "num_replicas": "two"})
    with pytest.raises(ValueError, match="serve_app needs model="):
        serve_app({})
    with pytest.raises(ValueError, match="input_type must be one of"):
        serve_app({"model": "m", "input_type": "passage"})
