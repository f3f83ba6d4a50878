# TEST SCAFFOLDING (see flake.nix), standing in for nixpkgs' pythonRuntimeDepsCheckHook
# (pkgs/development/interpreters/python/hooks/python-runtime-deps-check-hook.py at the pin): a wheel whose
# Requires-Dist the installed dependencies do not satisfy fails the build, naming the requirement and the version found.
import importlib.metadata
import sys
import zipfile
from email.parser import Parser

from packaging.requirements import Requirement

(wheel,) = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive:
    (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = Parser().parsestr(archive.read(name).decode())
errors = []
for line in metadata.get_all("Requires-Dist") or []:
    requirement = Requirement(line)
    if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
        continue
    try:
        version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        errors.append(f"  - {requirement.name} not installed")
        continue
    if not requirement.specifier.contains(version, prereleases=True):
        errors.append(f"  - {requirement.name}{requirement.specifier} not satisfied by version {version}")
if errors:
    print(f"Checking runtime dependencies for {wheel.rsplit('/', 1)[-1]}", *errors, sep="\n", file=sys.stderr)
    sys.exit(1)
