"""The urllib3 transport under the SDK's pipeline: each failure becomes the error azure-core's
RequestsTransport raises for the same cause (so the retry policy treats it alike), nothing is
followed or retried by the transport itself, and a short or broken answer is never an answer.

Raw answers come from a plain TCP server in this file that writes exactly the bytes a test
gives it; TLS is tested against the HTTPS ARM emulator.
"""

from __future__ import annotations

import base64
import gzip
import socket
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from azure.core.exceptions import (
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline import Pipeline
from azure.core.rest import HttpRequest

from engram_audit.collectors.azure.errors import UnreadableAnswer
from engram_audit.collectors.azure.pipeline import Budget, BudgetedRetryPolicy
from engram_audit.collectors.azure.transport import AnswerTooLarge, Urllib3Transport
from tests.azure.conftest import TOKEN
from tests.support.arm_emulator import ArmEmulator
from tests.support.arm_world import load_world

pytestmark = pytest.mark.azure


@contextmanager
def raw_server(
    answer: bytes | None, *, hold: float = 0.0, trickle: bytes = b""
) -> Iterator[tuple[str, list[bytes]]]:
    """Answers every connection with ``answer`` and closes it (None: closes without a byte;
    ``hold``: waits that long first; ``trickle``: then sends these bytes one every 0.2 s).
    Yields its URL and the requests it received."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                received.append(connection.recv(65536))
                stop.wait(hold)
                if answer is not None:
                    connection.sendall(answer)
                for byte in trickle:
                    if stop.wait(0.2):
                        break
                    connection.sendall(bytes([byte]))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", received
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _transport() -> Urllib3Transport:
    return Urllib3Transport(verify=True, proxy=None, pool_maxsize=4)


def test_a_whole_answer_comes_back_with_its_status_headers_and_body() -> None:
    body = b'{"value": []}'
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Ms-Test: 1\r\n"
    answer += b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    with raw_server(answer) as (url, received), _transport() as transport:
        response = transport.send(
            HttpRequest("GET", f"{url}/x", params={"api-version": "1"}, headers={"A": "b"})
        )

    assert (response.status_code, response.json()) == (200, {"value": []})
    assert response.headers["x-ms-test"] == "1" and response.content_type == "application/json"
    assert received[0].startswith(b"GET /x?api-version=1 HTTP/1.1\r\n")
    assert b"\r\nA: b\r\n" in received[0]


def test_a_body_shorter_than_its_content_length_is_an_error_not_a_short_answer() -> None:
    answer = b'HTTP/1.1 200 OK\r\nContent-Length: 400\r\n\r\n{"value": []}'
    with (
        raw_server(answer) as (url, _),
        _transport() as transport,
        pytest.raises(ServiceResponseError) as caught,
    ):
        transport.send(HttpRequest("GET", url))

    assert not isinstance(caught.value, ServiceResponseTimeoutError)


def test_a_connection_closed_before_any_answer_is_a_response_error() -> None:
    with (
        raw_server(None) as (url, received),
        _transport() as transport,
        pytest.raises(ServiceResponseError),
    ):
        transport.send(HttpRequest("GET", url))

    # The transport retries nothing: retries belong to the pipeline's policy.
    assert len(received) == 1


def test_no_answer_within_the_read_timeout_is_a_response_timeout() -> None:
    with (
        raw_server(b"HTTP/1.1 200 OK\r\n\r\n", hold=3) as (url, _),
        _transport() as transport,
        pytest.raises(ServiceResponseTimeoutError),
    ):
        transport.send(HttpRequest("GET", url), read_timeout=0.3)


def test_a_body_trickled_a_byte_at_a_time_must_arrive_whole_within_the_read_timeout() -> None:
    # Every byte comes well within the socket timeout; the whole answer would take 60 s.
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 301\r\n\r\n{"
    with (
        raw_server(head, trickle=b" " * 300) as (url, _),
        _transport() as transport,
        pytest.raises(ServiceResponseTimeoutError),
    ):
        # Raised by the deadline between reads, or by the socket timeout shrunk to what is left.
        transport.send(HttpRequest("GET", url), read_timeout=1.0)


def test_a_compressed_body_that_decodes_to_nothing_is_still_held_to_the_deadline() -> None:
    # A gzip header, then empty stored deflate blocks: bytes keep coming, no output ever does
    # (urllib3's own decoding would keep reading until it had some).
    head = gzip.compress(b"")[:10]
    filler = b"\x00\x00\x00\xff\xff" * 20
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
    answer += b"Content-Length: %d\r\n\r\n%s" % (len(head) + len(filler), head)
    with (
        raw_server(answer, trickle=filler) as (url, _),
        _transport() as transport,
        pytest.raises(ServiceResponseTimeoutError),
    ):
        transport.send(HttpRequest("GET", url), read_timeout=1.0)


def _encoded(coding: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: " + coding + b"\r\n"
    return head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        (b"gzip", gzip.compress(b'{"value": []}')),
        (b"x-gzip", gzip.compress(b'{"value": []}')),
        (b"deflate", zlib.compress(b'{"value": []}')),
        (b"deflate", _raw_deflate(b'{"value": []}')),
    ],
    ids=["gzip", "x-gzip", "deflate-zlib", "deflate-raw"],
)
def test_each_coding_asked_for_is_decompressed(coding: bytes, body: bytes) -> None:
    with raw_server(_encoded(coding, body)) as (url, _), _transport() as transport:
        assert transport.send(HttpRequest("GET", url)).json() == {"value": []}


@pytest.mark.parametrize(
    ("coding", "body", "said"),
    [
        (b"br", b"\x0b\x02\x80{}\x03", "content coding 'br' was not asked for"),
        (b"gzip, gzip", gzip.compress(gzip.compress(b"{}")), "was not asked for"),
        (b"gzip", gzip.compress(b'{"value": []}')[:-12], "ends before its compressed stream"),
        (b"gzip", b"not gzip at all", "cannot be decompressed"),
    ],
    ids=["brotli", "a-chain", "a-cut-stream", "not-compressed"],
)
def test_a_coding_not_asked_for_or_a_broken_stream_is_an_unreadable_answer(
    coding: bytes, body: bytes, said: str
) -> None:
    with (
        raw_server(_encoded(coding, body)) as (url, _),
        _transport() as transport,
        pytest.raises(UnreadableAnswer) as caught,
    ):
        transport.send(HttpRequest("GET", url))

    assert said in str(caught.value)


def test_a_compressed_answer_expanding_past_the_cap_is_stopped_at_the_cap() -> None:
    body = gzip.compress(b"0" * 2_000_000)  # about 2 KB that expands to 2 MB
    with raw_server(_encoded(b"gzip", body)) as (url, _):
        transport = Urllib3Transport(verify=True, proxy=None, pool_maxsize=2, max_body_bytes=4096)
        with transport, pytest.raises(AnswerTooLarge):
            transport.send(HttpRequest("GET", url))


def test_nothing_listening_is_a_request_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]
    with _transport() as transport, pytest.raises(ServiceRequestError) as caught:
        transport.send(HttpRequest("GET", f"http://127.0.0.1:{port}/"))

    assert not isinstance(caught.value, ServiceResponseError)
    assert "NewConnectionError" in str(caught.value)


def test_a_redirect_is_returned_to_the_pipeline_never_followed() -> None:
    answer = b"HTTP/1.1 302 Found\r\nLocation: https://example.com/\r\nContent-Length: 0\r\n\r\n"
    with raw_server(answer) as (url, received), _transport() as transport:
        response = transport.send(HttpRequest("GET", url))

    assert response.status_code == 302 and response.headers["location"] == "https://example.com/"
    assert len(received) == 1


def test_an_unproxied_request_through_a_proxy_that_is_not_there_is_a_request_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]
    transport = Urllib3Transport(verify=True, proxy=f"http://127.0.0.1:{port}", pool_maxsize=2)

    with transport, pytest.raises(ServiceRequestError) as caught:
        transport.send(HttpRequest("GET", "https://management.azure.com/"))

    assert "ProxyError" in str(caught.value)


def test_tls_is_verified_against_the_given_bundle_and_fails_against_the_default_one(
    arm: ArmEmulator,
) -> None:
    world = load_world("prod-unseen-compliant")
    arm.add_world(world)
    server = world["servers"][0]["server"]["id"]
    request = HttpRequest(
        "GET",
        f"{arm.url}{server}",
        params={"api-version": "2025-08-01"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    with Urllib3Transport(verify=arm.ca_pem, proxy=None, pool_maxsize=2) as trusted:
        assert trusted.send(request).json()["id"] == server
    # certifi's bundle (requests' default) does not hold the emulator's own CA.
    with _transport() as default, pytest.raises(ServiceRequestError) as caught:
        default.send(request)

    assert "SSLError" in str(caught.value) and "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert len(arm.requests) == 1


def test_a_proxy_url_with_credentials_authenticates_to_the_proxy_and_never_shows_them() -> None:
    refused = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
    with raw_server(refused) as (proxy, received):
        address = proxy.removeprefix("http://")
        transport = Urllib3Transport(
            verify=True, proxy=f"http://us%40er:p%3Ass-w0rd@{address}", pool_maxsize=2
        )
        with transport, pytest.raises(ServiceRequestError) as caught:
            transport.send(HttpRequest("GET", "https://management.azure.com/subscriptions"))

    (connect,) = received
    assert connect.startswith(b"CONNECT management.azure.com:443 HTTP/1.")
    expected = base64.b64encode(b"us@er:p:ss-w0rd")
    assert b"\r\nproxy-authorization: basic " + expected.lower() + b"\r\n" in connect.lower()
    assert "w0rd" not in str(caught.value) and "us%40er" not in str(caught.value)


def test_answers_may_be_compressed_as_requests_allowed() -> None:
    body = gzip.compress(b'{"value": [1, 2]}')
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
    answer += b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    with raw_server(answer) as (url, received), _transport() as transport:
        response = transport.send(HttpRequest("GET", url))

    assert response.json() == {"value": [1, 2]}
    assert b"\r\nAccept-Encoding: gzip, deflate\r\n" in received[0]


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
def test_an_answer_larger_than_the_cap_is_an_error_and_is_not_retried(length: bool) -> None:
    body = b"x" * 5000
    head = b"HTTP/1.1 200 OK\r\n" + (b"Content-Length: 5000\r\n" if length else b"")
    with raw_server(head + b"\r\n" + body) as (url, _):
        transport = Urllib3Transport(verify=True, proxy=None, pool_maxsize=2, max_body_bytes=4096)
        with transport, pytest.raises(AnswerTooLarge) as caught:
            transport.send(HttpRequest("GET", url))

    assert "larger than 4096 bytes" in str(caught.value)


def test_an_answer_larger_than_the_cap_is_read_once_through_the_retry_policy() -> None:
    # azure-core's retry policy retries any AzureError on a GET: the cap must not be one.
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"
    with raw_server(head + b"x" * 5000) as (url, received):
        transport = Urllib3Transport(verify=True, proxy=None, pool_maxsize=2, max_body_bytes=4096)
        pipeline = Pipeline(transport, policies=[BudgetedRetryPolicy(Budget(30))])
        with pipeline, pytest.raises(AnswerTooLarge):
            pipeline.run(HttpRequest("GET", url))

    assert len(received) == 1
