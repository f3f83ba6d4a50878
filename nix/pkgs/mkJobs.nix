# Flake outputs for a folder of jobs: the manifest, per-job entrypoints and images, the queue-job app and checks.
# Nothing here is built until asked for: the manifest names each job's derivations without depending on them, so
# queueing one job builds that job only, for the one system it runs on.
{
  pkgs,
  helper,
}:
{
  # Folder with one sub-folder per job (jobs/<name>/default.nix).
  jobsDir,
  # More arguments offered to job files that are functions.
  extraArgs ? { },
  # nixpkgs for each Linux system images may be built for (x86_64-linux, aarch64-linux: the config's image.system
  # picks one). By default `pkgs` itself for its own system, and nixpkgs imported again from `pkgs.path` for the other.
  imagePkgs ? { },
  # The calling flake's `self`, or null. With it, the apps embed no manifest: the helper asks this flake, at run time,
  # for the manifest of just the jobs it queues (legacyPackages below), so no other job file is imported.
  flake ? null,
  # The config (compute-on-aws.yaml) the `jobs-valid` check reads jobs against: their queues declared, with a share
  # where the queue shares fairly, and compute that can hold them. By default the one at the root of `flake`, if any.
  config ?
    if flake != null && builtins.pathExists "${flake}/compute-on-aws.yaml" then
      "${flake}/compute-on-aws.yaml"
    else
      null,
}:
let
  inherit (builtins)
    attrNames
    concatLists
    attrValues
    filter
    listToAttrs
    mapAttrs
    toJSON
    ;
  jobLib = import ../lib;
  filterAttrs =
    pred: set:
    listToAttrs (
      map (name: {
        inherit name;
        value = set.${name};
      }) (filter (name: pred name set.${name}) (attrNames set))
    );
  prefixed =
    suffix: set:
    listToAttrs (
      map (name: {
        name = "${name}-${suffix}";
        value = set.${name};
      }) (attrNames set)
    );

  hostSystem = pkgs.stdenv.hostPlatform.system;
  imageSystems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  pkgsFor =
    system:
    if system == hostSystem then
      pkgs
    else
      imagePkgs.${system} or (import pkgs.path {
        inherit system;
        inherit (pkgs) overlays;
      });

  # This machine's images when it is a Linux system images are built for, else the first (x86_64-linux).
  defaultImageSystem = if builtins.elem hostSystem imageSystems then hostSystem else builtins.head imageSystems;
  manifestSystems = [ hostSystem ] ++ filter (s: s != hostSystem) imageSystems;

  # The jobs in `only` and the jobs they run after (null: every job), with their entrypoints and images on each system.
  # Job files are evaluated once per system, so that an entrypoint's `pkgs` is that system's.
  buildsFor =
    only:
    let
      evaluations = perSystem manifestSystems (
        system:
        jobLib.evalJobs {
          inherit jobsDir extraArgs only;
          pkgs = pkgsFor system;
        }
      );
      evaluated = evaluations.${hostSystem};
      entrypointsOn =
        system:
        let
          mkEntrypoint = import ./mkEntrypoint.nix { pkgs = pkgsFor system; };
        in
        mapAttrs (name: job: mkEntrypoint { inherit name; inherit (job) entrypoint; }) (
          filterAttrs (_: job: job.entrypoint != null) evaluations.${system}.jobs
        );
      entrypoints = perSystem manifestSystems entrypointsOn;
      imagesOn =
        system:
        let
          mkImage = import ./mkImage.nix {
            pkgs = pkgsFor system;
            hostPkgs = pkgs;
          };
        in
        mapAttrs (name: entrypoint: mkImage { inherit name entrypoint; }) (
          filterAttrs (name: _: evaluated.jobs.${name}.image == null) entrypoints.${system}
        );
    in
    {
      inherit evaluated entrypoints;
      images = perSystem imageSystems imagesOn;
    };
  perSystem = systems: f: listToAttrs (map (system: { name = system; value = f system; }) systems);

  every = buildsFor null;
  inherit (every) evaluated;
  errors = concatLists (attrValues evaluated.errors);
  entrypoints = every.entrypoints.${hostSystem};
  images = every.images.${defaultImageSystem};

  manifestOf =
    builds:
    jobLib.mkManifest {
      inherit (builds) evaluated entrypoints images;
      inherit hostSystem;
    };
  manifestData = manifestOf every;
  # manifestFor only: the manifest of the jobs in `only` and the jobs they run after (null: every job). A set that is
  # called like a function: it also lists the folder's job names (a directory listing, no job file imported), so that
  # the helper can tell a name that is no job from one left out, and suggest close ones, without changing the manifest.
  manifestFor = {
    __functor = _: only: if only == null then manifestData else manifestOf (buildsFor only);
    jobNames = attrNames (jobLib.discoverJobs jobsDir);
  };
  manifest = pkgs.writeText "compute-on-aws-manifest.json" (toJSON manifestData);

  # Where the helper finds this flake again at run time: the very sources the app was evaluated from (store paths,
  # locked by narHash), so that it needs no registry or network and sees the same jobs and the same nixpkgs.
  # Nix's `self` does not say which subfolder holds flake.nix, so the flake must be at the root of its source.
  lockedRef = source: "path:${source.outPath}" + (if source ? narHash then "?narHash=${source.narHash}" else "");
  shellQuoted = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] s + "'";
  flakeSpec = toJSON {
    ref = lockedRef flake;
    attr = "legacyPackages.${hostSystem}.computeOnAws.manifestFor";
    overrides = mapAttrs (_: lockedRef) (removeAttrs (flake.inputs or { }) [ "self" ]);
  };
  # How the wrappers name the jobs: the flake to ask at run time, or (without `flake`) every job's manifest embedded.
  helperCommand =
    if flake == null then
      "exec ${helper}/bin/compute-on-aws --manifest ${manifest}"
    else
      # An argument rather than an exported variable: jobs the helper starts (locally) do not inherit it.
      "exec ${helper}/bin/compute-on-aws --flake-manifest ${shellQuoted flakeSpec}";

  # The helper with this folder's jobs: `compute-on-aws jobs`, `render`, `queue`...
  cli = pkgs.writeShellApplication {
    name = "compute-on-aws";
    text = ''${helperCommand} "$@"'';
    meta.description = "compute-on-aws with this flake's jobs: jobs, queue, status, wait, logs, cancel, ...";
  };
  queueJob = pkgs.writeShellApplication {
    name = "queue-job";
    text = ''${helperCommand} queue "$@"'';
    meta.description = "Queues one of this flake's jobs: queue-job NAME [ARGS...] [--backend aws] [--wait]";
  };
  app = drv: {
    type = "app";
    program = "${drv}/bin/${drv.meta.mainProgram}";
    meta.description = drv.meta.description;
  };

  # Every declaration valid and, with a config, every job against its infrastructure: `compute-on-aws jobs`, which
  # prints each problem on a line and exits 2 on any (the config's top level: environments are not chosen here).
  validJobs = pkgs.runCommand "compute-on-aws-jobs-valid" { } ''
    ${helper}/bin/compute-on-aws --manifest ${manifest} ${
      if config == null then "" else "--config ${shellQuoted (toString config)}"
    } jobs >/dev/null
    touch $out
  '';

  # shellcheck of each script entrypoint, as a check of its own: nixpkgs' writeShellApplication has run it in the
  # build, in passthru.tests or not at all depending on the version, so it is not left to the pinned nixpkgs.
  shellchecks = mapAttrs (
    name: entrypoint:
    pkgs.runCommand "${name}-shellcheck" { nativeBuildInputs = [ pkgs.shellcheck ]; } ''
      shellcheck ${entrypoint}/bin/${name}
      touch $out
    ''
  ) (filterAttrs (name: _: evaluated.jobs.${name}.entrypoint.type or null != "derivation") entrypoints);
  # One job's entrypoint and image, evaluating that job and the jobs it runs after only (buildsFor), for the names
  # below: a job file Nix cannot evaluate stops only what builds it.
  jobNames = attrNames (jobLib.discoverJobs jobsDir);
  oneJob =
    name: what: pick:
    let
      builds = buildsFor [ name ];
      problems = builds.evaluated.errors.${name} or [ ];
    in
    if problems != [ ] then
      throw "compute-on-aws: ${builtins.concatStringsSep "; " problems}"
    else
      (pick builds).${name} or (throw "compute-on-aws: job ${name} has no ${what} to build (${
        if what == "entrypoint" then "it runs `command` in `image`" else "it names its own `image`"
      })");
  perJob = listToAttrs (
    concatLists (
      map (name: [
        {
          name = "${name}-entrypoint";
          value = oneJob name "entrypoint" (builds: builds.entrypoints.${hostSystem});
        }
        {
          name = "${name}-image";
          value = oneJob name "Nix-built image" (builds: builds.images.${defaultImageSystem});
        }
      ]) jobNames
    )
  );
in
{
  inherit
    manifest
    manifestData
    manifestFor
    entrypoints
    images
    errors
    ;
  # What the apps evaluate at run time when `flake` is given (computeOnAws.manifestFor), and each job's entrypoint
  # and image (`nix build .#<job>-image`): that flake mounts it as `legacyPackages.<system> = jobs.legacyPackages`.
  # Its names come from the folder listing alone, and `nix flake check` does not walk it: reaching one job evaluates
  # that job only. (Nix 2.19 and later look a `nix run .#NAME` up under packages and legacyPackages too, so neither
  # may need every job for its names.)
  legacyPackages = perJob // {
    computeOnAws = { inherit manifestFor; };
  };
  packages = {
    compute-on-aws = cli;
    queue-job = queueJob;
    default = cli;
  };
  apps = {
    queue-job = app queueJob;
    compute-on-aws = app cli;
    default = app cli;
  };
  checks = prefixed "entrypoint" entrypoints // prefixed "shellcheck" shellchecks // {
    jobs-valid = validJobs;
  };
}
