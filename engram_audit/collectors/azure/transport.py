"""The HTTP transport under the SDK's pipeline: urllib3's connection pool, without ``requests``.

azure-core's ``RequestsTransport`` sends each request through a ``requests.Session``: settings
merged from the session and the environment, cookie jars, hooks, and runtime ``Protocol``
checks on every header dict. Under a fleet's thousands of reads that machinery cost more CPU
than urllib3 itself (README, "Fleet speed": the collector is CPU-bound there). This transport
keeps what decides behaviour and drops the rest:

- urllib3 sends the request as the pipeline built it (method, URL, headers, body), follows no
  redirect and retries nothing: redirects, retries, timeouts and the read-only guard stay in the
  pipeline's policies, which see every attempt.
- TLS is verified against the same CA bundle ``requests`` would use: ``REQUESTS_CA_BUNDLE`` /
  ``SSL_CERT_FILE`` (``clients.ca_bundle``), else certifi's bundle (``requests``' default).
- A proxy from ``HTTPS_PROXY`` / ``NO_PROXY``, read once for the one endpoint (as before); a
  user and password in the proxy URL become ``Proxy-Authorization`` (as ``requests`` does),
  sent only to the proxy and never shown in an error.
- ``Accept-Encoding: gzip, deflate`` unless the pipeline set one (``requests``' default).
- An answer larger than ``max_body_bytes`` (64 MiB: far above any ARM page) is an error, not
  memory filled by whatever a proxy or endpoint chooses to send.
- Failures become the errors ``RequestsTransport`` raises for the same cause, so the retry
  policy treats them alike: no connection (refused, TLS, proxy) is ``ServiceRequestError``, a
  connection timeout ``ServiceRequestTimeoutError``, a read timeout
  ``ServiceResponseTimeoutError``, a connection dropped mid-answer or a body shorter than its
  ``Content-Length`` ``ServiceResponseError``.
- The body is read whole before ``send`` returns (the collector never streams), by the
  read timeout the pipeline gives (``DeadlinePolicy``: at most the time ``--timeout`` has
  left) counted from the request, not only for each socket read. The status line and headers
  are read inside urllib3, each read bounded by that timeout but not their sum: headers
  trickled a byte at a time are bounded by ``--timeout`` alone (the run ends there and
  abandons the worker: ``workers.py``).
- A compressed answer (gzip or deflate) is decompressed here, never beyond the size cap, and
  must end its compressed stream; any other content coding is an unreadable answer.
"""

from __future__ import annotations

import socket
import time
import zlib
from collections.abc import Iterator
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import certifi
import urllib3
from azure.core.exceptions import (
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest, HttpResponse
from azure.core.rest._http_response_impl import HttpResponseImpl
from azure.core.utils import case_insensitive_dict
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from engram_audit.collectors.azure.errors import UnreadableAnswer

# RequestsTransport's defaults (azure.core.configuration.ConnectionConfiguration); the pipeline's
# DeadlinePolicy passes smaller ones on every request.
_DEFAULT_CONNECT_SECONDS = 300.0
_DEFAULT_READ_SECONDS = 300.0
MAX_BODY_BYTES = 64 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024


class AnswerTooLarge(UnreadableAnswer):
    """An answer larger than the transport reads. Not an ``AzureError``: azure-core's retry
    policy retries any ``AzureError`` on a GET, which would read it again."""


class _Response(HttpResponseImpl):
    """An answer whose body has already been read whole."""

    def __init__(self, *, request: HttpRequest, answer: urllib3.BaseHTTPResponse, body: bytes):
        headers = case_insensitive_dict(answer.headers.items())
        super().__init__(
            request=request,
            internal_response=answer,
            status_code=answer.status,
            reason=answer.reason or "",
            headers=headers,
            content_type=headers.get("content-type"),
            stream_download_generator=None,
        )
        self._content = body

    def iter_bytes(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._content or b""

    def iter_raw(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._content or b""


class Urllib3Transport(HttpTransport[HttpRequest, HttpResponse]):
    def __init__(
        self,
        *,
        verify: str | bool,
        proxy: str | None,
        pool_maxsize: int,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        ca_certs = verify if isinstance(verify, str) else certifi.where()
        options: dict[str, Any] = {
            "num_pools": 4,
            "maxsize": pool_maxsize,
            "cert_reqs": "CERT_REQUIRED" if verify else "CERT_NONE",
            "ca_certs": ca_certs if verify else None,
        }
        self._max_body_bytes = max_body_bytes
        self._pool: urllib3.PoolManager
        if proxy:
            url, headers = _proxy_and_credentials(proxy)
            self._pool = urllib3.ProxyManager(url, proxy_headers=headers, **options)
        else:
            self._pool = urllib3.PoolManager(**options)

    def __enter__(self) -> Urllib3Transport:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        pass

    def close(self) -> None:
        self._pool.clear()

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        if request.files:
            raise ServiceRequestError("this transport sends no file uploads")
        read_seconds = float(kwargs.get("read_timeout", _DEFAULT_READ_SECONDS))
        timeout = urllib3.Timeout(
            connect=kwargs.get("connection_timeout", _DEFAULT_CONNECT_SECONDS), read=read_seconds
        )
        # One deadline for the whole answer, headers and body: what --timeout has left.
        deadline = time.monotonic() + read_seconds
        headers = dict(request.headers)
        if not any(name.casefold() == "accept-encoding" for name in headers):
            headers["Accept-Encoding"] = "gzip, deflate"
        try:
            answer = self._pool.urlopen(
                request.method,
                request.url,
                body=request.content,
                headers=headers,
                timeout=timeout,
                redirect=False,
                retries=False,
                preload_content=False,
                enforce_content_length=True,
            )
        except HTTPError as error:
            raise _azure_error(error) from error
        try:
            body = self._read(answer, deadline)
        except HTTPError as error:
            raise _azure_error(error) from error
        except OSError as error:
            raise ServiceResponseError(f"{type(error).__name__}: {error}", error=error) from error
        finally:
            answer.release_conn()
        return _Response(request=request, answer=answer, body=body)

    def _read(self, answer: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
        """The whole body, by ``deadline``.

        A socket timeout bounds each read, so an endpoint sending a byte at a time would
        otherwise hold the answer open for as long as it likes. The body is read raw and
        decompressed here: urllib3's own decoding keeps reading until the decoder yields
        something, which compressed bytes that decode to nothing never do.
        """
        decoder = _decoder(answer.headers.get("content-encoding"))
        chunks: list[bytes] = []
        size = 0
        compressed = 0
        while True:
            # None once urllib3 has handed the connection back with the last bytes: the
            # socket may already serve another request, whose timeout is not ours to set.
            connection = answer.connection
            if connection is None:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                answer.close()
                raise ServiceResponseTimeoutError("the answer did not arrive whole in time")
            sock = getattr(connection, "sock", None)
            if isinstance(sock, socket.socket):
                sock.settimeout(left)
            raw = answer.read1(_CHUNK_BYTES, decode_content=False)
            if not raw:
                break
            compressed += len(raw)
            chunk = raw if decoder is None else self._decompress(decoder, raw, size, answer)
            size += len(chunk)
            self._check_size(size, answer)
            chunks.append(chunk)
        if decoder is not None and compressed and not decoder.eof:
            raise UnreadableAnswer("the compressed answer ends before its compressed stream")
        return b"".join(chunks)

    def _decompress(
        self, decoder: Any, raw: bytes, size: int, answer: urllib3.BaseHTTPResponse
    ) -> bytes:
        room = self._max_body_bytes - size + 1
        try:
            # Never more than the cap allows: a small compressed answer can expand a thousandfold.
            chunk: bytes = decoder.decompress(raw, room)
        except zlib.error as error:
            answer.close()
            raise UnreadableAnswer(
                f"the compressed answer cannot be decompressed ({error})"
            ) from None
        self._check_size(size + len(chunk) + len(decoder.unconsumed_tail), answer)
        return chunk

    def _check_size(self, size: int, answer: urllib3.BaseHTTPResponse) -> None:
        if size > self._max_body_bytes:
            # The rest is not read: the connection is closed, not returned to the pool.
            answer.close()
            raise AnswerTooLarge(
                f"the answer is larger than {self._max_body_bytes} bytes; nothing of it was used"
            )


def _decoder(encoding: str | None) -> Any:
    """A decompressor for the one content coding the transport asks for, None for none.

    gzip, and deflate with or without its zlib header (RFC 9110 names the zlib format, some
    servers send raw deflate); anything else, including a chain of codings, is refused.
    """
    coding = (encoding or "").strip().casefold()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return _Deflate()
    raise UnreadableAnswer(f"the answer's content coding {coding[:40]!r} was not asked for")


class _Deflate:
    """zlib-wrapped deflate, or raw deflate when the first bytes have no zlib header."""

    def __init__(self) -> None:
        self._inner: Any = None

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._inner is None:
            self._inner = zlib.decompressobj(zlib.MAX_WBITS)
            try:
                return bytes(self._inner.decompress(data, max_length))
            except zlib.error:
                self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
        return bytes(self._inner.decompress(data, max_length))

    @property
    def unconsumed_tail(self) -> bytes:
        return bytes(self._inner.unconsumed_tail) if self._inner is not None else b""

    @property
    def eof(self) -> bool:
        return bool(self._inner is not None and self._inner.eof)


def _proxy_and_credentials(proxy: str) -> tuple[str, dict[str, str]]:
    """The proxy URL without its user information, and the ``Proxy-Authorization`` header the
    user information stands for (requests' ``HTTPAdapter.proxy_headers``)."""
    parts = urlsplit(proxy)
    if parts.username is None:
        return proxy, {}
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return (
        parts._replace(netloc=netloc).geturl(),
        urllib3.make_headers(proxy_basic_auth=credentials),
    )


def _azure_error(error: HTTPError) -> ServiceRequestError | ServiceResponseError:
    """The error RequestsTransport raises for the same cause (see the module docstring)."""
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, NewConnectionError | SSLError | ProxyError):
        return ServiceRequestError(text, error=error)
    if isinstance(error, ConnectTimeoutError):
        return ServiceRequestTimeoutError(text, error=error)
    if isinstance(error, ReadTimeoutError):
        return ServiceResponseTimeoutError(text, error=error)
    if isinstance(error, ProtocolError):
        return ServiceResponseError(text, error=error)
    return ServiceResponseError(text, error=error)
