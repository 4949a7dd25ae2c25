"""A local HTTPS Azure Resource Manager emulator for tests and benchmarks.

It serves ARM-shaped JSON from routes built by :mod:`tests.support.arm_world` (the official
REST examples and the project's fixtures), pages long lists and rewrites every ``nextLink`` to
itself, checks the bearer token, injects faults on demand (latency, 429 + Retry-After, 401,
403, 404, 500, dropped connections), records every request, and answers anything that is not
a GET with 405 plus a recorded violation: the collector must never write to Azure. The one
POST it answers is a Resource Graph query at exactly ``/providers/Microsoft.ResourceGraph/
resources`` (``tests.support.resource_graph``: the KQL it understands, paging, the quota).

ARM's read throttling is modelled as Microsoft documents it ("Understand how Azure Resource
Manager throttles requests", token bucket model; shared/reference/README.md): one bucket of
``read_capacity`` tokens (250) per subscription and principal (here: per bearer token), refilled
at ``read_refill_per_second`` (25); every answer to a request under ``/subscriptions/{id}``
carries ``x-ms-ratelimit-remaining-subscription-reads``, and a request that finds the bucket
empty is answered 429 with ``Retry-After`` (whole seconds until a token is back) and takes no
token. ``read_capacity=None`` switches it off. Tenant-level requests (Resource Graph) draw on
Resource Graph's own quota instead.

Hostile answers on demand: ``hostile_next_link`` makes a list's first page name a ``nextLink``
on another host (served verbatim, not rewritten), and ``ForeignHost`` is a loopback listener
that records whether anything connected to it, so a test can prove nothing was sent there.

Writes, for one test only: ``ArmEmulator(writable=True)`` applies PUT, PATCH and DELETE to
the resources it serves and answers POST ``{server}/restart`` (``ArmWorld.write``: a resource
store that merges what it is sent, not a model of Azure's side effects), serves the
server-capabilities list ``az postgres flexible-server update`` validates against (a subset of
the official ``CapabilitiesByServerList`` example), and records each write in ``writes``. Every
other POST, and every write to a default emulator, is still 405 plus a violation.

A login for the real Azure CLI, with ``managed_identity=True``: the App Service managed-identity
endpoint MSAL reads from ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` (``identity_endpoint``,
``identity_header``) answers with the emulator's bearer token, and ``GET /subscriptions`` lists
the world's subscriptions under ``tenant_id``, which is what ``az login --identity`` asks.

Usage::

    with ArmEmulator(token="t0k3n") as arm:
        arm.add_world(load_world("fixtures/arm/prod-compliant.json"))
        arm.inject(r"/configurations$", Fault(status=403, error_code="AuthorizationFailed"))
        ...  # point the SDK at arm.url with REQUESTS_CA_BUNDLE=arm.ca_pem
        assert arm.violations == []
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
import ssl
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

from tests.support.arm_permissions import Principal
from tests.support.arm_world import ArmWorld, Lookup, normalise_path, resource_type
from tests.support.resource_graph import GRAPH_PATH, ResourceGraph, UnsupportedQuery

STATS_PATH = "/_emulator/stats"
IDENTITY_PATH = "/_emulator/identity/token"
OPERATIONS_PATH = "/_emulator/operations"
CAPABILITIES = Path(__file__).resolve().parents[2] / (
    "fixtures/arm/official/2025-08-01/CapabilitiesByServerList.subset.json"
)
_SERVER_CHILD = re.compile(
    r"^(/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.dbforpostgresql"
    r"/flexibleservers/[^/]+)/(capabilities|restart)$"
)


@dataclass(frozen=True)
class Fault:
    """What to do instead of (or before) answering a matching request.

    ``status`` answers with that ARM error; ``drop`` closes the connection without a response;
    ``answer`` answers 200 with that JSON value instead of the real one (a hostile or broken
    proxy); ``latency`` delays the answer. ``times`` limits how many matching requests it applies to
    (None: every one), so a transient fault followed by success can be expressed.
    """

    status: int | None = None
    error_code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    latency: float = 0.0
    drop: bool = False
    answer: Any = None
    times: int | None = None


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    authorized: bool
    status: int

    @property
    def api_version(self) -> str | None:
        values = self.query.get("api-version")
        return values[0] if values else None

    @property
    def continuation(self) -> bool:
        return any(key.casefold() == "$skiptoken" for key in self.query)


@dataclass(frozen=True)
class RecordedWrite:
    """A write a writable emulator applied: method, path as sent, JSON body, answer status."""

    method: str
    path: str
    body: dict[str, Any]
    status: int


@dataclass
class _ActiveFault:
    pattern: re.Pattern[str]
    fault: Fault
    remaining: int | None


@dataclass
class _HostileLink:
    pattern: re.Pattern[str]
    link: str


class ForeignHost:
    """A TCP listener on another loopback port that only counts connections (and closes them).

    It stands for "some other host" a hostile ``nextLink`` names: a test asserts that
    ``connections == 0``, i.e. not even a TCP handshake (let alone a bearer token) reached it.
    """

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.05)
        self.port: int = self._socket.getsockname()[1]
        self._count = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="foreign-host", daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._count += 1
            connection.close()

    @property
    def connections(self) -> int:
        with self._lock:
            return self._count

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def __enter__(self) -> ForeignHost:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


@dataclass
class TlsMaterial:
    """A throwaway CA and a server certificate for 127.0.0.1; build once per test session."""

    ca: trustme.CA = field(default_factory=trustme.CA)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="arm-emulator-")))

    def __post_init__(self) -> None:
        self.server_cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.ca_pem = self.directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_pem))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_cert.configure_cert(context)
        return context


_ERROR_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "AuthorizationFailed",
    404: "ResourceNotFound",
    405: "MethodNotAllowed",
    429: "TooManyRequests",
    500: "InternalServerError",
}


_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE)
REMAINING_READS = "x-ms-ratelimit-remaining-subscription-reads"


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class ReadThrottle:
    """ARM's per-subscription, per-principal read token bucket."""

    def __init__(self, capacity: int, refill_per_second: float) -> None:
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self.throttled = 0
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, subscription: str, principal: str) -> dict[str, str]:
        """Spend one token; the answer's headers (with ``Retry-After`` when throttled)."""
        with self._lock:
            now = time.monotonic()
            key = (subscription.casefold(), principal)
            bucket = self._buckets.setdefault(key, _Bucket(float(self.capacity), now))
            bucket.tokens = min(
                self.capacity, bucket.tokens + (now - bucket.stamp) * self.refill_per_second
            )
            bucket.stamp = now
            if bucket.tokens < 1:
                self.throttled += 1
                wait = math.ceil((1 - bucket.tokens) / self.refill_per_second)
                return {REMAINING_READS: "0", "Retry-After": str(max(wait, 1))}
            bucket.tokens -= 1
            return {REMAINING_READS: str(math.floor(bucket.tokens))}


class ArmEmulator:
    def __init__(
        self,
        *,
        token: str = "emulator-token",
        tls: TlsMaterial | None = None,
        latency: float = 0.0,
        page_size: int = 100,
        read_capacity: int | None = 250,
        read_refill_per_second: float = 25.0,
        graph_quota: int = 15,
        graph_window_seconds: float = 5.0,
        writable: bool = False,
        managed_identity: bool = False,
        tenant_id: str = "00000000-0000-0000-0000-0000000000e0",
    ) -> None:
        self.token = token
        self.writable = writable
        self.managed_identity = managed_identity
        self.tenant_id = tenant_id
        self.identity_header = f"emulator-identity-{uuid.uuid4()}"
        self.writes: list[RecordedWrite] = []
        self.tls = tls or TlsMaterial()
        self.latency = latency
        self.world = ArmWorld(page_size=page_size)
        self.throttle = (
            ReadThrottle(read_capacity, read_refill_per_second)
            if read_capacity is not None
            else None
        )
        self.graph = ResourceGraph(quota=graph_quota, window_seconds=graph_window_seconds)
        self.graph.rows = self.world.graph_rows
        # What the token may read (tests.support.arm_permissions): Reader unless restricted.
        self.principal = Principal()
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self._faults: list[_ActiveFault] = []
        self._hostile_links: list[_HostileLink] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> ArmEmulator:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.emulator = self
        server.socket = self.tls.server_context().wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="arm-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ArmEmulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "emulator not started"
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def ca_pem(self) -> str:
        return str(self.tls.ca_pem)

    @property
    def identity_endpoint(self) -> str:
        """``IDENTITY_ENDPOINT`` for MSAL's App Service managed identity (``managed_identity``)."""
        return f"{self.url}{IDENTITY_PATH}"

    # --- content ------------------------------------------------------------------------

    def add_world(self, document: dict[str, Any]) -> None:
        self.world.add_document(document)

    def add_management_group(self, group: str, subscriptions: list[str]) -> None:
        """Resource Graph queries scoped to ``group`` see these subscriptions."""
        self.graph.add_management_group(group, subscriptions)

    def graph_queries(self) -> list[dict[str, Any]]:
        """The bodies of every Resource Graph query received, in order."""
        with self._lock:
            return list(self.graph.queries)

    def stats(self) -> dict[str, int]:
        with self._lock:
            count = len(self.requests)
            ok_reads = sum(
                1 for r in self.requests if r.method == "GET" and r.status not in (0, 429)
            )
        return {
            "requests": count,
            "reads": ok_reads,
            "throttled": self.throttle.throttled if self.throttle else 0,
            "graph_queries": len(self.graph.queries),
            "graph_throttled": self.graph.throttled,
        }

    # --- the principal's permissions ----------------------------------------------------

    def set_permissions(
        self, permissions: list[dict[str, Any]], subscription: str | None = None
    ) -> None:
        """What the token may do, on one subscription or all of them: the permissions list
        answers it and Resource Graph shows only what it lets the token read."""
        self.principal.restrict(permissions, subscription)

    # --- faults -------------------------------------------------------------------------

    def inject(self, path_pattern: str, fault: Fault) -> None:
        """Apply ``fault`` to requests whose path matches ``path_pattern`` (regex, any case)."""
        with self._lock:
            self._faults.append(
                _ActiveFault(re.compile(path_pattern, re.IGNORECASE), fault, fault.times)
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._hostile_links.clear()

    def hostile_next_link(self, path_pattern: str, link: str) -> None:
        """The first page of lists whose path matches ``path_pattern`` names ``link`` as its
        ``nextLink``, verbatim (the usual rewrite to the emulator is not applied)."""
        with self._lock:
            self._hostile_links.append(_HostileLink(re.compile(path_pattern, re.IGNORECASE), link))

    def _hostile_link(self, path: str) -> str | None:
        with self._lock:
            return next((h.link for h in self._hostile_links if h.pattern.search(path)), None)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for active in self._faults:
                if active.remaining == 0 or not active.pattern.search(path):
                    continue
                if active.remaining is not None:
                    active.remaining -= 1
                return active.fault
        return None

    # --- the request log ----------------------------------------------------------------

    def record(self, entry: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()
            self.violations.clear()

    def requests_matching(self, path_pattern: str) -> list[RecordedRequest]:
        pattern = re.compile(path_pattern, re.IGNORECASE)
        with self._lock:
            return [entry for entry in self.requests if pattern.search(entry.path)]

    def methods(self) -> set[str]:
        with self._lock:
            return {entry.method for entry in self.requests}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    emulator: ArmEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that refuse the emulator's certificate (a test of that is
        expected to); anything else is still printed."""
        if isinstance(sys.exc_info()[1], ssl.SSLError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm and the client's delayed
    # ACK the second one would wait ~40 ms, a latency the real ARM does not add.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the emulator's record is the log."""

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_PATCH(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def _answer(self) -> None:
        emulator = self.server.emulator
        parts = urlsplit(self.path)
        path = re.sub(r"/{2,}", "/", parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        payload = self._read_body()

        if path == STATS_PATH:
            self._send_json(200, emulator.stats())
            return
        if emulator.managed_identity and path == IDENTITY_PATH and self.command == "GET":
            self._send_json(*self._identity_token(emulator, query))
            return
        if emulator.writable and path.startswith(OPERATIONS_PATH) and self.command == "GET":
            # Every write the emulator accepts is complete when it answers.
            name = path.removeprefix(OPERATIONS_PATH).strip("/").split("/")[0]
            done = {} if path.endswith("/result") else {"name": name, "status": "Succeeded"}
            self._send_json(200, done)
            return

        authorized = self.headers.get("Authorization") == f"Bearer {emulator.token}"
        if self.command == "POST" and path.casefold() == GRAPH_PATH.casefold():
            status, body, headers = self._graph(emulator, path, payload, authorized)
        else:
            status, body, headers = self._resolve(emulator, path, query, authorized, payload)
        if status < 0:  # dropped connection
            emulator.record(RecordedRequest(self.command, path, query, authorized, 0))
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        emulator.record(RecordedRequest(self.command, path, query, authorized, status))
        self._send_json(status, body, headers)

    def _resolve(
        self,
        emulator: ArmEmulator,
        path: str,
        query: dict[str, list[str]],
        authorized: bool,
        payload: bytes = b"",
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self.command != "GET":
            if emulator.writable and authorized and self._is_write(path):
                return self._write(emulator, path, payload)
            with emulator._lock:
                emulator.violations.append(f"{self.command} {path}")
            return _error(405, f"engram-audit must only read: {self.command} is refused")

        throttled: dict[str, str] = {}
        subscription = _SUBSCRIPTION.match(path)
        if emulator.throttle is not None and subscription is not None:
            throttled = emulator.throttle.take(
                subscription[1], self.headers.get("Authorization") or ""
            )
        status, body, headers = self._routed(emulator, path, query, authorized, throttled)
        return status, body, {**throttled, **headers}

    def _routed(
        self,
        emulator: ArmEmulator,
        path: str,
        query: dict[str, list[str]],
        authorized: bool,
        throttled: dict[str, str],
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if "Retry-After" in throttled:
            if emulator.latency:
                time.sleep(emulator.latency)
            return _error(
                429,
                "Number of 'read' requests for subscription actor exceeded. Please try again "
                "after some time.",
                "SubscriptionRequestsThrottled",
            )
        fault = emulator._take_fault(path)
        delay = emulator.latency + (fault.latency if fault else 0.0)
        if delay:
            time.sleep(delay)
        if fault is not None and fault.drop:
            return -1, {}, {}
        if fault is not None and fault.status is not None:
            status, body, headers = _error(fault.status, fault.message, fault.error_code)
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            return status, body, headers
        if not authorized:
            return _error(401, "The access token is missing or invalid.")
        if fault is not None and fault.answer is not None:
            return 200, fault.answer, {}

        permissions = emulator.principal.answer(path, emulator.world.subscriptions())
        if permissions is not None:
            return 200, permissions, {}
        served = self._cli_read(emulator, normalise_path(path))
        if served is not None:
            return 200, served, {}
        skiptoken = next(
            (values[0] for key, values in query.items() if key.casefold() == "$skiptoken"), None
        )
        found = emulator.world.lookup(normalise_path(path), skiptoken)
        if found.status != 200:
            return _error(found.status, found.message, found.code)
        body = _rewrite_next_link(found.body, emulator.url)
        hostile = emulator._hostile_link(path) if skiptoken is None else None
        if hostile is not None:
            body = {**body, "nextLink": hostile}
        return 200, body, {}

    def _is_write(self, path: str) -> bool:
        if self.command in ("PUT", "PATCH", "DELETE"):
            return True
        child = _SERVER_CHILD.match(normalise_path(path))
        return self.command == "POST" and child is not None and child[2] == "restart"

    def _write(
        self, emulator: ArmEmulator, path: str, payload: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        try:
            body = json.loads(payload or b"{}")
        except ValueError:
            return _error(400, "The request body is not JSON.", "InvalidRequestContent")
        if not isinstance(body, dict):
            return _error(400, "The request body is not a JSON object.", "InvalidRequestContent")
        with emulator._lock:
            child = _SERVER_CHILD.match(normalise_path(path))
            if self.command == "POST" and child is not None:
                found = (
                    Lookup(200, {})
                    if emulator.world.exists(child[1])
                    else emulator.world.lookup(normalise_path(path), None)
                )
            else:
                found = emulator.world.write(self.command, path, body)
            emulator.writes.append(RecordedWrite(self.command, path, body, found.status))
        if found.status >= 400:
            return _error(found.status, found.message, found.code)
        if not resource_type(path).casefold().startswith("microsoft.dbforpostgresql/"):
            # Microsoft.Insights answers a create or update with 200 and the resource (the
            # monitor SDK accepts nothing else for metric alerts and diagnostic settings).
            return 200, found.body, {}
        # The PostgreSQL provider's writes are long-running: the SDK accepts only 202 (with
        # 204 for a delete of nothing) and polls Azure-AsyncOperation until it says Succeeded.
        operation = f"{emulator.url}{OPERATIONS_PATH}/{uuid.uuid4()}"
        return (
            202,
            {},
            {
                "Azure-AsyncOperation": operation,
                "Location": f"{operation}/result",
                "Retry-After": "0",
            },
        )

    def _cli_read(self, emulator: ArmEmulator, path: str) -> dict[str, Any] | None:
        """What only the Azure CLI reads: its subscription list, a server's capabilities."""
        if emulator.managed_identity and path == "/subscriptions":
            return {
                "value": [
                    {
                        "id": f"/subscriptions/{subscription}",
                        "subscriptionId": subscription,
                        "tenantId": emulator.tenant_id,
                        "displayName": f"emulated {subscription}",
                        "state": "Enabled",
                    }
                    for subscription in sorted(emulator.world.subscriptions())
                ]
            }
        child = _SERVER_CHILD.match(path)
        if (
            emulator.writable
            and child
            and child[2] == "capabilities"
            and emulator.world.exists(child[1])
        ):
            document = json.loads(CAPABILITIES.read_text(encoding="utf-8"))
            body: dict[str, Any] = document["responses"]["200"]["body"]
            return body
        return None

    def _identity_token(
        self, emulator: ArmEmulator, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any]]:
        """App Service's managed-identity answer (MSAL ``_obtain_token_on_app_service``)."""
        if self.headers.get("X-IDENTITY-HEADER") != emulator.identity_header:
            return 401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong"}
        resource = (query.get("resource") or [""])[0]
        return 200, {
            "access_token": emulator.token,
            "expires_on": str(int(time.time()) + 3600),
            "resource": resource,
            "token_type": "Bearer",
        }

    def _graph(
        self, emulator: ArmEmulator, path: str, payload: bytes, authorized: bool
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """A Resource Graph query: quota first, then faults, token, body."""
        admitted, quota = emulator.graph.admit(self.headers.get("Authorization") or "")
        fault = emulator._take_fault(path)
        delay = emulator.latency + (fault.latency if fault else 0.0)
        if delay:
            time.sleep(delay)
        if not admitted:
            status, body, _ = _error(429, "Too many requests, please retry later.", "RateLimiting")
            return status, body, quota
        if fault is not None and fault.drop:
            return -1, {}, {}
        if fault is not None and fault.status is not None:
            status, body, headers = _error(fault.status, fault.message, fault.error_code)
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            return status, body, {**quota, **headers}
        if not authorized:
            status, body, headers = _error(401, "The access token is missing or invalid.")
            return status, body, quota
        if fault is not None and fault.answer is not None:
            return 200, fault.answer, quota
        try:
            request = json.loads(payload or b"{}")
            if not isinstance(request, dict):
                raise UnsupportedQuery("the body is not a JSON object")
            answer = emulator.graph.answer(
                request, emulator.world.subscriptions(), emulator.principal.can_read_row
            )
        except (ValueError, UnsupportedQuery) as error:
            status, body, headers = _error(400, str(error), "UnsupportedQuery")
            return status, body, quota
        return 200, answer, quota

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def _error(
    status: int, message: str | None = None, code: str | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    error_code = code or _ERROR_CODES.get(status, "Error")
    text = message or f"Emulated ARM error {status} ({error_code})."
    return status, {"error": {"code": error_code, "message": text}}, {}


def _rewrite_next_link(body: dict[str, Any], origin: str) -> dict[str, Any]:
    """Point a page's nextLink at the emulator, whatever host the fixture or example named."""
    link = body.get("nextLink")
    if not isinstance(link, str) or not link:
        return body
    parts = urlsplit(link)
    rewritten = f"{origin}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    return {**body, "nextLink": rewritten}
