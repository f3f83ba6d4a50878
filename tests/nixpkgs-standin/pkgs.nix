# TEST SCAFFOLDING, NOT NIXPKGS: see flake.nix; default.nix, in front of this file, checks the Nix as the pin does.
# Each function keeps the signature of the nixpkgs function it stands in for (no `...` where nixpkgs has none) and
# copies the behaviour compute-on-aws could notice, as of the nixpkgs revision this project's flake.lock pins:
# NixOS/nixpkgs 1cabc318c11299f07ca53e3cb719854682fe6eb3 ("the pin" below). It builds with the host's tools (/bin/sh,
# python3, binaries from /usr/bin) instead of nixpkgs' own.
{
  system,
  # nixpkgs takes overlays; the stand-in has nothing to overlay and ignores them.
  overlays ? [ ],
}:
let
  inherit (builtins)
    concatStringsSep
    toJSON
    fromJSON
    readFile
    pathExists
    ;
  path = "/usr/local/bin:/usr/bin:/bin";
  # The host's python3 and the site-packages holding the helper's dependencies (tests/conftest.py writes this file).
  host =
    if pathExists ./host.json then
      fromJSON (readFile ./host.json)
    else
      throw "nixpkgs stand-in: host.json is missing (tests/conftest.py writes it into a copy of this folder)";

  # A derivation built by a /bin/sh script (the host's: impure, tests only). As with stdenv, the build runs in a
  # temporary working folder, sees only what the derivation passes, and stops at the first failing command.
  sh =
    name: script: env:
    derivation (
      {
        inherit name system;
        builder = "/bin/sh";
        args = [
          "-ec"
          script
        ];
        PATH = path;
      }
      // env
    );

  # A package whose binaries are the host's own (/usr/bin/<bin>).
  hostPackage =
    name: bins:
    sh name ''
      mkdir -p $out/bin
      for b in ${concatStringsSep " " bins}; do ln -s "$(command -v $b)" $out/bin/$b; done
    '' { };

  binPath = inputs: concatStringsSep ":" (map (p: "${p}/bin") inputs);

  # pkgs/build-support/trivial-builders/default.nix, writeText (the pin): the text in a file named `name`.
  writeText = name: text: sh name ''printf '%s' "$text" > $out'' { inherit text; };

  # pkgs/build-support/trivial-builders/default.nix, runCommand (the pin): `env` becomes the derivation's attributes;
  # nativeBuildInputs' bin/ folders are on PATH (as stdenv puts them). No stdenv hooks.
  runCommand =
    name: env: script:
    sh name script (
      removeAttrs env [ "nativeBuildInputs" ]
      // {
        PATH = "${binPath (env.nativeBuildInputs or [ ])}:${path}";
      }
    );

  # pkgs/build-support/trivial-builders/default.nix, writeShellApplication (the pin): the script sets each of
  # bashOptions, prepends runtimeInputs to the inherited PATH, and its build runs `bash -n` then shellcheck (the
  # checkPhase), so a script shellcheck faults does not build. meta.mainProgram is the name. Arguments as the pin's,
  # without a catch-all. Not copied: runtimeEnv, excludeShellChecks, extraShellCheckFlags, derivationArgs (unused here).
  writeShellApplication =
    {
      name,
      text,
      runtimeInputs ? [ ],
      runtimeEnv ? null,
      meta ? { },
      passthru ? { },
      checkPhase ? null,
      excludeShellChecks ? [ ],
      extraShellCheckFlags ? [ ],
      bashOptions ? [
        "errexit"
        "nounset"
        "pipefail"
      ],
      inheritPath ? true,
      derivationArgs ? { },
    }:
    let
      script = ''
        #!/bin/bash
        ${concatStringsSep "\n" (map (o: "set -o ${o}") bashOptions)}
        ${
          if runtimeInputs == [ ] then
            ""
          else
            ''export PATH="${binPath runtimeInputs}${if inheritPath then ":$PATH" else ""}"''
        }
        ${text}
      '';
      drv = sh name ''
        mkdir -p $out/bin
        printf '%s' "$script" > $out/bin/${name}
        chmod +x $out/bin/${name}
        /bin/bash -n $out/bin/${name}
        ${if checkPhase == null then "shellcheck $out/bin/${name}" else checkPhase}
      '' { inherit script; };
    in
    drv
    // passthru
    // {
      meta = {
        mainProgram = name;
      }
      // meta;
    };

  # pkgs/build-support/docker/default.nix, streamLayeredImage (the pin): a script that writes a docker-archive to
  # stdout. As in the pin: contents' files linked at /; with no tag the tag is the hash of the configuration's store
  # path; the image has no /tmp (nor anything else) unless extraCommands make it, and their files, with their
  # modes, are the customisation layer, a tarball made at build time with its sha256 beside it; the store paths of
  # the closure are layered by the pin's default pipeline (image-layers.py: one layer per path, most depended-on
  # first, the rest in the last of maxLayers - 1); the stream writes each layer as `<sha256>/layer.tar`, then the
  # configuration and manifest.json (stream-image.py); the architecture is the image's system's (GOARCH), not the
  # machine's; passthru imageTag, imageName, conf. Not copied: fromImage, fakeRootCommands, includeStorePaths,
  # layeringPipeline, config keys other than Env.
  streamLayeredImage =
    {
      name,
      tag ? null,
      contents ? [ ],
      config ? { },
      extraCommands ? "",
      architecture ?
        {
          x86_64-linux = "amd64";
          aarch64-linux = "arm64";
        }
        .${system} or (throw "nixpkgs stand-in: streamLayeredImage: no GOARCH for ${system}"),
      created ? "1970-01-01T00:00:01Z",
      mtime ? created,
      uid ? 0,
      gid ? 0,
      uname ? "root",
      gname ? "root",
      maxLayers ? 100,
    }:
    let
      conf = writeText "${name}-conf.json" (toJSON {
        inherit name config architecture;
        contents = map toString contents;
      });
      imageTag =
        if tag != null then
          tag
        else
          builtins.head (builtins.split "-" (baseNameOf (builtins.unsafeDiscardStringContext conf.outPath)));
      customisationLayer = sh "${name}-customisation-layer" ''
        mkdir customisation && cd customisation
        for content in ${concatStringsSep " " (map toString contents)}; do
          (cd "$content" && find . -type f -o -type l) | while read -r f; do
            mkdir -p "$(dirname "$f")"; [ -e "$f" ] || ln -s "$content/''${f#./}" "$f"
          done
        done
        eval "$extraCommands"
        mkdir -p $out
        /usr/bin/python3 -c 'import os, sys, tarfile
        def reset(ti):
            ti.uid = ti.gid = 0; ti.uname = ti.gname = ""; ti.mtime = 1
            return ti
        with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(os.listdir(".")):
                tar.add(name, filter=reset)' $out/layer.tar
        sha256sum $out/layer.tar | cut -d " " -f 1 > $out/checksum
      '' { inherit extraCommands; };
      streamConf = sh "${name}-stream-conf.json" ''
        /usr/bin/python3 ${./image-layers.py} closure ${toString maxLayers} ${conf} > layers.json
        /usr/bin/python3 -c 'import json, sys; print(json.dumps({**json.loads(sys.argv[1]),
            "store_layers": json.load(open("layers.json")), "customisation_layer": sys.argv[2]}))' "$settings" ${customisationLayer} > $out
      '' {
        exportReferencesGraph = [ "closure" conf ];
        settings = toJSON {
          inherit architecture config created mtime uid gid uname gname;
          repo_tag = "${name}:${imageTag}";
        };
      };
      stream = sh "stream-${name}" ''
        printf '#!/bin/sh\nexec /usr/bin/python3 %s %s\n' ${./stream-image.py} ${streamConf} > $out
        chmod +x $out
      '' { };
    in
    stream
    // {
      inherit imageTag conf;
      imageName = name;
    };

  python3 = hostPackage "python3-host" [ ] // {
    pkgs = {
      inherit buildPythonApplication setuptools;
      boto3 = hostSitePackages;
      cronsim = hostSitePackages;
      jinja2 = hostSitePackages;
      pyyaml = hostSitePackages;
      rich = hostSitePackages;
      typer = hostSitePackages;
      tzdata = hostSitePackages;
    };
  };

  # The helper's dependencies: the host's site-packages (host.json), without compute-on-aws itself, so that the helper
  # can only be imported from its own wheel.
  hostSitePackages = sh "python3-dependencies-from-host" ''
    mkdir -p $out/site-packages
    for entry in ${host.sitePackages}/*; do
      case "$(basename "$entry")" in
        compute_on_aws*|__editable__*|__pycache__) ;;
        *) ln -s "$entry" $out/site-packages/ ;;
      esac
    done
  '' { entries = concatStringsSep " " (host.sitePackagesEntries or [ ]); };
  setuptools = hostSitePackages;

  # pkgs/development/interpreters/python/mk-python-derivation.nix with pyproject = true (the pin) and its hooks:
  # pypaBuildHook builds a wheel from the source (`--no-isolation --wheel`); pythonRuntimeDepsCheckHook refuses a wheel
  # whose Requires-Dist its dependencies do not satisfy; pypaInstallHook installs it into $out (`python -m installer
  # --prefix $out`); wrapPythonPrograms (wrap.sh, wrap-python.nix) turns each console script into a wrapper
  # (PYTHONNOUSERSITE=true, then makeWrapperArgs) around .<name>-wrapped, into which a preamble puts $out and the
  # dependencies on sys.path itself (site.addsitedir) and sets sys.argv[0] to the script's own path (readlink -f, taken
  # before the wrapper replaces it); pythonImportsCheck imports each module with $out on PYTHONPATH. Not copied: the
  # wrapper's PATH prefix of the dependencies' bin/ (the helper runs none of them). The interpreter is the host's
  # python3 (host.json) and all dependencies are one host folder.
  buildPythonApplication =
    {
      pname,
      version,
      src,
      pyproject ? null,
      build-system ? [ ],
      dependencies ? [ ],
      pythonImportsCheck ? [ ],
      makeWrapperArgs ? [ ],
      meta ? { },
    }:
    let
      python = host.python;
      deps = "${hostSitePackages}/site-packages";
      site = "lib/python${host.pythonVersion}/site-packages";
    in
    sh "${pname}-${version}" ''
      cp -r ${src} source && chmod -R u+w source && cd source
      export PYTHONPATH=${deps}
      ${python} -m build --no-isolation --outdir dist --wheel . > build.log 2>&1 || { cat build.log >&2; exit 1; }
      ${python} ${./runtime-deps-check.py} dist/*.whl
      ${python} ${./install-wheel.py} ${python} "$out" dist/*.whl
      for script in $out/bin/*; do
        name=$(basename "$script")
        preamble="import sys;import site;import functools;sys.argv[0] = '$script';functools.reduce(lambda k, p: site.addsitedir(p, k), ['$out/${site}', '${deps}'], site._init_pathinfo());"
        # Before the first line that is neither the shebang nor a comment, as nixpkgs' sed expression puts it.
        awk -v preamble="$preamble" 'NR > 1 && !done && /^[^# ]/ { print preamble; done = 1 } { print }' "$script" \
          > "$out/bin/.$name-wrapped"
        chmod +x "$out/bin/.$name-wrapped"
        printf '#!/bin/bash -e\nexport PYTHONNOUSERSITE=true\n%s\nexec -a "$0" "%s" "$@"\n' "$wrapperEnv" "$out/bin/.$name-wrapped" > "$script"
      done
      cd ..
      for module in ${concatStringsSep " " pythonImportsCheck}; do
        PYTHONPATH="$out/${site}:${deps}" ${python} -c "import $module" || { echo "pythonImportsCheck: $module" >&2; exit 1; }
      done
    '' { wrapperEnv = wrapperEnv makeWrapperArgs; }
    // {
      inherit meta pname version;
    };

  # pkgs/build-support/setup-hooks/make-wrapper.sh (the pin), only the `--prefix VAR SEP VALUE` form.
  wrapperEnv =
    args:
    if args == [ ] then
      ""
    else if builtins.head args == "--prefix" && builtins.length args >= 4 then
      let
        var = builtins.elemAt args 1;
        sep = builtins.elemAt args 2;
        value = builtins.elemAt args 3;
      in
      "export ${var}='${value}'\${${var}:+'${sep}'\$${var}}\n"
      + wrapperEnv (builtins.genList (i: builtins.elemAt args (i + 4)) (builtins.length args - 4))
    else
      throw "nixpkgs stand-in: makeWrapperArgs: only --prefix VAR SEP VALUE is copied, got ${builtins.head args}";

  # pkgs/by-name/sk/skopeo/package.nix (the pin): the binary's policy is /etc/containers/policy.json unless --policy is
  # given, and the package puts none there; where the file is absent (macOS, NixOS, most Linux machines), every copy
  # fails. This host's skopeo, refusing a copy without --policy with skopeo's own message, as on those machines.
  skopeo = sh "skopeo" ''
    mkdir -p $out/bin
    cat > $out/bin/skopeo <<'SCRIPT'
    #!/bin/sh
    policy=
    for arg in "$@"; do
      case "$arg" in
        --policy|--policy=*) policy=1 ;;
        --insecure-policy) policy=1 ;;
        copy|sync) break ;;
      esac
    done
    for arg in "$@"; do
      case "$arg" in
        copy|sync)
          if [ -z "$policy" ]; then
            echo 'time="1970-01-01T00:00:00Z" level=fatal msg="Error loading trust policy: open /etc/containers/policy.json: no such file or directory"' >&2
            exit 1
          fi ;;
      esac
    done
    exec /usr/bin/skopeo "$@"
    SCRIPT
    chmod +x $out/bin/skopeo
  '' { };

  # The host's binaries under nixpkgs' package names.
  shellcheck = hostPackage "shellcheck" [ "shellcheck" ];
  cacert = sh "cacert" ''
    mkdir -p $out/etc/ssl/certs
    cp /etc/ssl/certs/ca-certificates.crt $out/etc/ssl/certs/ca-bundle.crt
  '' { };
  coreutils = hostPackage "coreutils" [
    "date"
    "cat"
    "mkdir"
    "mktemp"
    "rm"
    "sleep"
    "wc"
  ];
  curl = hostPackage "curl" [ "curl" ];
  jq = hostPackage "jq" [ "jq" ];
in
{
  inherit
    writeText
    runCommand
    writeShellApplication
    python3
    skopeo
    shellcheck
    cacert
    coreutils
    curl
    jq
    overlays
    ;
  # Where `import pkgs.path { system; }` finds this stand-in again (nixpkgs: its own source).
  path = ./.;
  stdenv.hostPlatform.system = system;
  dockerTools = {
    inherit streamLayeredImage;
  };
}
