# TEST SCAFFOLDING (see flake.nix): the store layers of an image, standing in for the pin's default layering pipeline
# of streamLayeredImage (popularity-contest-layering-pipeline.nix: [["popularity_contest"], ["limit_layers", N]], run
# by flattenReferencesGraph). As at the pin:
# - a path's popularity counts the ways the closure's roots reach it (each root counts 1, a path reached along k
#   routes counts k more for each route's depth); most popular first, ties by name without the hash;
# - one layer per path; past `maxLayers - 1` layers (one is the customisation layer's) the rest share the last.
# Reads a closure as exportReferencesGraph writes it (path, deriver, count, references), takes the given paths out of
# the graph first (the image's configuration, as the pin's excludePaths), prints the layers as JSON.
import functools
import json
import sys

closure_file, max_layers, *excluded = sys.argv[1:]
with open(closure_file) as f:
    lines = f.read().split("\n")
references: dict[str, list[str]] = {}
i = 0
while i < len(lines) and lines[i]:
    count = int(lines[i + 2])
    if lines[i] not in excluded:
        references[lines[i]] = [r for r in lines[i + 3 : i + 3 + count] if r not in (lines[i], *excluded)]
    i += 3 + count

roots = sorted(p for p in references if not any(p in refs for q, refs in references.items() if q != p))


@functools.cache
def contest(path: str) -> dict[str, int]:
    """Popularity of everything below `path`, as the pin counts it for a subtree."""
    counts: dict[str, int] = {}
    for ref in references[path]:
        counts[ref] = counts.get(ref, 0) + 1
        for below, n in contest(ref).items():
            counts[below] = counts.get(below, 0) + n + 1
    return counts


popularity: dict[str, int] = {}
for root in roots:
    popularity[root] = popularity.get(root, 0) + 1
    for below, n in contest(root).items():
        popularity[below] = popularity.get(below, 0) + n + 1


def package_name(path: str) -> str:
    start, *rest = path.split("-")
    return "-".join([*rest, start])


ordered = sorted(popularity, key=lambda p: (-popularity[p], package_name(p)))
limit = int(max_layers) - 1
layers = [[p] for p in ordered[: limit - 1]] + ([ordered[limit - 1 :]] if len(ordered) >= limit else [])
print(json.dumps(layers))
