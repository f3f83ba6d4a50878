# The manifest handed to the helper: plain JSON-able data only (strings, numbers, lists, sets), versioned.
#
# Store paths of entrypoints and images appear without their build dependency: the manifest can be written without
# building any job, and the helper builds only the job it queues (from the recorded .drv, which the manifest keeps alive).
{
  # evalJobs' result.
  evaluated,
  # { <system> = { <job> = derivation; }; } for jobs with an entrypoint, when evaluated with nixpkgs: the machine's own
  # system (the local backend runs them) and each system images are built for.
  entrypoints ? { },
  # { <system> = { <job> = image derivation with imageTag; }; } for jobs whose image Nix builds.
  images ? { },
  # The system the manifest was evaluated for (the machine that queues); null without nixpkgs.
  hostSystem ? null,
}:
let
  inherit (builtins)
    mapAttrs
    unsafeDiscardStringContext
    unsafeDiscardOutputDependency
    filter
    attrNames
    listToAttrs
    ;

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
      {
        kind = "entrypoint";
        builds = buildsOf entrypoints name (built: {
          command = [ (programOf built) ];
          drv = drvOf built;
        });
      };

  # { <system> = f drv; } for the systems that built this job.
  buildsOf =
    perSystem: name: f:
    listToAttrs (
      map (system: {
        name = system;
        value = f perSystem.${system}.${name};
      }) (filter (system: perSystem.${system} ? ${name}) (attrNames perSystem))
    );

  image =
    name: job:
    if job.image != null then
      {
        kind = "reference";
        reference = job.image;
      }
    else
      {
        kind = "nix";
        inherit name;
        builds = buildsOf images name (built: {
          tag = unsafeDiscardStringContext built.imageTag;
          drv = drvOf built;
        });
      };

  inherit (import ./declaration.nix) schedulesOf;

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
      "schedule"
    ]
    // {
      program = program name job;
      image = image name job;
      retryRules = map retryRule job.retryRules;
      schedules = schedulesOf job.schedule;
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
  version = 5;
  inherit hostSystem;
  jobs = mapAttrs manifestJob evaluated.jobs;
  inherit (evaluated) errors;
}
