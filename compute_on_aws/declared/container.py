"""A job's container settings beyond resources (volumes, Linux parameters, ulimits, logs, Fargate's disk), its run
tags and the consumable resources it holds, read from the manifest (nix/lib/declaration.nix checked them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from compute_on_aws.errors import UserError

Fail = Callable[[str, str], UserError]

# Batch's log group of a job whose definition names none.
DEFAULT_LOG_GROUP = "/aws/batch/job"


@dataclass(frozen=True, kw_only=True)
class Efs:
    file_system_id: str
    root_directory: str | None = None
    access_point_id: str | None = None
    transit_encryption: bool = True
    iam: bool = False


@dataclass(frozen=True, kw_only=True)
class Volume:
    """A volume and where it is mounted: an EFS file system, or a folder of the EC2 host (host_path)."""

    name: str
    mount_point: str
    read_only: bool = False
    efs: Efs | None = None
    host_path: str | None = None


@dataclass(frozen=True, kw_only=True)
class Tmpfs:
    path: str
    size: int
    mount_options: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Ulimit:
    name: str
    soft: int
    hard: int


@dataclass(frozen=True, kw_only=True)
class Container:
    volumes: tuple[Volume, ...] = ()
    shared_memory_size: int | None = None
    tmpfs: tuple[Tmpfs, ...] = ()
    init_process_enabled: bool = False
    max_swap: int | None = None
    swappiness: int | None = None
    ulimits: tuple[Ulimit, ...] = ()
    user: str | None = None
    readonly_root_filesystem: bool = False
    ephemeral_storage: int | None = None
    platform_version: str | None = None
    log_group: str | None = None
    log_stream_prefix: str | None = None
    run_tags: Mapping[str, str] = field(default_factory=dict)
    # {consumable resource name: quantity held while the job runs}
    consumes: Mapping[str, int] = field(default_factory=dict)

    @property
    def efs_volumes(self) -> tuple[Volume, ...]:
        return tuple(v for v in self.volumes if v.efs is not None)


def _typed(fail: Fail, where: str, value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise fail(where, f"expected {what}")
    return value


def _optional(fail: Fail, data: Mapping[str, Any], key: str, kind: type, what: str, where: str) -> Any:
    value = data.get(key)
    return None if value is None else _typed(fail, f"{where}.{key}", value, kind, what)


def _set(fail: Fail, data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    return dict(_typed(fail, f"{where}.{key}", data.get(key) or {}, dict, "an object"))


def _volume(fail: Fail, name: str, data: Any, where: str) -> Volume:
    at = f"{where}.volumes.{name}"
    volume = _typed(fail, at, data, dict, "an object")
    efs = None
    if volume.get("efs") is not None:
        e = _typed(fail, f"{at}.efs", volume["efs"], dict, "an object")
        efs = Efs(
            file_system_id=_typed(fail, f"{at}.efs.fileSystemId", e.get("fileSystemId"), str, "a string"),
            root_directory=_optional(fail, e, "rootDirectory", str, "a string", f"{at}.efs"),
            access_point_id=_optional(fail, e, "accessPointId", str, "a string", f"{at}.efs"),
            transit_encryption=_typed(
                fail, f"{at}.efs.transitEncryption", e.get("transitEncryption", True), bool, "a boolean"
            ),
            iam=_typed(fail, f"{at}.efs.iam", e.get("iam", False), bool, "a boolean"),
        )
    return Volume(
        name=name,
        mount_point=_typed(fail, f"{at}.mountPoint", volume.get("mountPoint"), str, "a string"),
        read_only=_typed(fail, f"{at}.readOnly", volume.get("readOnly", False), bool, "a boolean"),
        efs=efs,
        host_path=_optional(fail, volume, "hostPath", str, "a string", at),
    )


def _tmpfs(fail: Fail, path: str, data: Any, where: str) -> Tmpfs:
    at = f"{where}.tmpfs.{path}"
    if isinstance(data, dict):
        options = _typed(fail, f"{at}.mountOptions", data.get("mountOptions", []), list, "a list")
        return Tmpfs(
            path=path,
            size=_typed(fail, f"{at}.size", data.get("size"), int, "an integer"),
            mount_options=tuple(_typed(fail, f"{at}.mountOptions", o, str, "strings") for o in options),
        )
    return Tmpfs(path=path, size=_typed(fail, at, data, int, "an integer"))


def _ulimit(fail: Fail, name: str, data: Any, where: str) -> Ulimit:
    at = f"{where}.ulimits.{name}"
    if isinstance(data, dict):
        soft = _typed(fail, f"{at}.soft", data.get("soft"), int, "an integer")
        return Ulimit(name=name, soft=soft, hard=_typed(fail, f"{at}.hard", data.get("hard"), int, "an integer"))
    limit = _typed(fail, at, data, int, "an integer")
    return Ulimit(name=name, soft=limit, hard=limit)


def parse_container(fail: Fail, data: Mapping[str, Any], where: str) -> Container:
    """The settings of one job's manifest entry; a field of the wrong type is a UserError naming it."""

    def strings(key: str) -> dict[str, str]:
        values = _set(fail, data, key, where)
        return {k: _typed(fail, f"{where}.{key}.{k}", v, str, "a string") for k, v in sorted(values.items())}

    return Container(
        volumes=tuple(_volume(fail, k, v, where) for k, v in sorted(_set(fail, data, "volumes", where).items())),
        shared_memory_size=_optional(fail, data, "sharedMemorySize", int, "an integer", where),
        tmpfs=tuple(_tmpfs(fail, k, v, where) for k, v in sorted(_set(fail, data, "tmpfs", where).items())),
        init_process_enabled=_typed(
            fail, f"{where}.initProcessEnabled", data.get("initProcessEnabled", False), bool, "a boolean"
        ),
        max_swap=_optional(fail, data, "maxSwap", int, "an integer", where),
        swappiness=_optional(fail, data, "swappiness", int, "an integer", where),
        ulimits=tuple(_ulimit(fail, k, v, where) for k, v in sorted(_set(fail, data, "ulimits", where).items())),
        user=_optional(fail, data, "user", str, "a string", where),
        readonly_root_filesystem=_typed(
            fail, f"{where}.readonlyRootFilesystem", data.get("readonlyRootFilesystem", False), bool, "a boolean"
        ),
        ephemeral_storage=_optional(fail, data, "ephemeralStorage", int, "an integer", where),
        platform_version=_optional(fail, data, "platformVersion", str, "a string", where),
        log_group=_optional(fail, data, "logGroup", str, "a string", where),
        log_stream_prefix=_optional(fail, data, "logStreamPrefix", str, "a string", where),
        run_tags=strings("runTags"),
        consumes={
            k: _typed(fail, f"{where}.consumes.{k}", v, int, "an integer")
            for k, v in sorted(_set(fail, data, "consumes", where).items())
        },
    )
