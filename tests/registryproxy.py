"""A real image registry (Debian's docker-registry) on loopback, an HTTP proxy in front of it, and image streams to
push to it; for the tests and benchmarks/image_push.py.

The proxy keeps each request as the registry received it (method, path, body size), so that a test asserts on what a
push sent, and it can ask for a login as ECR (Basic) or Docker Hub (Bearer, from a token endpoint of its own) do.

`login` is base64("user:password"): with `scheme` "basic" every /v2/ request must carry it; with "bearer" the proxy
answers 401 with a Bearer challenge naming its /token endpoint, which gives a token for those credentials."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TOKEN = "registry-proxy-token"
STREAM = Path(__file__).resolve().parent / "nixpkgs-standin" / "stream-image.py"


@contextmanager
def docker_registry(folder: Path) -> Iterator[str]:
    """Debian's docker-registry serving from `folder` on a free loopback port; yields its address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = folder / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'registry'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n"
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/").read()
                break
            except OSError:
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()


def stream_command(folder: Path, store_layers: list[list[str]], link: str, *, architecture: str = "amd64") -> list[str]:
    """The stand-in's stream script (the pinned nixpkgs' layout) writing an image of these store layers, with a
    customisation layer linking /bin to `link`; its configuration and customisation layer are written in `folder`."""
    folder.mkdir(parents=True)
    with tarfile.open(folder / "layer.tar", "w") as tar:
        bin_link = tarfile.TarInfo("bin")
        bin_link.type, bin_link.linkname = tarfile.SYMTYPE, link
        tar.addfile(bin_link)
    (folder / "checksum").write_text(hashlib.sha256((folder / "layer.tar").read_bytes()).hexdigest())
    conf = folder / "conf.json"
    conf.write_text(
        json.dumps(
            {
                "architecture": architecture,
                "config": {"Env": ["PATH=/bin"]},
                "created": "1970-01-01T00:00:01Z",
                "mtime": "1970-01-01T00:00:01Z",
                "uid": 0,
                "gid": 0,
                "uname": "root",
                "gname": "root",
                "repo_tag": "job:x",
                "store_layers": store_layers,
                "customisation_layer": str(folder),
            }
        )
    )
    return [sys.executable, str(STREAM), str(conf)]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    sent: int


@dataclass
class RegistryProxy:
    upstream: str
    login: str | None = None
    scheme: str = "basic"
    requests: list[Request] = field(default_factory=list)
    address: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def uploaded(self) -> int:
        """Bytes of blob content the registry received (upload bodies)."""
        return sum(r.sent for r in self.requests if r.method in ("PATCH", "PUT") and "/blobs/uploads/" in r.path)

    def calls(self, method: str, part: str = "") -> list[Request]:
        return [r for r in self.requests if r.method == method and part in r.path]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()


def _handler(proxy: RegistryProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _refuse(self) -> None:
            host = self.headers.get("Host", proxy.address)
            challenge = (
                f'Basic realm="http://{host}/"'
                if proxy.scheme == "basic"
                else f'Bearer realm="http://{host}/token",service="registry-proxy",scope="repository:x:pull"'
            )
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}).encode()
            self.send_response(401)
            self.send_header("WWW-Authenticate", challenge)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _token(self) -> None:
            good = self.headers.get("Authorization") == f"Basic {proxy.login}"
            body = json.dumps({"token": TOKEN} if good else {"errors": [{"code": "DENIED", "message": "no"}]})
            self.send_response(200 if good else 401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def _body(self) -> bytes:
            """The request's body, sent with a length or chunked (skopeo streams compressed layers chunked)."""
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers
                pass
            return b"".join(chunks)

        def _any(self) -> None:
            body = self._body()
            if self.path.startswith("/token"):
                self._token()
                return
            with proxy._lock:
                proxy.requests.append(Request(self.command, self.path, len(body)))
            wanted = {"basic": f"Basic {proxy.login}", "bearer": f"Bearer {TOKEN}"}[proxy.scheme]
            if proxy.login is not None and self.headers.get("Authorization") != wanted:
                self._refuse()
                return
            upstream = http.client.HTTPConnection(proxy.upstream, timeout=60)
            dropped = ("authorization", "connection", "transfer-encoding", "content-length")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
            if body:
                headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            upstream.close()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    return Handler


@contextmanager
def registry_proxy(upstream: str, **settings: Any) -> Iterator[RegistryProxy]:
    proxy = RegistryProxy(upstream, **settings)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    proxy.address = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
