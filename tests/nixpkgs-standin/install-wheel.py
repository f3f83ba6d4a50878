# TEST SCAFFOLDING (see flake.nix), standing in for nixpkgs' pypaInstallHook (`python -m installer --prefix $out`
# at the pin): installs a wheel under PREFIX in the plain posix layout nixpkgs' python has (bin/,
# lib/pythonX.Y/site-packages), with console scripts run by the given interpreter. The installer package's API is
# used because the host's python may default to a distribution's own layout (Debian: local/.../dist-packages).
import sys
import sysconfig

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

interpreter, prefix, wheel = sys.argv[1:]
paths = sysconfig.get_paths("posix_prefix", vars={"base": prefix, "platbase": prefix, "installed_base": prefix})
scheme = {key: paths[key] for key in ("purelib", "platlib", "scripts", "data")} | {"headers": paths["include"]}
with WheelFile.open(wheel) as source:
    install(source, SchemeDictionaryDestination(scheme, interpreter=interpreter, script_kind="posix"), {})
