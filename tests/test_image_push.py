"""Pushing a Nix-built image: layer by layer from its stream script, sending only the layers the registry lacks, with
no state on the pushing machine; logged in as ECR or Docker Hub ask; refused in one line when the registry, the
login or the stream fails. A real registry (Debian's docker-registry) behind a proxy that sees what it received; the
streams come from the nixpkgs stand-in's stream script (its layout is the pin's: tests/nixpkgs-standin/)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Moto
from registryproxy import RegistryProxy, registry_proxy, stream_command

from compute_on_aws.aws.session import Aws
from compute_on_aws.declared.config import ImageSettings
from compute_on_aws.errors import RegistryError, ToolError, UserError
from compute_on_aws.images import credentials, push_image, push_stream
from compute_on_aws.images.registry import Registry
from compute_on_aws.planning.plan import ImagePush

SYSTEM = "x86_64-linux"


def _layered(tmp_path: Path, name: str, paths: dict[str, bytes], *, architecture: str = "amd64") -> list[str]:
    """A stream command writing an image of `paths` (store path name -> its file's content), one layer each, as the
    stand-in's streamLayeredImage does, and a customisation layer linking the first path."""
    store = tmp_path / "store"  # one store, as Nix's: an unchanged path is the same path
    layers = []
    for path, content in paths.items():
        (store / path).mkdir(parents=True, exist_ok=True)
        (store / path / "data").write_bytes(content)
        layers.append([str(store / path)])
    folder = tmp_path / f"{name}-customisation-{hashlib.sha256(repr(sorted(paths)).encode()).hexdigest()[:8]}"
    return stream_command(folder, layers, layers[0][0], architecture=architecture)


def _content(seed: str, size: int) -> bytes:
    """Incompressible bytes, as a store path's binaries mostly are."""
    out = b""
    block = seed.encode()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return out[:size]


@pytest.fixture
def proxied(registry: str) -> Iterator[RegistryProxy]:
    with registry_proxy(registry) as proxy:
        yield proxy


def _pulled(registry: str, reference: str, into: Path) -> dict[str, str]:
    """The image as a client pulls it (skopeo, straight from the registry): layer digest -> its sha256."""
    subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "--src-tls-verify=false",
            f"docker://{registry}/{reference}",
            f"dir:{into}",
        ],
        capture_output=True,
        check=True,
    )
    manifest = json.loads((into / "manifest.json").read_text())
    return {
        layer["digest"]: f"sha256:{hashlib.sha256((into / layer['digest'].split(':')[1]).read_bytes()).hexdigest()}"
        for layer in manifest["layers"]
    }


def test_a_second_push_sends_only_the_changed_layers_with_nothing_kept_between(
    tmp_path: Path, registry: str, proxied: RegistryProxy
) -> None:
    deps = {f"{i:02d}-dep": _content(f"dep{i}", 200_000) for i in range(8)}
    first = _layered(tmp_path, "job", {"aa-job": b"echo one\n", **deps})
    with Registry(proxied.address, "jobs", tls_verify=False) as client:
        sent = push_stream(first, client, "job-1", system=SYSTEM, what="the image of job")
    assert (sent.layers, sent.layers_sent) == (10, 10)
    first_bytes = proxied.uploaded()
    assert first_bytes >= 8 * 200_000
    proxied.clear()
    # One line of the job's script changed: its store path and the customisation layer (which links it) are new.
    second = _layered(tmp_path, "job", {"bb-job": b"echo two\n", **deps})
    with Registry(proxied.address, "jobs", tls_verify=False) as client:
        again = push_stream(second, client, "job-2", system=SYSTEM, what="the image of job")
    assert (again.layers, again.layers_sent) == (10, 2)
    assert proxied.uploaded() == again.bytes_sent + len(_config_of(registry, "job-2"))
    assert proxied.uploaded() < first_bytes / 10
    assert len(proxied.calls("HEAD", "/blobs/")) == 11  # each layer and the configuration, asked for once
    # What a client pulls is whole and matches the digests the manifest names.
    for tag in ("job-1", "job-2"):
        pulled = _pulled(registry, f"jobs:{tag}", tmp_path / f"pulled-{tag}")
        assert len(pulled) == 10 and all(digest == content for digest, content in pulled.items())


def _config_of(registry: str, tag: str) -> bytes:
    import urllib.request

    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    manifest = json.loads(
        urllib.request.urlopen(
            urllib.request.Request(f"http://{registry}/v2/jobs/manifests/{tag}", headers=accept)
        ).read()
    )
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert {layer["mediaType"] for layer in manifest["layers"]} == {"application/vnd.oci.image.layer.v1.tar"}
    return bytes(urllib.request.urlopen(f"http://{registry}/v2/jobs/blobs/{manifest['config']['digest']}").read())


def test_an_image_the_registry_has_is_not_streamed(tmp_path: Path, proxied: RegistryProxy, moto: Moto) -> None:
    image = _layered(tmp_path, "job", {"aa-job": b"echo one\n"})
    with Registry(proxied.address, "jobs", tls_verify=False) as client:
        push_stream(image, client, "job-1", system=SYSTEM, what="the image of job")
    proxied.clear()
    # The derivation is never built: the tag is there.
    push = ImagePush(drv="/nix/store/missing.drv", target=f"{proxied.address}/jobs:job-1", system=SYSTEM)
    settings = ImageSettings(registry=proxied.address, repository="jobs", tls_verify=False, login="none")
    assert push_image(push, settings, Aws(), what="the image of job") is None
    assert [(r.method, r.path) for r in proxied.requests if r.path != "/v2/"] == [("HEAD", "/v2/jobs/manifests/job-1")]


def test_ecr_login_is_the_token_as_basic_auth(tmp_path: Path, registry: str, moto: Moto) -> None:
    token = moto.client("ecr").get_authorization_token()["authorizationData"][0]["authorizationToken"]
    with registry_proxy(registry, login=token, scheme="basic") as proxy:
        settings = ImageSettings(registry=proxy.address, repository="jobs", tls_verify=False, login="ecr")
        basic = credentials(proxy.address, settings, Aws())
        assert basic == token and base64.b64decode(basic).startswith(b"AWS:")
        with Registry(proxy.address, "jobs", tls_verify=False, basic=basic) as client:
            push_stream(_layered(tmp_path, "job", {"aa-job": b"x"}), client, "t", system=SYSTEM, what="job")
        # Without the login, one line naming the registry and what to do.
        with Registry(proxy.address, "jobs", tls_verify=False) as client, pytest.raises(RegistryError) as refused:
            client.has_manifest("t")
        assert str(refused.value) == (
            f"{proxy.address} needs a login: set image.login to ecr for ECR, or log in with docker, podman or "
            "skopeo login (their auth files are read)"
        )


def test_a_saved_login_gets_a_bearer_token(
    tmp_path: Path, registry: str, monkeypatch: pytest.MonkeyPatch, moto: Moto
) -> None:
    login = base64.b64encode(b"me:secret").decode()
    with registry_proxy(registry, login=login, scheme="bearer") as proxy:
        auth = tmp_path / "auth.json"
        auth.write_text(json.dumps({"auths": {proxy.address: {"auth": login}}}))
        monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
        settings = ImageSettings(registry=proxy.address, repository="jobs", tls_verify=False, login="auto")
        basic = credentials(proxy.address, settings, Aws())
        assert basic == login
        with Registry(proxy.address, "jobs", tls_verify=False, basic=basic) as client:
            sent = push_stream(_layered(tmp_path, "job", {"aa-job": b"x"}), client, "t", system=SYSTEM, what="job")
        assert sent.layers_sent == 2
        auth.write_text(json.dumps({"auths": {proxy.address: {"auth": base64.b64encode(b"me:wrong").decode()}}}))
        wrong = credentials(proxy.address, settings, Aws())
        with (
            Registry(proxy.address, "jobs", tls_verify=False, basic=wrong) as client,
            pytest.raises(RegistryError) as e,
        ):
            client.has_manifest("t")
        assert "refused a token for" in str(e.value) and "DENIED" in str(e.value)


def test_an_unreadable_auth_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = tmp_path / "auth.json"
    auth.write_text("{not json")
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    with pytest.raises(UserError) as e:
        credentials("registry.example:5000", ImageSettings(login="none"), Aws())
    assert str(e.value).startswith(f"{auth}: not a readable registry auth file")


def test_an_image_of_another_architecture_is_refused_before_it_is_tagged(
    tmp_path: Path, registry: str, proxied: RegistryProxy
) -> None:
    image = _layered(tmp_path, "job", {"aa-job": b"x"}, architecture="arm64")
    with Registry(proxied.address, "jobs", tls_verify=False) as client, pytest.raises(UserError) as e:
        push_stream(image, client, "t", system=SYSTEM, what="the image of job")
    assert str(e.value).startswith("the image of job is built for arm64, and image.system is x86_64-linux (amd64)")
    assert str(e.value).endswith("(nothing was tagged)")
    assert not proxied.calls("PUT", "/manifests/")


def test_a_failing_stream_and_an_unreachable_registry_are_one_line(tmp_path: Path, proxied: RegistryProxy) -> None:
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('no space left on device\\n'); sys.exit(3)"]
    with Registry(proxied.address, "jobs", tls_verify=False) as client, pytest.raises(ToolError) as e:
        push_stream(failing, client, "t", system=SYSTEM, what="the image of job")
    assert str(e.value) == (
        "the image of job: the stream script wrote no image archive (empty file): no space left on device"
    )
    with Registry("127.0.0.1:1", "jobs", tls_verify=False) as client, pytest.raises(RegistryError) as unreachable:
        client.has_manifest("t")
    assert str(unreachable.value).startswith("cannot reach the registry 127.0.0.1:1 (")
    assert str(unreachable.value).endswith("); check image.registry")


def test_a_server_that_does_not_speak_http_is_one_line(tmp_path: Path) -> None:
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer_garbage() -> None:
        for _ in range(2):  # HTTPS first, then plain HTTP (tls_verify off): neither gets HTTP back
            connection, _ = server.accept()
            connection.recv(65536)
            connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            connection.close()

    threading.Thread(target=answer_garbage, daemon=True).start()
    address = f"127.0.0.1:{server.getsockname()[1]}"
    with Registry(address, "jobs", tls_verify=False) as client, pytest.raises(RegistryError) as e:
        client.has_manifest("t")
    server.close()
    assert str(e.value).startswith(f"cannot reach the registry {address} (")
    assert len(str(e.value).splitlines()) == 1
