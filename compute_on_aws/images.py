"""Publishing Nix-built images: build the job's stream script, push its archive with skopeo unless the tag is there."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import IO

from compute_on_aws import nix
from compute_on_aws.aws.session import Aws, calling
from compute_on_aws.declared.config import IMAGE_SYSTEMS, ImageSettings
from compute_on_aws.errors import ToolError, UserError
from compute_on_aws.planning.plan import ImagePush

# skopeo reads a trust policy on every copy, from /etc/containers/policy.json unless given one: nixpkgs' skopeo, macOS
# and most Linux machines have none there. The source is an archive Nix just built: there is no signature to check.
_POLICY = {"default": [{"type": "insecureAcceptAnything"}]}
_ECR_HOST = re.compile(r"\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
_MISSING = ("manifest unknown", "not found", "name unknown")


def is_ecr(registry: str) -> bool:
    """Whether a registry host is ECR's (`<account>.dkr.ecr.<region>.amazonaws.com`)."""
    return _ECR_HOST.fullmatch(registry) is not None


def _skopeo(args: list[str], policy: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("skopeo") is None:
        raise UserError("skopeo not found on PATH: it pushes Nix-built images (Debian: apt install skopeo)")
    return subprocess.run(["skopeo", "--policy", str(policy), *args], capture_output=True, text=True, check=False)


def _last_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return re.sub(r'^time="[^"]*" level=\w+ msg="(.*)"$', r"\1", lines[-1]) if lines else "no output"


def _auth_file(push: ImagePush, settings: ImageSettings, aws: Aws, directory: Path) -> Path | None:
    """A registry auth file (mode 0600, in a private temp dir) with an ECR token when the registry needs one."""
    registry = push.target.split("/", 1)[0]
    if settings.login == "none" or (settings.login == "auto" and not _ECR_HOST.fullmatch(registry)):
        return None
    # ECR's token is already base64("AWS:<password>"), the form auth files hold.
    with calling("getting an ECR login token"):
        token = aws.ecr().get_authorization_token()["authorizationData"][0]["authorizationToken"]
    path = directory / "auth.json"
    path.write_text(json.dumps({"auths": {registry: {"auth": token}}}))
    path.chmod(0o600)
    return path


def _check_architecture(archive: Path, push: ImagePush, what: str) -> None:
    """An image Batch's instances cannot start (arm64 on x86_64 compute, or the reverse) is refused before the push."""
    with tarfile.open(archive) as tar:
        manifest = json.load(_member(tar, "manifest.json"))
        architecture = json.load(_member(tar, manifest[0]["Config"])).get("architecture")
    expected = IMAGE_SYSTEMS[push.system]
    if architecture != expected:
        raise UserError(
            f"{what} is built for {architecture}, and image.system is {push.system} ({expected}): build images with "
            f"nixpkgs for {push.system} (mkJobs' imagePkgs), or set image.system to what your compute environments run"
        )


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    member = tar.extractfile(name)
    if member is None:
        raise ToolError(f"the image archive has no file {name}")
    return member


def publish(push: ImagePush, settings: ImageSettings, aws: Aws, *, what: str) -> bool:
    """Makes sure push.target exists in the registry; returns True when it pushed, False when it was there already."""
    tls = "true" if settings.tls_verify else "false"
    with tempfile.TemporaryDirectory(prefix="compute-on-aws-") as tmp:
        auth = _auth_file(push, settings, aws, Path(tmp))
        auth_args = ["--authfile", str(auth)] if auth else []
        policy = Path(tmp) / "policy.json"
        policy.write_text(json.dumps(_POLICY))
        inspect = _skopeo(["inspect", "--raw", f"--tls-verify={tls}", *auth_args, f"docker://{push.target}"], policy)
        if inspect.returncode == 0:
            return False
        if not any(m in inspect.stderr for m in _MISSING):
            raise ToolError(f"checking {push.target}: skopeo: {_last_line(inspect.stderr)}")
        stream = nix.realise(push.drv, what)
        # skopeo 1.9 cannot read a docker-archive from a pipe: the stream goes to a private temp file first.
        archive = Path(tmp) / "image.tar"
        with archive.open("wb") as out:
            built = subprocess.run([stream], stdout=out, stderr=subprocess.PIPE, text=True, check=False)
        if built.returncode != 0:
            raise ToolError(f"streaming {what} failed: {_last_line(built.stderr)}")
        _check_architecture(archive, push, what)
        copy = _skopeo(
            [
                "copy",
                "--quiet",
                f"--dest-tls-verify={tls}",
                *auth_args,
                f"docker-archive:{archive}",
                f"docker://{push.target}",
            ],
            policy,
        )
        archive.unlink()
        if copy.returncode != 0:
            raise ToolError(f"pushing {push.target} failed: skopeo: {_last_line(copy.stderr)}")
    return True
