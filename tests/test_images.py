"""Registry login for Nix-built images: an ECR token from the ECR API, in a private auth file skopeo reads."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from conftest import Moto

from compute_on_aws.aws.session import Aws
from compute_on_aws.declared.config import ImageSettings
from compute_on_aws.images import _auth_file
from compute_on_aws.planning.plan import ImagePush

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
def test_ecr_login_only_where_it_applies(moto: Moto, tmp_path: Path, registry: str, login: str, expects_token: bool):
    push = ImagePush(drv="/nix/store/x.drv", target=f"{registry}/jobs:hello-abc", system="x86_64-linux")
    path = _auth_file(push, ImageSettings(registry=registry, repository="jobs", login=login), Aws(), tmp_path)
    if not expects_token:
        assert path is None
        return
    assert path is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    auth = json.loads(path.read_text())["auths"][registry]["auth"]
    assert base64.b64decode(auth).decode().startswith("AWS:")
