"""Publishing Nix-built images: unless the registry has the tag, run the job's stream script and push what it writes,
layer by layer, sending only the layers the registry lacks.

A stream script (nixpkgs' dockerTools.streamLayeredImage) writes a docker-archive: one uncompressed tar per layer,
named by its sha256 (`<digest>/layer.tar`), then the image's configuration and manifest.json. Layers are pushed as
they are, uncompressed (OCI's `application/vnd.oci.image.layer.v1.tar`), so a layer's digest is known before its bytes
are read: the registry is asked for it, and a layer it has (a store path no job changed) is skipped. Nothing is kept
on the pushing machine, so a fresh CI runner pushes only what changed too. What it costs: layers are stored and pulled
uncompressed (nix2container does the same)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any

from compute_on_aws import nix
from compute_on_aws.aws.session import Aws, calling
from compute_on_aws.declared.config import IMAGE_SYSTEMS, ImageSettings
from compute_on_aws.errors import ToolError, UserError
from compute_on_aws.images.registry import Registry, Target, stored_credentials
from compute_on_aws.planning.plan import ImagePush

_ECR_HOST = re.compile(r"\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
_NAMED_BY_DIGEST = re.compile(r"(?:\./)?([0-9a-f]{64})/layer\.tar")
_LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
_MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
_SMALL = 64 << 20  # manifest.json and the configuration: anything larger is not an image archive


def is_ecr(registry: str) -> bool:
    """Whether a registry host is ECR's (`<account>.dkr.ecr.<region>.amazonaws.com`)."""
    return _ECR_HOST.fullmatch(registry) is not None


def credentials(host: str, settings: ImageSettings, aws: Aws) -> str | None:
    """base64("user:password") for the registry: an ECR token when the registry is ECR (image.login), else the login
    docker, podman or skopeo saved, else none (an open registry)."""
    if settings.login == "ecr" or (settings.login == "auto" and is_ecr(host)):
        # ECR's token is already base64("AWS:<password>").
        with calling("getting an ECR login token"):
            token: str = aws.ecr().get_authorization_token()["authorizationData"][0]["authorizationToken"]
        return token
    return stored_credentials(host)


@dataclass
class Pushed:
    """What one push sent: layers and bytes uploaded, against all the image holds."""

    layers: int = 0
    layers_sent: int = 0
    bytes_total: int = 0
    bytes_sent: int = 0
    digests: dict[str, tuple[str, int]] = field(default_factory=dict)

    def summary(self) -> str:
        return f"{self.layers_sent} of {self.layers} layers sent, {_size(self.bytes_sent)}"


def _size(count: int) -> str:
    if count < 1000:
        return f"{count} B"
    scaled = float(count)
    for unit in ("kB", "MB", "GB"):
        scaled /= 1000
        if scaled < 1000 or unit == "GB":
            break
    return f"{scaled:.1f} {unit}"


def publish(push: ImagePush, settings: ImageSettings, aws: Aws, *, what: str) -> bool:
    """Makes sure push.target exists in the registry; returns True when it pushed, False when it was there already."""
    return push_image(push, settings, aws, what=what) is not None


def push_image(push: ImagePush, settings: ImageSettings, aws: Aws, *, what: str) -> Pushed | None:
    """Pushes push.target unless the registry has it; None when it was there."""
    target = Target.parse(push.target)
    with Registry(
        target.host, target.repository, tls_verify=settings.tls_verify, basic=credentials(target.host, settings, aws)
    ) as registry:
        if registry.has_manifest(target.tag):
            return None
        stream = nix.realise(push.drv, what)
        return push_stream([stream], registry, target.tag, system=push.system, what=what)


def push_stream(command: list[str], registry: Registry, tag: str, *, system: str, what: str) -> Pushed:
    """Runs a stream script and pushes the archive it writes as `tag`: each layer the registry lacks, the
    configuration, then the manifest. An image of another architecture than `system`'s is refused before it is
    tagged."""
    pushed = Pushed()
    manifest: list[dict[str, Any]] | None = None
    configs: dict[str, bytes] = {}
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        try:
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                for member in archive:
                    if not member.isfile():
                        continue
                    name = member.name.removeprefix("./")
                    if name == "manifest.json":
                        manifest = json.loads(_small(archive, member))
                    elif name.endswith(".json") and "/" not in name:
                        configs[name] = _small(archive, member)
                    else:
                        pushed.digests[name] = _push_layer(archive, member, name, registry, pushed)
        except (tarfile.TarError, ValueError, OSError) as e:
            process.kill()
            process.wait()
            errors.seek(0)
            raise ToolError(f"{what}: the stream script wrote no image archive ({e}){_tail(errors)}") from None
        finally:
            process.stdout.close()
        if process.wait() != 0:
            errors.seek(0)
            raise ToolError(f"streaming {what} failed (exit {process.returncode}){_tail(errors)}")
    if not manifest or manifest[0].get("Config") not in configs:
        raise ToolError(f"{what}: the stream script's archive has no manifest.json naming its configuration")
    config = configs[manifest[0]["Config"]]
    layers = [pushed.digests[name.removeprefix("./")] for name in manifest[0]["Layers"]]
    _check(json.loads(config), layers, system, what)
    config_digest = f"sha256:{hashlib.sha256(config).hexdigest()}"
    if not registry.has_blob(config_digest):
        registry.put_blob(config_digest, len(config), io.BytesIO(config))
    document = {
        "schemaVersion": 2,
        "mediaType": _MANIFEST_TYPE,
        "config": {"mediaType": _CONFIG_TYPE, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": _LAYER_TYPE, "digest": d, "size": size} for d, size in layers],
    }
    registry.put_manifest(tag, json.dumps(document, separators=(",", ":")).encode(), _MANIFEST_TYPE)
    return pushed


def _push_layer(
    archive: tarfile.TarFile, member: tarfile.TarInfo, name: str, registry: Registry, pushed: Pushed
) -> tuple[str, int]:
    """Uploads one layer unless the registry has it; returns its digest and size."""
    pushed.layers += 1
    pushed.bytes_total += member.size
    named = _NAMED_BY_DIGEST.fullmatch(name)
    source = archive.extractfile(member)
    assert source is not None
    if named is None:
        # An archive whose layers are not named by digest: hash it first, in a private temporary file.
        with tempfile.TemporaryFile() as copy:
            digest = hashlib.sha256()
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                copy.write(chunk)
            found = f"sha256:{digest.hexdigest()}"
            if not registry.has_blob(found):
                copy.seek(0)
                registry.put_blob(found, member.size, copy)
                pushed.layers_sent += 1
                pushed.bytes_sent += member.size
            return found, member.size
    claimed = f"sha256:{named[1]}"
    if registry.has_blob(claimed):
        return claimed, member.size
    # The registry checks the digest of what it receives against `claimed`.
    registry.put_blob(claimed, member.size, source)
    pushed.layers_sent += 1
    pushed.bytes_sent += member.size
    return claimed, member.size


def _check(config: dict[str, Any], layers: list[tuple[str, int]], system: str, what: str) -> None:
    """The configuration's layers are the archive's (uncompressed, a layer's digest is its diff_id), and its
    architecture is what Batch's instances run."""
    diff_ids = (config.get("rootfs") or {}).get("diff_ids")
    if diff_ids != [d for d, _ in layers]:
        raise ToolError(f"{what}: the image's configuration lists other layers than its archive holds; nothing tagged")
    architecture = config.get("architecture")
    expected = IMAGE_SYSTEMS[system]
    if architecture != expected:
        raise UserError(
            f"{what} is built for {architecture}, and image.system is {system} ({expected}): build images with "
            f"nixpkgs for {system} (mkJobs' imagePkgs), or set image.system to what your compute environments run "
            "(nothing was tagged)"
        )


def _small(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if member.size > _SMALL:
        raise ValueError(f"{member.name} is {member.size} bytes")
    source = archive.extractfile(member)
    assert source is not None
    return source.read()


def _tail(errors: IO[bytes]) -> str:
    lines = [line for line in errors.read().decode("utf-8", "replace").splitlines() if line.strip()]
    return f": {lines[-1].strip()}" if lines else ""
