"""A fault-injecting HTTP proxy on loopback in front of moto: AWS as a CI system with a flaky network meets it.

Each request to an AWS API action can be answered with a fault instead of (or after) moto's answer:
- "throttle" (429 TooManyRequestsException) and "error-before" (500) without forwarding: nothing was created;
- "error-after" (500 after forwarding), "close-after" (the connection closed after forwarding, no answer) and
  "slow-after" (moto's answer sent after `slow_seconds`, beyond the client's read timeout): the request took effect,
  its answer is lost.
Faults come from a per-action script (`script["SubmitJob"] = ["close-after", None]`: the first SubmitJob loses its
answer, the second goes through) or at random with given rates. `page_size` makes ListJobs page as AWS does (moto
returns everything at once), and `calls_per_second` enforces AWS's limit on an account. Requests are counted per
action: all received, and those forwarded to moto.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

FAULTS = ("throttle", "error-before", "error-after", "close-after", "slow-after")
# Batch is REST-JSON: the action is the path (/v1/submitjob); other services name it in X-Amz-Target.
_BATCH_ACTIONS = {
    "/v1/submitjob": "SubmitJob",
    "/v1/listjobs": "ListJobs",
    "/v1/describejobs": "DescribeJobs",
    "/v1/terminatejob": "TerminateJob",
    "/v1/canceljob": "CancelJob",
    "/v1/registerjobdefinition": "RegisterJobDefinition",
    "/v1/describejobdefinitions": "DescribeJobDefinitions",
}


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
    injected: Counter[tuple[str, str]] = field(default_factory=Counter)

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


def _action(path: str, headers: Any) -> str:
    target = headers.get("X-Amz-Target")
    if target:
        return str(target).rsplit(".", 1)[-1]
    return _BATCH_ACTIONS.get(urlsplit(path).path.lower(), urlsplit(path).path)


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

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
            body = json.dumps({"__type": code, "message": f"injected by the test proxy: {code}"}).encode()
            self._answer(status, body, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)])

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            action = _action(self.path, self.headers)
            with proxy._lock:
                proxy.received[action] += 1
            request = json.loads(body) if body and action == "ListJobs" else {}
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
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            answer_headers = response.getheaders()
            connection.close()
            with proxy._lock:
                proxy.forwarded[action] += 1
            if fault == "error-after":
                self._error(500, "ServerException")
            elif fault == "close-after":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif fault == "slow-after":
                time.sleep(proxy.slow_seconds)
                self._answer(response.status, answer, answer_headers)
            elif action == "ListJobs" and proxy.page_size is not None and response.status == 200:
                self._answer(200, json.dumps(proxy.page(json.loads(answer))).encode(), answer_headers)
            else:
                self._answer(response.status, answer, answer_headers)

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
