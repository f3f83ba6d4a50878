"""Old job-definition revisions cleaned up: every change of a job registers a revision that nothing ever removes.
Pure: from the revisions AWS describes and what uses them, which to keep (and why) and which to deregister."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compute_on_aws.planning.plan import TAG_LIMIT
from compute_on_aws.planning.render import HASH_PARAMETER

NIX_HASH = 32  # characters of the content hash in a Nix-built image's tag

DEFAULT_KEEP = 10


@dataclass(frozen=True)
class Decision:
    """One ACTIVE revision: `keep` (with why) or `deregister`."""

    name: str
    revision: int
    arn: str
    action: str
    why: str

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.revision}"

    def to_json(self) -> dict[str, Any]:
        return {"definition": self.ref, "arn": self.arn, "action": self.action, "why": self.why}


def plan_cleanup(
    revisions: Mapping[str, Sequence[Mapping[str, Any]]], in_use: Mapping[str, str], *, keep: int
) -> list[Decision]:
    """For each definition name, its ACTIVE revisions (DescribeJobDefinitions entries), newest first: kept when
    compute-on-aws did not register it (no content hash: never touched), when it is among the `keep` newest of ours,
    or when `in_use` (name:revision -> what uses it) names it; the rest deregistered."""
    decisions = []
    for name in sorted(revisions):
        ours = 0
        for d in sorted(revisions[name], key=lambda d: -int(d["revision"])):
            ref = f"{name}:{d['revision']}"
            if HASH_PARAMETER not in d.get("parameters", {}):
                action, why = "keep", "not registered by compute-on-aws"
            else:
                ours += 1
                if ours <= keep:
                    action, why = "keep", f"among the {keep} newest"
                elif ref in in_use:
                    action, why = "keep", f"used by {in_use[ref]}"
                else:
                    action, why = "deregister", "older, and used by no active job or schedule"
            decisions.append(Decision(name, int(d["revision"]), str(d["jobDefinitionArn"]), action, why))
    return decisions


@dataclass(frozen=True)
class ImageDecision:
    """One tag of the image repository: `keep` (with why) or `delete`."""

    tag: str
    action: str
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"tag": self.tag, "action": self.action, "why": self.why}


def _ours(tag: str, jobs: Sequence[str]) -> bool:
    """`<job>-<Nix hash>` of a declared job (plan.image_tag): what compute-on-aws pushed for this project."""
    name, _, digest = tag.rpartition("-")
    if len(digest) != NIX_HASH or not digest.isalnum() or not name:
        return False
    # A job's name is shortened only to keep the tag within 128 characters.
    return any(j == name or (len(name) == TAG_LIMIT - NIX_HASH - 1 and j.startswith(name)) for j in jobs)


def plan_images(
    tags: Sequence[str], repository: str, decisions: Sequence[Decision], images: Mapping[str, str], jobs: Sequence[str]
) -> list[ImageDecision]:
    """Which tags of `repository` (`registry/name`) to delete: this project's (`<job>-<hash>`) that no revision kept
    names (`images`: name:revision -> its image). Any other tag is never touched."""
    kept = {images.get(d.ref, "") for d in decisions if d.action == "keep"}
    found = []
    for tag in sorted(tags):
        if not _ours(tag, jobs):
            found.append(ImageDecision(tag, "keep", "not pushed by compute-on-aws for these jobs"))
        elif f"{repository}:{tag}" in kept:
            found.append(ImageDecision(tag, "keep", "named by a revision kept"))
        else:
            found.append(ImageDecision(tag, "delete", "named by no revision kept"))
    return found
