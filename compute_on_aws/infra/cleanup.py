"""Old job-definition revisions cleaned up: every change of a job registers a revision that nothing ever removes.
Pure: from the revisions AWS describes and what uses them, which to keep (and why) and which to deregister."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compute_on_aws.planning.render import HASH_PARAMETER

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
