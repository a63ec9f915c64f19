"""RemoteEncoder's own rules, against an in-memory transport (no sockets): splitting, retries, errors."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")

from instructor_integrations import RemoteEncoder, RemoteEncoderError, RemoteRequestError, ServerUnavailableError  # noqa: E402

MODEL = {"id": "m", "embedding_dimension": 3, "max_seq_length": 512, "max_inputs_per_request": 4,
         "max_request_bytes": 2048}  # fmt: skip


class FakeServer:
    """Answers /v1/models and /v1/embeddings (each vector is [row length, index in request, request number])."""

    def __init__(self, failures: list[int] | None = None, retry_after: str | None = None) -> None:
        self.failures = list(failures or [])
        self.retry_after = retry_after
        self.bodies: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [MODEL]})
        if self.failures:
            status = self.failures.pop(0)
            if status == 0:
                raise httpx.ConnectError("connection refused", request=request)
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return httpx.Response(status, json={"error": {"message": f"status {status}", "code": "c"}}, headers=headers)
        body = json.loads(request.content)
        self.bodies.append(body)
        number = len(self.bodies)
        data = [
            {"object": "embedding", "index": i,
             "embedding": base64.b64encode(np.asarray([len(t), i, number], dtype="<f4").tobytes()).decode()}
            for i, t in enumerate(body["input"])
        ]  # fmt: skip
        return httpx.Response(200, json={"object": "list", "data": data[::-1], "model": "m"})


def remote_with(server: FakeServer, **kwargs) -> RemoteEncoder:
    encoder = RemoteEncoder("http://embed.test", backoff=0, **kwargs)
    transport = httpx.MockTransport(server)
    encoder._client = httpx.Client(base_url=encoder.base_url, transport=transport)
    encoder._async_client = lambda: httpx.AsyncClient(base_url=encoder.base_url, transport=transport)  # type: ignore[method-assign]
    return encoder


def test_calls_are_split_at_the_servers_input_and_byte_limits_and_come_back_in_order():
    server = FakeServer()
    encoder = remote_with(server)
    texts = ["a", "bb", "ccc", "dddd", "eeeee", "x" * 900, "y" * 900, "z"]
    vectors = encoder.encode(texts, "Represent: ")
    # 4 inputs per request at most; two 900-byte texts do not fit in one 2048-byte request with the envelope.
    assert [len(body["input"]) for body in server.bodies] == [4, 2, 2]
    assert vectors[:, 0].tolist() == [len(t) for t in texts]
    assert vectors.dtype == np.float32 and vectors.shape == (8, 3)
    assert all(body["instruction"] == "Represent: " and body["encoding_format"] == "base64" for body in server.bodies)
    assert all(body["model"] == "m" for body in server.bodies)


def test_no_instruction_is_sent_as_null_and_mixed_instructions_as_a_list():
    server = FakeServer()
    encoder = remote_with(server)
    encoder.encode(["a", "b"])
    encoder.encode_pairs([["Represent: ", "a"], ["", "b"]], priority="bulk")
    assert server.bodies[0]["instruction"] is None  # plain pooling, not the server's default task
    assert server.bodies[1]["instruction"] == ["Represent: ", None]
    assert server.bodies[1]["priority"] == "bulk"


def test_batch_size_caps_the_inputs_per_request():
    server = FakeServer()
    remote_with(server).encode(["a"] * 5, batch_size=2)
    assert [len(body["input"]) for body in server.bodies] == [2, 2, 1]


def test_overloaded_and_unreachable_servers_are_retried_then_succeed():
    server = FakeServer(failures=[503, 0, 429])
    vectors = remote_with(server, max_retries=3).encode(["abc"])
    assert vectors[0, 0] == 3 and server.failures == []


def test_retries_run_out_with_a_clear_error():
    server = FakeServer(failures=[503, 503, 503])
    with pytest.raises(
        ServerUnavailableError, match=r"http://embed.test could not answer after 3 attempt\(s\): HTTP 503"
    ):
        remote_with(server, max_retries=2).encode(["abc"])


def test_refusals_are_not_retried():
    server = FakeServer(failures=[400, 400])
    with pytest.raises(RemoteRequestError, match="answered 400: status 400") as info:
        remote_with(server, max_retries=3).encode(["abc"])
    assert isinstance(info.value, ValueError) and info.value.status == 400 and server.failures == [400]
    with pytest.raises(RemoteEncoderError, match="answered 500") as info:
        remote_with(FakeServer(failures=[500]), max_retries=3).encode(["abc"])
    assert not isinstance(info.value, RemoteRequestError)


def test_retry_after_is_honoured_and_capped():
    encoder = RemoteEncoder("http://embed.test", backoff=1.0)
    assert encoder._delay(0, "2") == 2.0
    assert encoder._delay(0, "3600") == 30.0
    assert 0.5 <= encoder._delay(0, None) <= 1.0
    assert 2.0 <= encoder._delay(2, "soon") <= 4.0  # not a number of seconds: exponential backoff


def test_a_text_over_the_byte_limit_is_refused_before_any_request():
    server = FakeServer()
    with pytest.raises(ValueError, match=r"texts\[1\] is \d+ bytes as JSON, over the server's limit of 2048"):
        remote_with(server).encode(["ok", "x" * 3000])
    assert server.bodies == []


def test_aencode_sends_the_requests_of_a_call_and_keeps_their_order():
    server = FakeServer()
    encoder = remote_with(server)
    vectors = asyncio.run(encoder.aencode([str(i) * (i + 1) for i in range(9)], "Represent: "))
    assert vectors[:, 0].tolist() == [i + 1 for i in range(9)]
    assert sorted(len(body["input"]) for body in server.bodies) == [1, 4, 4]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "embed.test"}, "base_url must be an http:// or https:// URL, got 'embed.test'"),
        ({"api_key": ""}, "api_key must be a non-empty str or None"),
        ({"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
        ({"max_retries": -1}, "max_retries must be an int >= 0, got -1"),
        ({"backoff": -0.5}, "backoff must be a number of seconds >= 0, got -0.5"),
    ],
)
def test_bad_settings_name_the_value(kwargs, message):
    kwargs = {"base_url": "http://embed.test", **kwargs}
    with pytest.raises(ValueError) as info:
        RemoteEncoder(**kwargs)
    assert str(info.value) == message


def test_inputs_are_checked_like_the_in_process_encoders():
    encoder = remote_with(FakeServer())
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got int"):
        encoder.encode(["a", 1])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="priority must be one of"):
        encoder.encode(["a"], priority="urgent")  # type: ignore[arg-type]


def test_base_url_with_v1_is_accepted():
    assert RemoteEncoder("http://embed.test:8080/v1/").base_url == "http://embed.test:8080"
