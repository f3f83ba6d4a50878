# TEST SCAFFOLDING (see flake.nix): writes a docker-archive of a Nix closure to stdout, standing in for the stream
# script of nixpkgs' dockerTools.streamLayeredImage. One layer; contents' files linked under /; deterministic.
import hashlib
import io
import json
import os
import sys
import tarfile

conf_path, name, tag, *store_paths = sys.argv[1:]
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
    for d in ("nix", "nix/store", "tmp"):
        tar.addfile(info(d, type=tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755))
    for p in sorted(store_paths):
        tar.add(
            p,
            arcname=p.lstrip("/"),
            filter=lambda ti: info(ti.name, **{k: getattr(ti, k) for k in ("type", "mode", "size", "linkname")}),
        )
    linked = set()
    for content in conf["contents"]:
        for root, _dirs, files in sorted(os.walk(content)):
            for f in sorted(files):
                rel = os.path.relpath(os.path.join(root, f), content)
                if rel in linked:
                    continue
                parts = rel.split("/")
                for i in range(1, len(parts)):
                    d = "/".join(parts[:i])
                    if d not in linked:
                        linked.add(d)
                        tar.addfile(info(d, type=tarfile.DIRTYPE, mode=0o755))
                linked.add(rel)
                tar.addfile(info(rel, type=tarfile.SYMTYPE, linkname=os.path.join(root, f)))
layer_bytes = layer.getvalue()
diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
config = json.dumps(
    {
        "architecture": arch,
        "os": "linux",
        "config": conf["config"],
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    },
    sort_keys=True,
).encode()
config_name = hashlib.sha256(config).hexdigest() + ".json"
manifest = json.dumps([{"Config": config_name, "RepoTags": [f"{name}:{tag}"], "Layers": ["layer.tar"]}]).encode()

with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as out:
    for arcname, data in (("manifest.json", manifest), (config_name, config), ("layer.tar", layer_bytes)):
        out.addfile(info(arcname, size=len(data), mode=0o644), io.BytesIO(data))
