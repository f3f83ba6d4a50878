"""Where job events go: the `notifications` section of a config, checked whole before anything reads AWS."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from compute_on_aws.errors import UserError, did_you_mean

# The events a job's notification can be about: Batch's job state changes FAILED and SUCCEEDED, and BLOCKED ("Batch
# Job Queue Blocked": the job waits in RUNNABLE for a reason that does not resolve itself).
EVENTS = ("FAILED", "SUCCEEDED", "BLOCKED")
DEFAULT_EVENTS = ("FAILED",)
# config.SECTION_KEYS["notifications"] describes them.
NOTIFICATION_KEYS = {"topic", "on"}
_TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
_TOPIC_ARN = re.compile(
    r"arn:aws[a-z-]*:sns:(?P<region>[a-z]{2}(-[a-z]+)+-\d{1,2}):(?P<account>\d{12}):(?P<name>[A-Za-z0-9_-]{1,256})"
)


@dataclass(frozen=True, kw_only=True)
class Notifications:
    # A topic infra apply creates and keeps (its name), or one managed elsewhere (its ARN): exactly one is set.
    topic_name: str | None = None
    topic_arn: str | None = None
    # What every job is notified of, unless it declares its own `notify`.
    on: tuple[str, ...] = DEFAULT_EVENTS


def events(where: str, value: Any) -> tuple[str, ...]:
    """A list of EVENTS, each once."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{where}: expected a list of {', '.join(EVENTS)}, got {value!r}")
    if not value:
        raise UserError(f"{where}: lists no event: name at least one of {', '.join(EVENTS)} (or remove notifications)")
    for event in value:
        if event not in EVENTS:
            raise UserError(f"{where}: unknown event {event!r}{did_you_mean(event.upper(), EVENTS)}")
    if len(set(value)) != len(value):
        raise UserError(f"{where}: lists an event more than once")
    return tuple(value)


def parse_notifications(where: str, data: Any, region: str | None) -> Notifications | None:
    """The section, or None when there is none. An ARN must be of the config's region: EventBridge rules publish to
    topics of their own region."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise UserError(f"{where}: notifications: expected a mapping with topic and on")
    # YAML 1.1, which PyYAML reads, takes a bare `on:` for the boolean true.
    data = {("on" if key is True else key): value for key, value in data.items()}
    for key in data:
        if key not in NOTIFICATION_KEYS:
            raise UserError(f"{where}: notifications.{key}: unknown key{did_you_mean(str(key), NOTIFICATION_KEYS)}")
    topic = data.get("topic")
    on = events(f"{where}: notifications.on", data.get("on", list(DEFAULT_EVENTS)))
    if isinstance(topic, str) and topic.startswith("arn:"):
        found = _TOPIC_ARN.fullmatch(topic)
        if found is None:
            raise UserError(
                f"{where}: notifications.topic: expected an SNS topic ARN (arn:aws:sns:<region>:<12-digit account>:"
                f"<name>), got {topic!r}"
            )
        if region is not None and found["region"] != region:
            raise UserError(
                f"{where}: notifications.topic: the topic is in {found['region']}, the config in {region}: EventBridge "
                "publishes to a topic of its own region"
            )
        return Notifications(topic_arn=topic, on=on)
    if not isinstance(topic, str) or not _TOPIC_NAME.fullmatch(topic):
        raise UserError(
            f"{where}: notifications.topic: expected a topic name (1-256 letters, digits, - and _) or an SNS topic "
            f"ARN, got {topic!r}"
        )
    return Notifications(topic_name=topic, on=on)
