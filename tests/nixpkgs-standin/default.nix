# TEST SCAFFOLDING, NOT NIXPKGS: see flake.nix. Each function keeps the nixpkgs signature it stands in for and builds
# with the host's tools (/bin/sh, /usr/bin/python3, binaries from /usr/bin).
{ system }:
let
  inherit (builtins) concatStringsSep toJSON toFile;
  path = "/usr/local/bin:/usr/bin:/bin";

  # A derivation built by a /bin/sh script (the host's: impure, tests only).
  sh =
    name: script: env:
    derivation (
      {
        inherit name system;
        builder = "/bin/sh";
        args = [
          "-c"
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

  writeText = name: text: sh name ''printf '%s' "$text" > $out'' { inherit text; };

  runCommand =
    name: env: script:
    sh name script env;

  writeShellApplication =
    {
      name,
      text,
      runtimeInputs ? [ ],
      meta ? { },
      ...
    }:
    let
      script = ''
        #!/bin/bash
        set -o errexit
        set -o nounset
        set -o pipefail
        ${if runtimeInputs == [ ] then "" else ''export PATH="${binPath runtimeInputs}:$PATH"''}
        ${text}
      '';
      drv = sh name ''
        mkdir -p $out/bin
        printf '%s' "$script" > $out/bin/${name}
        chmod +x $out/bin/${name}
        /bin/bash -n $out/bin/${name}
        shellcheck $out/bin/${name}  # as nixpkgs does: a script that shellcheck faults does not build
      '' { inherit script; };
    in
    drv
    // {
      meta = meta // {
        mainProgram = name;
      };
    };

  streamLayeredImage =
    {
      name,
      tag ? null,
      contents ? [ ],
      config ? { },
      ...
    }:
    let
      # Like nixpkgs: the configuration is its own derivation, and with no tag the tag is its output hash.
      conf = writeText "${name}-conf.json" (toJSON {
        inherit name config;
        contents = map toString contents;
      });
      imageTag =
        if tag != null then
          tag
        else
          builtins.head (builtins.split "-" (baseNameOf (builtins.unsafeDiscardStringContext conf.outPath)));
      stream = sh "stream-${name}" ''
        paths=$(/usr/bin/python3 -c 'import sys; lines = open(sys.argv[1]).read().split("\n"); i = 0; out = []
        while i < len(lines) and lines[i]:
            out.append(lines[i]); n = int(lines[i + 2]); i += 3 + n
        print(" ".join(sorted(out)))' closure)
        printf '#!/bin/sh\nexec /usr/bin/python3 %s %s %s %s %s\n' ${./stream-image.py} ${conf} '${name}' '${imageTag}' "$paths" > $out
        chmod +x $out
      '' { exportReferencesGraph = [ "closure" conf ]; };
    in
    stream
    // {
      inherit imageTag conf;
      imageName = name;
    };

  # The helper runs on the host's python3 (the test virtualenv, which has boto3, typer, jinja2 and pyyaml).
  buildPythonApplication =
    {
      pname,
      src,
      makeWrapperArgs ? [ ],
      meta ? { },
      ...
    }:
    let
      prefixPath = if makeWrapperArgs == [ ] then "" else builtins.elemAt makeWrapperArgs 3;
      wrapper = ''
        #!/bin/sh
        export PYTHONPATH="@out@/lib/${pname}''${PYTHONPATH:+:$PYTHONPATH}"
        export PATH="${prefixPath}:$PATH"
        exec python3 -m compute_on_aws "$@"
      '';
    in
    sh pname ''
      mkdir -p $out/bin $out/lib/${pname}
      cp -rL ${src}/compute_on_aws $out/lib/${pname}/
      printf '%s' "$wrapper" | sed "s|@out@|$out|" > $out/bin/${pname}
      chmod +x $out/bin/${pname}
    '' { inherit wrapper; }
    // {
      meta = meta;
    };

  pythonDependency = name: sh "python3-${name}-from-host" "mkdir $out" { };
in
{
  inherit
    writeText
    runCommand
    writeShellApplication
    ;
  dockerTools = {
    inherit streamLayeredImage;
  };
  python3.pkgs = {
    inherit buildPythonApplication;
    setuptools = pythonDependency "setuptools";
    boto3 = pythonDependency "boto3";
    jinja2 = pythonDependency "jinja2";
    pyyaml = pythonDependency "pyyaml";
    typer = pythonDependency "typer";
  };
  skopeo = hostPackage "skopeo" [ "skopeo" ];
  cacert = sh "cacert" ''
    mkdir -p $out/etc/ssl/certs
    cp /etc/ssl/certs/ca-certificates.crt $out/etc/ssl/certs/ca-bundle.crt
  '' { };
  coreutils = hostPackage "coreutils" [ "date" "cat" "mkdir" "mktemp" "rm" "sleep" "wc" ];
  curl = hostPackage "curl" [ "curl" ];
  jq = hostPackage "jq" [ "jq" ];
}
