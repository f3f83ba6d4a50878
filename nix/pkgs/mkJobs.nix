# Flake outputs for a folder of jobs: the manifest, per-job entrypoints and images, the queue-job app and checks.
# Nothing here is built until asked for: the manifest names each job's derivations without depending on them, so
# queueing one job builds that job only.
{
  pkgs,
  helper,
  mkEntrypoint,
  mkImage,
}:
{
  # Folder with one sub-folder per job (jobs/<name>/default.nix).
  jobsDir,
  # More arguments offered to job files that are functions.
  extraArgs ? { },
}:
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
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

  evaluated = jobLib.evalJobs { inherit jobsDir pkgs extraArgs; };
  errors = concatLists (attrValues evaluated.errors);

  entrypoints = mapAttrs (name: job: mkEntrypoint { inherit name; inherit (job) entrypoint; }) (
    filterAttrs (_: job: job.entrypoint != null) evaluated.jobs
  );
  images = mapAttrs (name: entrypoint: mkImage { inherit name entrypoint; }) (
    filterAttrs (name: _: evaluated.jobs.${name}.image == null) entrypoints
  );

  manifest = pkgs.writeText "compute-on-aws-manifest.json" (
    toJSON (jobLib.mkManifest { inherit evaluated entrypoints images; })
  );

  # The helper with this folder's manifest: `compute-on-aws jobs`, `render`, `queue`...
  cli = pkgs.writeShellApplication {
    name = "compute-on-aws";
    text = ''exec ${helper}/bin/compute-on-aws --manifest ${manifest} "$@"'';
  };
  queueJob = pkgs.writeShellApplication {
    name = "queue-job";
    text = ''exec ${helper}/bin/compute-on-aws --manifest ${manifest} queue "$@"'';
  };
  app = drv: name: {
    type = "app";
    program = "${drv}/bin/${name}";
  };

  validJobs = pkgs.runCommand "compute-on-aws-jobs-valid" { } (
    if errors == [ ] then
      "touch $out"
    else
      ''
        cat >&2 <<'ERRORS'
        ${concatStringsSep "\n" errors}
        ERRORS
        exit 1
      ''
  );
in
{
  inherit
    manifest
    entrypoints
    images
    errors
    ;
  packages = prefixed "entrypoint" entrypoints // prefixed "image" images // {
    compute-on-aws = cli;
    queue-job = queueJob;
    default = cli;
  };
  apps = {
    queue-job = app queueJob "queue-job";
    compute-on-aws = app cli "compute-on-aws";
    default = app cli "compute-on-aws";
  };
  checks = prefixed "entrypoint" entrypoints // {
    jobs-valid = validJobs;
  };
}
