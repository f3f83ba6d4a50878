# TEST SCAFFOLDING (see flake.nix): writes a docker-archive of a Nix closure to stdout, standing in for the stream
# script of nixpkgs' dockerTools.streamLayeredImage (pkgs/build-support/docker/stream_layered_image.py at the pin).
# Two layers: the closure's store paths, then the customisation layer built with the image (contents' files linked
# under /, and what extraCommands made: nothing else, no /tmp); deterministic.
import hashlib
import io
import json
import sys
import tarfile

conf_path, customisation, name, tag, *store_paths = sys.argv[1:]
with open(conf_path) as f:
    conf = json.load(f)


def info(arcname: str, **kw: object) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(arcname)
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = 1, 0, 0, "", ""
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for d in ("nix", "nix/store"):
        tar.addfile(info(d, type=tarfile.DIRTYPE, mode=0o755))
    for p in sorted(store_paths):
        tar.add(
            p,
            arcname=p.lstrip("/"),
            filter=lambda ti: info(ti.name, **{k: getattr(ti, k) for k in ("type", "mode", "size", "linkname")}),
        )
with open(customisation, "rb") as f:
    layers = [layer.getvalue(), f.read()]
config = json.dumps(
    {
        "architecture": conf["architecture"],
        "os": "linux",
        "config": conf["config"],
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(data).hexdigest() for data in layers]},
    },
    sort_keys=True,
).encode()
config_name = hashlib.sha256(config).hexdigest() + ".json"
names = [f"{i}/layer.tar" for i in range(len(layers))]
manifest = json.dumps([{"Config": config_name, "RepoTags": [f"{name}:{tag}"], "Layers": names}]).encode()

with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as out:
    for arcname, data in (("manifest.json", manifest), (config_name, config), *zip(names, layers, strict=True)):
        out.addfile(info(arcname, size=len(data), mode=0o644), io.BytesIO(data))
