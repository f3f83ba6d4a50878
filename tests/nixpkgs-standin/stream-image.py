# TEST SCAFFOLDING (see flake.nix): writes a docker-archive of a Nix closure to stdout, standing in for the stream
# script of nixpkgs' dockerTools.streamLayeredImage (pkgs/build-support/docker/stream_layered_image.py at the pin),
# from a configuration of the same fields (conf.json: architecture, config, created, mtime, repo_tag, store_layers,
# customisation_layer, uid, gid, uname, gname). As at the pin:
# - each store layer is an uncompressed tar of its store paths (/nix and /nix/store first, then each path and what is
#   under it, sorted, hard links as regular files, owner and mtime from the configuration), named
#   `<sha256 of the tar>/layer.tar`; it is written twice, once to learn its digest and size, once into the archive;
# - then the customisation layer (layer.tar and checksum, built with the image), then the configuration (created,
#   architecture, os, config, rootfs.diff_ids, history; JSON indented by 4) as `<its sha256>.json`, and manifest.json
#   last.
# Not copied: fromImage's base layers, `created = "now"`.
import hashlib
import json
import os
import sys
import tarfile
from datetime import datetime

with open(sys.argv[1]) as f:
    conf = json.load(f)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


created = parse_time(conf["created"]).isoformat()
mtime = int(parse_time(conf["mtime"]).timestamp())
owner = {"uid": conf["uid"], "gid": conf["gid"], "uname": conf["uname"], "gname": conf["gname"]}
out = sys.stdout.buffer


class Digest:
    def __init__(self) -> None:
        self.sha, self.size = hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return len(data)


def own(ti: tarfile.TarInfo) -> tarfile.TarInfo:
    ti.mtime = mtime
    for key, value in owner.items():
        setattr(ti, key, value)
    return ti


def write_layer(sink: object, paths: list[str]) -> None:
    with tarfile.open(fileobj=sink, mode="w|") as tar:  # type: ignore[call-overload]
        for d in ("/nix", "/nix/store"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(own(ti))
        for path in paths:
            files = [path]
            if not os.path.islink(path) and os.path.isdir(path):
                for top, dirs, names in os.walk(path):
                    files += [os.path.join(top, n) for n in dirs + names]
            for name in sorted(files):
                ti = tar.gettarinfo(name)
                ti.name = "/" + ti.name
                if ti.islnk():
                    ti.type, ti.linkname, ti.size = tarfile.REGTYPE, "", os.stat(name).st_size
                own(ti)
                if ti.isfile():
                    with open(name, "rb") as data:
                        tar.addfile(ti, data)
                else:
                    tar.addfile(ti)


def member(name: str, size: int) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime = size, mtime
    out.write(ti.tobuf(format=tarfile.PAX_FORMAT))


def pad(size: int) -> None:
    out.write(b"\0" * (-size % tarfile.BLOCKSIZE))


class Through:
    def write(self, data: bytes) -> int:
        return out.write(data)


layers = []
for paths in conf["store_layers"]:
    digest = Digest()
    write_layer(digest, paths)
    checksum = digest.sha.hexdigest()
    member(f"{checksum}/layer.tar", digest.size)
    write_layer(Through(), paths)
    pad(digest.size)
    layers.append((checksum, paths))

customisation = conf["customisation_layer"]
with open(os.path.join(customisation, "checksum")) as f:
    checksum = f.read().strip()
with open(os.path.join(customisation, "layer.tar"), "rb") as f:
    data = f.read()
member(f"{checksum}/layer.tar", len(data))
out.write(data)
pad(len(data))
layers.append((checksum, [customisation]))

image = json.dumps(
    {
        "created": created,
        "architecture": conf["architecture"],
        "os": "linux",
        "config": conf["config"],
        "rootfs": {"diff_ids": [f"sha256:{c}" for c, _ in layers], "type": "layers"},
        "history": [{"created": created, "comment": f"store paths: {paths}"} for _, paths in layers],
    },
    indent=4,
).encode()
manifest = json.dumps(
    [
        {
            "Config": f"{hashlib.sha256(image).hexdigest()}.json",
            "RepoTags": [conf["repo_tag"]],
            "Layers": [f"{c}/layer.tar" for c, _ in layers],
        }
    ],
    indent=4,
).encode()
for name, data in ((f"{hashlib.sha256(image).hexdigest()}.json", image), ("manifest.json", manifest)):
    member(name, len(data))
    out.write(data)
    pad(len(data))
out.write(b"\0" * (2 * tarfile.BLOCKSIZE))
out.flush()
