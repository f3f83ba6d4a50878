"""Pushing a job's image twice, one line of its script changed between, from a machine that keeps nothing between the
two pushes (a fresh CI runner): bytes uploaded and time of each push, the tool against skopeo (what `queue` did
before, and what the image's copyTo does by hand), with and without skopeo's blob cache kept.

The image: a closure shaped like a Python job's (one 100 MB path, three of 30 MB, ten of 3 MB, thirty of 200 kB, and
the job's script; contents about as compressible as binaries, gzip to ~60%), streamed by the nixpkgs stand-in's
stream script (tests/nixpkgs-standin/stream-image.py: the pin's layout, one layer per store path, each written twice
as the pin's is). Nix is not involved: the stand-in's flake needs Nix >= 2.18 and this machine's may be older, so the
store paths are folders of a scratch store. The registry is Debian's docker-registry on loopback, behind a proxy
that counts what it receives (tests/registryproxy.py).

Run: `.venv/bin/python benchmarks/image_push.py` (or through run_all.py). Rounds: 3; medians.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import ROOT, measured

sys.path.insert(0, str(ROOT / "tests"))
from registryproxy import STREAM, docker_registry, registry_proxy, stream_command

ROUNDS = 3
SIZES = [100_000_000] + [30_000_000] * 3 + [3_000_000] * 10 + [200_000] * 30
# skopeo's blob cache as root (containers/image's default): what a fresh runner does not have.
BLOB_CACHE = Path("/var/lib/containers/cache/blob-info-cache-v1.boltdb")
TOOL = """
import sys
from compute_on_aws.images import push_stream
from compute_on_aws.images.registry import Registry
address, repository, tag, conf = sys.argv[1:]
with Registry(address, repository, tls_verify=False) as registry:
    push_stream([sys.executable, {stream!r}, conf], registry, tag, system="x86_64-linux", what="the image")
"""


def _scratch_store(store: Path) -> list[Path]:
    paths = []
    for i, size in enumerate(SIZES):
        path = store / f"{hashlib.sha256(str(i).encode()).hexdigest()[:32]}-dep-{i}"
        path.mkdir(parents=True)
        # Hex of random bytes: 4 bits of entropy a byte, so gzip gets it to ~55-60%, as it does binaries.
        (path / "lib.so").write_bytes(os.urandom(size // 2).hex().encode())
        paths.append(path)
    return paths


def _image(folder: Path, store: Path, deps: list[Path], line: str) -> Path:
    """The conf of an image of `deps` and a script holding `line` (its own store path, linked at /bin)."""
    script = store / f"{hashlib.sha256(line.encode()).hexdigest()[:32]}-job"
    (script / "bin").mkdir(parents=True, exist_ok=True)
    (script / "bin" / "job").write_text(f"#!/bin/sh\n{line}\n")
    # The pin orders layers by popularity: the job's script, which nothing depends on, comes last.
    command = stream_command(folder / "customisation", [[str(p)] for p in deps] + [[str(script)]], str(script / "bin"))
    return Path(command[-1])


def _tool(address: str, repository: str, tag: str, conf: Path) -> dict[str, Any]:
    code = TOOL.format(stream=str(STREAM))
    return measured([sys.executable, "-c", code, address, repository, tag, str(conf)], dict(os.environ))


def _skopeo(address: str, repository: str, tag: str, conf: Path, scratch: Path, *, keep_cache: bool) -> dict[str, Any]:
    """The stream to a file (skopeo cannot read an archive from a pipe), then skopeo copy, as copyTo does."""
    if not keep_cache:
        BLOB_CACHE.unlink(missing_ok=True)
    script = scratch / "skopeo-push.sh"
    script.write_text(
        'set -e\narchive=$(mktemp -p "$4")\ntrap \'rm -f "$archive"\' EXIT\n'
        f'{sys.executable} {STREAM} "$3" > "$archive"\n'
        'skopeo --insecure-policy copy --quiet --dest-tls-verify=false "docker-archive:$archive" '
        '"docker://$1/$2"\n'
    )
    return measured(["sh", str(script), address, f"{repository}:{tag}", str(conf), str(scratch)], dict(os.environ))


def main() -> dict[str, Any]:
    if shutil.which("docker-registry") is None or shutil.which("skopeo") is None:
        raise SystemExit("image_push: needs docker-registry and skopeo (bash .ci/setup installs them)")
    kept_cache = BLOB_CACHE.read_bytes() if BLOB_CACHE.exists() else None
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        scratch = Path(tmp)
        store = scratch / "store"
        deps = _scratch_store(store)
        ways: dict[str, list[dict[str, Any]]] = {"tool": [], "skopeo": [], "skopeo-cache": []}
        try:
            with docker_registry(scratch) as upstream, registry_proxy(upstream) as proxy:
                for round_ in range(ROUNDS):
                    first = _image(scratch / f"r{round_}-a", store, deps, f"echo round {round_}")
                    second = _image(scratch / f"r{round_}-b", store, deps, f"echo round {round_}, changed")
                    for way in ways:
                        repository = f"{way}-{round_}"  # a repository of its own: the first push is a first
                        pushes = []
                        for tag, conf in (("one", first), ("two", second)):
                            proxy.clear()
                            if way == "tool":
                                result = _tool(proxy.address, repository, tag, conf)
                            else:
                                # skopeo-cache starts fresh too, then keeps what its first push taught it.
                                keep = way == "skopeo-cache" and tag == "two"
                                result = _skopeo(proxy.address, repository, tag, conf, scratch, keep_cache=keep)
                            pushes.append(
                                {
                                    "seconds": result["seconds"],
                                    "cpu_seconds": result["cpu_seconds"],
                                    "uploaded": proxy.uploaded(),
                                }
                            )
                        ways[way].append({"first": pushes[0], "second": pushes[1]})
        finally:
            if kept_cache is not None:
                BLOB_CACHE.write_bytes(kept_cache)
    image_bytes = sum(SIZES)
    summary: dict[str, Any] = {
        "rounds": ROUNDS,
        "image_bytes": image_bytes,
        "layers": len(SIZES) + 2,
        "command": ".venv/bin/python benchmarks/image_push.py",
    }
    for way, rounds in ways.items():
        row = {
            f"{push}_{key}": statistics.median(r[push][key] for r in rounds)
            for push in ("first", "second")
            for key in ("seconds", "cpu_seconds", "uploaded")
        }
        row["bytes_ratio"] = row["second_uploaded"] / row["first_uploaded"]
        row["time_ratio"] = row["second_seconds"] / row["first_seconds"]
        summary[way] = row
    return summary


def report(result: dict[str, Any]) -> list[str]:
    labels = {
        "tool": "compute-on-aws (layers by digest)",
        "skopeo": "skopeo, fresh runner (no blob cache)",
        "skopeo-cache": "skopeo, blob cache kept (a laptop)",
    }
    lines = [
        f"Image of {result['layers']} layers, {result['image_bytes'] / 1e6:.0f} MB of store paths; pushed, one line "
        f"of the script changed, pushed again (median of {result['rounds']} rounds):",
        "",
        "| how | 1st push | 1st sent | 2nd push | 2nd sent | 2nd/1st bytes | 2nd/1st time |",
        "|---|---|---|---|---|---|---|",
    ]
    for way, label in labels.items():
        row = result[way]
        lines.append(
            f"| {label} | {row['first_seconds']:.1f} s | {row['first_uploaded'] / 1e6:.1f} MB | "
            f"{row['second_seconds']:.1f} s | {row['second_uploaded'] / 1e6:.2f} MB | {row['bytes_ratio']:.3f} | "
            f"{row['time_ratio']:.2f} |"
        )
    return lines


if __name__ == "__main__":
    outcome = main()
    print(json.dumps(outcome, indent=2))
    print("\n".join(report(outcome)))
