"""A small client of the OCI distribution API (what `docker push` speaks): is a tag or blob there, upload a blob,
put a manifest. Enough to push an image layer by layer, sending only the layers a registry lacks."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import ssl
import subprocess
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from compute_on_aws.errors import RegistryError, UserError

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_TIMEOUT = 120
_CHUNK = 1 << 20


@dataclass(frozen=True, kw_only=True)
class Target:
    """`host[:port]/repository[/more]:tag`, as images are named."""

    host: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, target: str) -> Target:
        host, _, rest = target.partition("/")
        repository, _, tag = rest.rpartition(":")
        if not host or not repository or not tag or "/" in tag:
            raise UserError(f"image target {target!r} is not of the form registry/repository:tag")
        return cls(host=host, repository=repository, tag=tag)


def stored_credentials(host: str) -> str | None:
    """The login `docker login`, `podman login` or `skopeo login` saved for a host, as base64("user:password"): the
    files containers-auth.json(5) reads, in its order, then Docker's config (its credential helpers included)."""
    home = Path.home()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    docker = Path(os.environ["DOCKER_CONFIG"]) if os.environ.get("DOCKER_CONFIG") else home / ".docker"
    files = [
        *([Path(os.environ["REGISTRY_AUTH_FILE"])] if os.environ.get("REGISTRY_AUTH_FILE") else []),
        *([Path(runtime) / "containers" / "auth.json"] if runtime else []),
        home / ".config" / "containers" / "auth.json",
        docker / "config.json",
    ]
    for path in files:
        try:
            config = json.loads(path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: not a readable registry auth file ({e})") from None
        if not isinstance(config, dict):
            raise UserError(f"{path}: not a registry auth file (expected a JSON object)")
        helper = (config.get("credHelpers") or {}).get(host) or config.get("credsStore")
        for key, entry in (config.get("auths") or {}).items():
            if _host_of(key) == host and isinstance(entry, dict) and entry.get("auth"):
                return str(entry["auth"])
        if helper:
            return _from_helper(str(helper), host)
    return None


def _host_of(key: str) -> str:
    return urllib.parse.urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]


def _from_helper(helper: str, host: str) -> str | None:
    program = f"docker-credential-{helper}"
    if shutil.which(program) is None:
        raise UserError(f"the registry login for {host} is kept by {program}, which is not on PATH")
    got = subprocess.run([program, "get"], input=host, capture_output=True, text=True, check=False)
    if got.returncode != 0:
        return None
    try:
        answer = json.loads(got.stdout)
        return base64.b64encode(f"{answer['Username']}:{answer['Secret']}".encode()).decode()
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{program} get: its answer for {host} is not a credential") from None


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name) or ""


class Registry:
    """One repository of one registry, over one kept-alive connection (a second only for redirected uploads).

    `basic` is base64("user:password") (ECR's token already is); with `tls_verify` False, HTTPS is tried without
    checking the certificate and plain HTTP after it, as skopeo's --tls-verify=false does."""

    def __init__(self, host: str, repository: str, *, tls_verify: bool = True, basic: str | None = None) -> None:
        self.host = host
        self.repository = repository
        self._tls_verify = tls_verify
        self._basic = basic
        self._scheme: str | None = None
        self._authorization: str | None = None
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # What the distribution API answers.

    def has_manifest(self, reference: str) -> bool:
        answer = self._call("HEAD", f"manifests/{reference}", headers={"Accept": ", ".join(MANIFEST_TYPES)})
        return self._exists(answer, f"manifest {reference}")

    def has_blob(self, digest: str) -> bool:
        return self._exists(self._call("HEAD", f"blobs/{digest}"), f"blob {digest}")

    def put_blob(self, digest: str, size: int, data: IO[bytes]) -> None:
        """Uploads `size` bytes read from `data` as the blob `digest` (the registry checks the digest)."""
        started = self._call("POST", "blobs/uploads/", headers={"Content-Length": "0"})
        self._expect(started, (202,), f"starting the upload of {digest}")
        location = started.header("Location")
        patched = self._call(
            "PATCH",
            location,
            body=data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        self._expect(patched, (202, 204), f"uploading {digest}")
        location = patched.header("Location") or location
        separator = "&" if "?" in location else "?"
        done = self._call(
            "PUT", f"{location}{separator}digest={urllib.parse.quote(digest)}", headers={"Content-Length": "0"}
        )
        self._expect(done, (201, 204), f"finishing the upload of {digest}")

    def put_manifest(self, reference: str, manifest: bytes, media_type: str) -> None:
        answer = self._call(
            "PUT",
            f"manifests/{reference}",
            body=manifest,
            headers={"Content-Type": media_type, "Content-Length": str(len(manifest))},
        )
        self._expect(answer, (200, 201, 202), f"tagging {reference}")

    # HTTP underneath.

    def _exists(self, answer: _Answer, what: str) -> bool:
        if answer.status in (200, 307):
            return True
        if answer.status == 404:
            return False
        self._expect(answer, (200,), f"looking for {what}")
        return False

    def _expect(self, answer: _Answer, statuses: tuple[int, ...], what: str) -> None:
        if answer.status in statuses:
            return
        code, message = _error_of(answer)
        advice = {
            401: "check the registry login (image.login, or docker/podman login for other registries)",
            403: "the credentials may not push to this repository",
        }.get(answer.status)
        raise RegistryError(
            f"{what} in {self.host}/{self.repository}: HTTP {answer.status} {code}: {message}"
            + (f" ({advice})" if advice else "")
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> _Answer:
        """A request to `/v2/<repository>/<path>` (or to a URL or absolute path the registry gave), logged in on a
        401 when the registry says how. A streamed body is sent once: the first call of a push is a HEAD, which logs
        in before any upload."""
        answer = self._send(method, path, body, headers)
        if answer.status == 401 and self._log_in(answer.header("WWW-Authenticate")):
            if hasattr(body, "read"):
                return answer
            answer = self._send(method, path, body, headers)
        return answer

    def _send(
        self, method: str, path: str, body: bytes | IO[bytes] | None, headers: Mapping[str, str] | None
    ) -> _Answer:
        url = urllib.parse.urlsplit(path)
        if url.scheme:
            scheme, netloc, target = url.scheme, url.netloc, urllib.parse.urlunsplit(("", "", url.path, url.query, ""))
        else:
            scheme = self._scheme or self._pick_scheme()
            netloc = self.host
            target = path if path.startswith("/") else f"/v2/{self.repository}/{path}"
        sent = dict(headers or {})
        if self._authorization and netloc == self.host:
            sent["Authorization"] = self._authorization
        for attempt in (1, 2):
            connection = self._connection(scheme, netloc)
            try:
                connection.request(method, target, body=body, headers=sent)
                response = connection.getresponse()
                return _Answer(response.status, response.headers, response.read())
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                # A kept-alive connection the server closed between calls: once more on a new one, when the body
                # can be sent again.
                self._drop(scheme, netloc)
                if attempt == 2 or hasattr(body, "read"):
                    raise RegistryError(f"{self.host}: the registry closed the connection ({e}); try again") from None
            except (OSError, http.client.HTTPException) as e:  # no answer, or one that is not HTTP
                self._drop(scheme, netloc)
                raise RegistryError(f"cannot reach the registry {netloc} ({_why(e)}); check image.registry") from None
        raise AssertionError("unreachable")

    def _pick_scheme(self) -> str:
        """HTTPS; with tls_verify off, plain HTTP when the registry does not speak TLS."""
        if self._tls_verify:
            self._scheme = "https"
            return self._scheme
        try:
            connection = self._connection("https", self.host)
            connection.request("GET", "/v2/")
            connection.getresponse().read()
            self._scheme = "https"
        except (ssl.SSLError, http.client.HTTPException, ConnectionError):
            self._drop("https", self.host)
            self._scheme = "http"
        except OSError as e:
            self._drop("https", self.host)
            raise RegistryError(f"cannot reach the registry {self.host} ({e}); check image.registry") from None
        return self._scheme

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        key = (scheme, netloc)
        if key not in self._connections:
            if scheme == "https":
                context = ssl.create_default_context()
                if not self._tls_verify:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                self._connections[key] = http.client.HTTPSConnection(netloc, timeout=_TIMEOUT, context=context)
            else:
                self._connections[key] = http.client.HTTPConnection(netloc, timeout=_TIMEOUT)
            self._connections[key].blocksize = _CHUNK
        return self._connections[key]

    def _drop(self, scheme: str, netloc: str) -> None:
        connection = self._connections.pop((scheme, netloc), None)
        if connection is not None:
            connection.close()

    def _log_in(self, challenge: str) -> bool:
        """Answers a 401's challenge: Basic with the credentials, or a Bearer token from the realm it names."""
        kind, _, rest = challenge.partition(" ")
        if self._authorization is not None and kind.lower() == "basic":
            return False
        if kind.lower() == "basic":
            if self._basic is None:
                raise RegistryError(
                    f"{self.host} needs a login: set image.login to ecr for ECR, or log in with docker, podman or "
                    "skopeo login (their auth files are read)"
                )
            self._authorization = f"Basic {self._basic}"
            return True
        if kind.lower() != "bearer":
            return False
        fields = _challenge_fields(rest)
        realm = fields.pop("realm", "")
        if not realm.startswith(("https://", "http://")):
            return False
        query = {"service": fields.get("service", ""), "scope": f"repository:{self.repository}:pull,push"}
        url = urllib.parse.urlsplit(f"{realm}{'&' if '?' in realm else '?'}{urllib.parse.urlencode(query)}")
        headers = {"Authorization": f"Basic {self._basic}"} if self._basic else {}
        connection = self._connection(url.scheme, url.netloc)
        try:
            connection.request("GET", urllib.parse.urlunsplit(("", "", url.path, url.query, "")), headers=headers)
            response = connection.getresponse()
            answer = _Answer(response.status, response.headers, response.read())
        except (OSError, http.client.HTTPException) as e:
            self._drop(url.scheme, url.netloc)
            raise RegistryError(f"cannot reach {url.netloc} for a token of {self.host} ({_why(e)})") from None
        if answer.status != 200:
            code, message = _error_of(answer)
            raise RegistryError(
                f"{url.netloc} refused a token for {self.host}/{self.repository}: HTTP {answer.status} {code}: "
                f"{message} (check the registry login)"
            )
        try:
            token = json.loads(answer.body)
            self._authorization = f"Bearer {token.get('token') or token['access_token']}"
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RegistryError(f"{url.netloc} answered a token request of {self.host} with no token") from None
        return True


def _why(error: Exception) -> str:
    """An exception as one line: a bad status line can hold CRLF, and some have no message at all."""
    return " ".join(str(error).split()) or type(error).__name__


def _challenge_fields(text: str) -> dict[str, str]:
    """`realm="https://auth",service="registry",scope="..."` as a dict (values may hold commas)."""
    fields: dict[str, str] = {}
    rest = text.strip()
    while rest:
        key, _, rest = rest.partition("=")
        if rest.startswith('"'):
            value, _, rest = rest[1:].partition('"')
        else:
            value, _, rest = rest.partition(",")
        fields[key.strip().lower()] = value
        rest = rest.lstrip(", ")
    return fields


def _error_of(answer: _Answer) -> tuple[str, str]:
    """The registry's error code and message (`{"errors": [{"code", "message"}]}`), or the status's reason."""
    try:
        first = json.loads(answer.body)["errors"][0]
        return str(first.get("code", "UNKNOWN")), " ".join(str(first.get("message", "")).split())
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        text = " ".join(answer.body.decode("utf-8", "replace").split())[:200]
        return "UNKNOWN", text or http.client.responses.get(answer.status, "no message")
