# The manifest handed to the helper: plain JSON-able data only (strings, numbers, lists, sets), versioned.
#
# Store paths of entrypoints and images appear without their build dependency: the manifest can be written without
# building any job, and the helper builds only the job it queues (from the recorded .drv, which the manifest keeps alive).
{
  # evalJobs' result.
  evaluated,
  # { <job> = derivation; } for jobs with an entrypoint, when evaluated with nixpkgs.
  entrypoints ? { },
  # { <job> = image derivation with imageName and imageTag; } for jobs whose image Nix builds.
  images ? { },
}:
let
  inherit (builtins) mapAttrs unsafeDiscardStringContext unsafeDiscardOutputDependency;

  drvOf = drv: unsafeDiscardOutputDependency drv.drvPath;
  pathOf = drv: unsafeDiscardStringContext drv.outPath;

  # The executable of an entrypoint: bin/<mainProgram> (writeShellApplication sets it to its name), as lib.getExe does.
  programOf =
    drv: "${pathOf drv}/bin/${drv.meta.mainProgram or drv.pname or (builtins.parseDrvName drv.name).name}";

  program =
    name: job:
    if job.command != null then
      {
        kind = "command";
        inherit (job) command;
      }
    else
      let
        built = entrypoints.${name} or null;
      in
      {
        kind = "entrypoint";
        command = if built == null then null else [ (programOf built) ];
        drv = if built == null then null else drvOf built;
      };

  image =
    name: job:
    if job.image != null then
      {
        kind = "reference";
        reference = job.image;
      }
    else
      let
        built = images.${name} or null;
      in
      {
        kind = "nix";
        inherit name;
        tag = if built == null then null else unsafeDiscardStringContext built.imageTag;
        drv = if built == null then null else drvOf built;
      };

  retryRule =
    r:
    removeAttrs r [ "action" ]
    // {
      action = if r.action == "retry" || r.action == "RETRY" then "RETRY" else "EXIT";
    };

  manifestJob =
    name: job:
    removeAttrs job [
      "entrypoint"
      "command"
      "image"
      "retryRules"
    ]
    // {
      program = program name job;
      image = image name job;
      retryRules = map retryRule job.retryRules;
      after = map (
        d:
        if builtins.isString d then
          {
            job = d;
            type = null;
          }
        else
          {
            inherit (d) job;
            type = d.type or null;
          }
      ) job.after;
    };
in
{
  version = 2;
  jobs = mapAttrs manifestJob evaluated.jobs;
  inherit (evaluated) errors;
}
