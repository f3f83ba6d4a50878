"""Registry login for Nix-built images: an ECR token from the ECR API where the registry is ECR (or image.login says
so), else the login docker, podman or skopeo saved, else none."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from conftest import Moto

from compute_on_aws.aws.session import Aws
from compute_on_aws.declared.config import ImageSettings
from compute_on_aws.images import credentials

ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    ("registry", "login", "expects_token"),
    [
        (ECR, "auto", True),
        ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "auto", True),
        ("registry.example.com:5000", "auto", False),
        ("registry.example.com:5000", "ecr", True),
        (ECR, "none", False),
    ],
)
def test_ecr_login_only_where_it_applies(
    moto: Moto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: str, login: str, expects_token: bool
) -> None:
    # A saved login for every host: what is used where ECR's token is not.
    saved = base64.b64encode(b"me:saved").decode()
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auths": {f"https://{registry}": {"auth": saved}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    basic = credentials(registry, ImageSettings(registry=registry, repository="jobs", login=login), Aws())
    assert basic is not None
    if expects_token:
        assert base64.b64decode(basic).decode().startswith("AWS:")
    else:
        assert basic == saved


def test_a_credential_helper_answers_for_its_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "bin" / "docker-credential-test"
    helper.parent.mkdir()
    helper.write_text(
        '#!/bin/sh\nread host\n[ "$1" = get ] && [ "$host" = registry.example ] && '
        'echo \'{"ServerURL": "registry.example", "Username": "u", "Secret": "s"}\'\n'
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:/usr/bin:/bin")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {"registry.example": "test"}}))
    assert credentials("registry.example", ImageSettings(login="auto"), Aws()) == base64.b64encode(b"u:s").decode()
    assert credentials("other.example", ImageSettings(login="auto"), Aws()) is None
