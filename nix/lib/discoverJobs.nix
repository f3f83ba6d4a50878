# Every sub-folder of jobsDir is a job named after the folder; its declaration is the folder's default.nix.
# A folder without default.nix is reported by evalJobs rather than skipped, so a typo in a file name is not silent.
jobsDir:
let
  entries = builtins.readDir jobsDir;
  folders = builtins.filter (name: entries.${name} == "directory") (builtins.attrNames entries);
in
builtins.listToAttrs (
  map (name: {
    inherit name;
    value = jobsDir + "/${name}/default.nix";
  }) folders
)
