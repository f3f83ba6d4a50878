"""A fault-injecting HTTP proxy on loopback in front of moto: AWS as a CI system with a flaky network meets it.

Each request to an AWS API action can be answered with a fault instead of (or after) moto's answer:
- "throttle" (429 TooManyRequestsException), "error-before" (500) and "refuse" (400 ClientException) without
  forwarding: nothing was created;
- "error-after" (500 after forwarding), "close-after" (the connection closed after forwarding, no answer) and
  "slow-after" (moto's answer sent after `slow_seconds`, beyond the client's read timeout): the request took effect,
  its answer is lost.
Faults come from a per-action script (`script["SubmitJob"] = ["close-after", None]`: the first SubmitJob loses its
answer, the second goes through) or at random with given rates. `page_size` makes ListJobs page as AWS does (moto
returns everything at once), and `calls_per_second` enforces AWS's limit on an account. Requests are counted per
action (all received, and those forwarded to moto), and each request is kept as the API reads it (`bodies`): its URI
and query parameters and its JSON or form body, so that a test asserts on what moto received, also on the fields moto
ignores. `intercept` puts a function around one action's forwarding: another client acting between two calls, an
answer that takes its time, or (tests/batchshim.py) what Batch does that moto does not.

The action is read as AWS reads it: X-Amz-Target (JSON protocols), Action= (query protocols), or the method and path
against the REST routes of the service the request is signed for (botocore's own model of that service).
"""

from __future__ import annotations

import functools
import http.client
import json
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

FAULTS = ("throttle", "error-before", "error-after", "close-after", "slow-after")
# Not a network fault: AWS refusing the request (400 ClientException), for scripts only.
REFUSE = "refuse"


class Answer(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else {}

    def with_json(self, value: Any) -> Answer:
        return self._replace(body=json.dumps(value).encode())


# interceptor(request, forward) -> Answer: `forward()` sends the request on to moto and returns its answer.
Interceptor = Callable[[dict[str, Any], Callable[[], Answer]], Answer]


@cache
def _routes(service: str) -> tuple[tuple[str, re.Pattern[str], str], ...]:
    """(method, path pattern, operation) for each REST operation of a service, from botocore's model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        path = http["requestUri"].split("?", 1)[0]
        pattern = "".join(
            f"(?P<{part[1:-1].rstrip('+')}>{'.+' if part.endswith('+}') else '[^/]+'})"
            if part.startswith("{")
            else re.escape(part)
            for part in re.split(r"(\{[^}]+\})", path)
        )
        routes.append((http["method"], re.compile(pattern + "/?$"), name))
    # Literal routes before templated ones (/schedule-groups before /schedules/{Name}...), longest first.
    return tuple(sorted(routes, key=lambda r: (r[1].pattern.count("(?P"), -len(r[1].pattern))))


def _signed_service(headers: Any) -> str | None:
    """The service a SigV4 Authorization header is scoped to (Credential=KEY/DATE/REGION/SERVICE/aws4_request)."""
    found = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request", headers.get("Authorization") or "")
    return found[1] if found else None


def read_request(method: str, path: str, headers: Any, body: bytes) -> tuple[str, dict[str, Any]]:
    """The action of a request and its parameters (URI, query string and body, as the API reads them)."""
    url = urlsplit(path)
    query = dict(parse_qsl(url.query, keep_blank_values=True))
    content_type = headers.get("Content-Type") or ""
    if "x-www-form-urlencoded" in content_type:
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        return form.get("Action", "?"), form
    payload = json.loads(body) if body.strip() else {}
    target = headers.get("X-Amz-Target")
    if target:
        return str(target).rsplit(".", 1)[-1], payload
    service = _signed_service(headers)
    if service is not None:
        for route_method, pattern, name in _routes(service):
            found = pattern.match(url.path)
            if route_method == method and found:
                return name, {**{k: unquote(v) for k, v in found.groupdict().items()}, **query, **payload}
    return url.path, {**query, **payload}


@dataclass
class FaultProxy:
    upstream: str
    url: str = ""
    # action -> faults for its successive requests (None: no fault); consumed in order.
    script: dict[str, list[str | None]] = field(default_factory=lambda: defaultdict(list))
    # action -> {fault: probability}, for requests the script says nothing about.
    rates: dict[str, dict[str, float]] = field(default_factory=dict)
    slow_seconds: float = 2.0
    page_size: int | None = None
    # AWS's limit on an account's calls: beyond this many in any one second, 429 TooManyRequestsException (not counted).
    calls_per_second: float | None = None
    seed: int = 1
    forwarded: Counter[str] = field(default_factory=Counter)
    # Every request per action, including the pages served from the proxy's cache and the faults injected before moto.
    received: Counter[str] = field(default_factory=Counter)
    # The same requests' parameters, in the order they came (see read_request).
    bodies: defaultdict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    injected: Counter[tuple[str, str]] = field(default_factory=Counter)
    interceptors: dict[str, list[Interceptor]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        self._pages: dict[str, list[list[Any]]] = {}
        self._recent: deque[float] = deque()

    def over_limit(self) -> bool:
        """Whether a call now goes beyond calls_per_second in the last second; else it is counted in."""
        if self.calls_per_second is None:
            return False
        with self._lock:
            now = time.monotonic()
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.calls_per_second:
                self.injected[("*", "over-limit")] += 1
                return True
            self._recent.append(now)
            return False

    def intercept(self, action: str, interceptor: Interceptor) -> None:
        """Runs `interceptor` around each forwarding of `action` (the last added outermost)."""
        self.interceptors[action].append(interceptor)

    def clear(self) -> None:
        """Forgets what was received and forwarded (not the faults still scripted)."""
        with self._lock:
            self.received.clear()
            self.forwarded.clear()
            self.bodies.clear()

    def fault_for(self, action: str) -> str | None:
        with self._lock:
            if self.script.get(action):
                fault = self.script[action].pop(0)
            else:
                roll, fault = self._random.random(), None
                for name, rate in self.rates.get(action, {}).items():
                    if roll < rate:
                        fault = name
                        break
                    roll -= rate
            if fault is not None:
                self.injected[(action, fault)] += 1
            return fault

    def page(self, body: dict[str, Any]) -> dict[str, Any]:
        """A ListJobs answer cut into pages of page_size, each next page behind a nextToken of ours."""
        assert self.page_size is not None
        with self._lock:
            token = uuid.uuid4().hex
            items = body.get("jobSummaryList", [])
            pages = [items[i : i + self.page_size] for i in range(0, len(items), self.page_size)] or [[]]
            self._pages[token] = pages
        return self.next_page(token)

    def next_page(self, token: str) -> dict[str, Any]:
        with self._lock:
            pages = self._pages.pop(token)
            answer: dict[str, Any] = {"jobSummaryList": pages[0]}
            if len(pages) > 1:
                following = uuid.uuid4().hex
                self._pages[following] = pages[1:]
                answer["nextToken"] = following
        return answer


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two sends: without TCP_NODELAY each answer waits ~40 ms on loopback (Nagle and
        # delayed ACK), which every sequential client would pay.
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, code: str) -> None:
            message = f"injected by the test proxy: {code}"
            if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                # A query-protocol service (SNS, CloudWatch, IAM) answers errors in XML.
                xml = (
                    f"<ErrorResponse><Error><Type>{'Receiver' if status >= 500 else 'Sender'}</Type><Code>{code}</Code>"
                    f"<Message>{message}</Message></Error><RequestId>faultproxy</RequestId></ErrorResponse>"
                )
                self._answer(status, xml.encode(), [("Content-Type", "text/xml")])
                return
            body = json.dumps({"__type": code, "message": message}).encode()
            self._answer(status, body, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)])

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            action, request = read_request(self.command, self.path, self.headers, body)
            with proxy._lock:
                proxy.received[action] += 1
                proxy.bodies[action].append(request)
            if action == "ListJobs" and proxy.page_size is not None and request.get("nextToken"):
                answer = json.dumps(proxy.next_page(request["nextToken"])).encode()
                self._answer(200, answer, [("Content-Type", "application/json")])
                return
            if proxy.over_limit():
                self._error(429, "TooManyRequestsException")
                return
            fault = proxy.fault_for(action)
            if fault == "throttle":
                self._error(429, "TooManyRequestsException")
                return
            if fault == "error-before":
                self._error(500, "ServerException")
                return
            if fault == REFUSE:
                self._error(400, "ClientException")
                return

            def forward() -> Answer:
                connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}  # Host too: signed
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                answer = Answer(response.status, response.getheaders(), response.read())
                connection.close()
                with proxy._lock:
                    proxy.forwarded[action] += 1
                return answer

            for interceptor in proxy.interceptors.get(action, []):
                forward = functools.partial(interceptor, request, forward)
            response = forward()
            if fault == "error-after":
                self._error(500, "ServerException")
            elif fault == "close-after":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif fault == "slow-after":
                time.sleep(proxy.slow_seconds)
                self._answer(response.status, response.body, response.headers)
            elif action == "ListJobs" and proxy.page_size is not None and response.status == 200:
                self._answer(200, json.dumps(proxy.page(response.json())).encode(), response.headers)
            else:
                self._answer(response.status, response.body, response.headers)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

    return Handler


@contextmanager
def fault_proxy(upstream: str, **settings: Any) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream=upstream, **settings)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
