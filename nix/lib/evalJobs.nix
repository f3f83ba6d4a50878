# Loads and validates the jobs under jobsDir (every one, or those named in `only` and the jobs they run after). Problems
# are returned as data, one string each ("<job>: <attribute>: <what is wrong>"), so that every invalid declaration is
# reported at once.
{
  # Folder holding one sub-folder per job (jobs/<name>/default.nix).
  jobsDir,
  # nixpkgs, for declarations that use it. null evaluates without nixpkgs: a declaration may still refer to pkgs, as long
  # as only its entrypoint does (the entrypoint is then resolved later, when it is built).
  pkgs ? null,
  # More arguments offered to job files that are functions (they receive the ones they name, like callPackage).
  extraArgs ? { },
  # null evaluates every job. A list of job names evaluates those and, transitively, the jobs named in their `after`
  # (edges of valid jobs only, as for cycles): no other job file is imported, so a syntax error or an undefined
  # variable there (which tryEval cannot catch) does not stop these jobs. Names that are no folder are left out.
  only ? null,
}:
let
  inherit (builtins)
    attrNames
    concatMap
    deepSeq
    elem
    filter
    functionArgs
    intersectAttrs
    isAttrs
    isFunction
    isInt
    isList
    listToAttrs
    mapAttrs
    pathExists
    toJSON
    tryEval
    ;
  declaration = import ./declaration.nix;
  inherit (declaration) attributes when show;

  pure = pkgs == null;

  fargateMemory =
    let
      steps = lo: hi: step: builtins.genList (i: lo + i * step) ((hi - lo) / step + 1);
    in
    [
      {
        vcpus = 0.25;
        memory = [ 512 1024 2048 ];
      }
      {
        vcpus = 0.5;
        memory = steps 1024 4096 1024;
      }
      {
        vcpus = 1;
        memory = steps 2048 8192 1024;
      }
      {
        vcpus = 2;
        memory = steps 4096 16384 1024;
      }
      {
        vcpus = 4;
        memory = steps 8192 30720 1024;
      }
      {
        vcpus = 8;
        memory = steps 16384 61440 4096;
      }
      {
        vcpus = 16;
        memory = steps 32768 122880 8192;
      }
    ];

  # "did you mean" for misspelled attributes: same letters ignoring case, or one a prefix of the other.
  lower = s: builtins.replaceStrings (upper) (lowerCase) s;
  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lowerCase = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  isPrefix = a: b: builtins.substring 0 (builtins.stringLength a) b == a;
  suggest =
    k:
    let
      lk = lower k;
      close = filter (
        a:
        let
          la = lower a;
        in
        la == lk || (builtins.stringLength lk >= 3 && (isPrefix lk la || isPrefix la lk))
      ) (attrNames attributes);
    in
    if close == [ ] then "" else " (did you mean ${builtins.head close}?)";

  load =
    name: file:
    import ./loadJob.nix {
      inherit name file extraArgs;
      pkgs = if pure then null else pkgs;
    };

  # What a job file that throws at its top level is reported as (the helper then asks Nix for the message).
  failedToLoad = "could not be evaluated";

  # Forces a value, turning a failure (a throw, e.g. nixpkgs used without nixpkgs) into a problem instead of an abort.
  forced =
    attr: v:
    let
      r = tryEval (deepSeq v v);
    in
    if r.success then
      { ok = true; }
    else
      {
        ok = false;
        problems = [
          (
            if pure then
              "could not be evaluated without nixpkgs (only entrypoint may use pkgs)"
            else
              "could not be evaluated (run `nix eval` on the job file to see why)"
          )
        ];
      };

  # Whether a value is set (not null), without failing on one that needs the nixpkgs this evaluation lacks.
  declared =
    v:
    let
      r = tryEval (v != null);
    in
    if r.success then r.value else true;

  # The entrypoint may be built from nixpkgs: without nixpkgs only its shape is checked, lazily.
  entrypointProblems =
    v:
    let
      shape = tryEval (isAttrs v);
    in
    if !shape.success then
      (if pure then [ ] else [ "could not be evaluated (run `nix eval` on the job file to see why)" ])
    else if pure && isAttrs v && !(declaration.isDerivation v) then
      let
        keys = filter (k: !elem k [ "text" "runtimeInputs" ]) (attrNames v);
        text = tryEval (builtins.isString (v.text or ""));
      in
      map (k: "unknown attribute ${k} (expected text, runtimeInputs)") keys
      ++ when (!(v ? text)) [ "text is required" ]
      ++ when (text.success && !text.value) [ "text: must be a string" ]
      ++ when (v ? runtimeInputs && !((tryEval (isList v.runtimeInputs)).value or true)) [
        "runtimeInputs: must be a list of packages"
      ]
    else
      attributes.entrypoint.check v;

  attributeProblems =
    decl: attr:
    let
      v = decl.${attr};
    in
    if attr == "entrypoint" then
      (if declared v then entrypointProblems v else [ ])
    else
      let
        f = forced attr v;
      in
      if !f.ok then
        f.problems
      else if v == null && attributes.${attr}.default == null then
        [ ]
      else
        attributes.${attr}.check v;

  # Problems that involve more than one attribute; only asked once each attribute is valid on its own.
  crossProblems =
    job:
    let
      hasEntrypoint = declared job.entrypoint;
      hasCommand = job.command != null;
      allNames = job.environment ++ attrNames job.env ++ attrNames job.secrets;
      twice = filter (n: builtins.length (filter (m: m == n) allNames) > 1) allNames;
      credentials = filter (
        n: declaration.looksLikeCredential n && !elem n job.plaintextCredentials
      ) job.environment;
      fargate = job.platform == "FARGATE";
      size = builtins.head (filter (s: s.vcpus == job.vcpus) fargateMemory ++ [ null ]);
    in
    when (!hasEntrypoint && !hasCommand) [
      "program: declare either entrypoint (a script or package built by Nix) or command (a list, run in image)"
    ]
    ++ when (hasEntrypoint && hasCommand) [
      "program: declare entrypoint or command, not both"
    ]
    ++ when (job.sequential && job.parallel < 2) [
      "sequential: runs the children of an array one at a time, and this job is no array (parallel = ${toString job.parallel})"
    ]
    ++ when (hasCommand && job.image == null) [
      "image: required with command (the image that holds the program); or declare an entrypoint to have Nix build one"
    ]
    ++ map (n: "plaintextCredentials: ${show n} is not in environment") (
      filter (n: !elem n job.environment) job.plaintextCredentials
    )
    ++ map (
      n:
      "environment: ${show n} looks like a credential and would travel in plain text; declare it under secrets "
      + "(secrets.${n} = \"arn:aws:secretsmanager:...\") or, if it is not secret, list it in plaintextCredentials"
    ) credentials
    ++ when (twice != [ ]) [
      "environment: ${show (builtins.head twice)} is declared more than once across environment, env and secrets"
    ]
    ++ containerProblems job
    ++ (
      if fargate then
        when (job.gpus != 0) [ "gpus: Fargate has no GPUs; use platform = \"EC2\"" ]
        ++ (
          if size == null then
            [ "vcpus: Fargate takes 0.25, 0.5, 1, 2, 4, 8 or 16, got ${toJSON job.vcpus}" ]
          else
            when (!elem job.memory size.memory) [
              "memory: Fargate with ${toJSON job.vcpus} vCPU takes one of ${builtins.concatStringsSep ", " (map toString size.memory)} MiB, got ${toJSON job.memory}"
            ]
        )
      else
        when (!isInt job.vcpus && job.vcpus != builtins.floor job.vcpus) [
          "vcpus: must be a whole number on EC2 (fractions are for Fargate), got ${toJSON job.vcpus}"
        ]
    );

  # The tags compute-on-aws itself gives each run (compute-on-aws:job, :args, :slot, :commit).
  runTagsOwn = 4;

  # Container settings one platform has and the other lacks, and settings that need another.
  containerProblems =
    job:
    let
      fargate = job.platform == "FARGATE";
      onlyEc2 = attr: "${attr}: Fargate has no ${attr}; use platform = \"EC2\" or remove it";
      onlyFargate = attr: what: "${attr}: ${what} is Fargate's; EC2 jobs use the instance's, set by its launch template";
      hostPaths = filter (v: (job.volumes.${v}.hostPath or null) != null) (attrNames job.volumes);
      efsVolumes = filter (v: (job.volumes.${v}.efs or null) != null) (attrNames job.volumes);
      version = builtins.match "([0-9]+)\\.([0-9]+)\\..*" (if job.platformVersion == null then "" else job.platformVersion);
      numberAt = i: builtins.fromJSON (builtins.elemAt version i);
      beforeEfs = version != null && (numberAt 0 < 1 || (numberAt 0 == 1 && numberAt 1 < 4));
      tagCount = builtins.length (attrNames job.runTags) + runTagsOwn
        + (if job.propagateTags then builtins.length (attrNames job.tags) else 0);
    in
    (
      if fargate then
        map (v: "volumes: ${v}: hostPath: Fargate has no host folders; mount EFS (efs = { fileSystemId = ...; }) or use platform = \"EC2\"") hostPaths
        ++ when (job.sharedMemorySize != null) [ (onlyEc2 "sharedMemorySize") ]
        ++ when (job.tmpfs != { }) [ (onlyEc2 "tmpfs") ]
        ++ when (job.maxSwap != null) [ (onlyEc2 "maxSwap") ]
        ++ when (job.swappiness != null) [ (onlyEc2 "swappiness") ]
        ++ when (efsVolumes != [ ] && beforeEfs) [
          "platformVersion: EFS volumes need Fargate 1.4.0 or later, got ${show job.platformVersion}"
        ]
      else
        when (job.ephemeralStorage != null) [ (onlyFargate "ephemeralStorage" "the task's disk size") ]
        ++ when (job.platformVersion != null) [ (onlyFargate "platformVersion" "the platform version") ]
        ++ when (job.swappiness != null && job.maxSwap == null) [
          "swappiness: needs maxSwap (the swap the container may use)"
        ]
    )
    ++ when (tagCount > 50) [
      ("runTags: each run would carry ${toString tagCount} tags (${toString (builtins.length (attrNames job.runTags))} runTags, "
      + "${toString runTagsOwn} of compute-on-aws${if job.propagateTags then ", and the definition's tags, as propagateTags is on" else ""}); AWS allows 50")
    ];

  evalJob =
    name: file:
    let
      nameProblems = when (builtins.match declaration.namePattern name == null) [
        "${name}: the folder name must be 1-128 letters, digits, - or _, starting with a letter or digit"
      ];
      decl = load name file;
      # A file that throws at its top level is a problem of its own job, not an abort of every job's evaluation.
      loads = pathExists file && (tryEval (builtins.seq decl true)).success;
      unknown = filter (k: !(attributes ? ${k})) (attrNames decl);
      job = mapAttrs (k: a: decl.${k} or a.default) attributes // {
        inherit name;
      };
      ownProblems = concatMap (
        attr: map (p: "${name}: ${attr}: ${p}") (attributeProblems job attr)
      ) (attrNames attributes);
      problems =
        if !pathExists file then
          [ "${name}: default.nix: missing (every folder under the jobs folder is a job and needs one)" ]
        else if !loads then
          [ "${name}: default.nix: ${failedToLoad}" ]
        else if !(isAttrs decl) || declaration.isDerivation decl then
          [ "${name}: must be an attribute set, or a function ({ pkgs, ... }: { ... }) returning one; got ${show decl}" ]
        else
          nameProblems
          ++ map (
            k:
            if declaration.makesAttributes ? ${k} then
              "${name}: ${k}: ${declaration.makesAttributes.${k} name}"
            else
              "${name}: ${k}: unknown attribute${suggest k}"
          ) unknown
          ++ ownProblems
          ++ (if ownProblems == [ ] then map (p: "${name}: ${p}") (crossProblems job) else [ ]);
    in
    {
      inherit name problems;
      job = job // {
        definitionName = if job.definitionName == null then name else job.definitionName;
      };
    };

  discovered = import ./discoverJobs.nix jobsDir;
  alone = mapAttrs evalJob discovered;

  # `after` across jobs: every name is a job here, and following it never leads back. Jobs whose own attributes are
  # invalid add no edges (their problems are reported already).
  namesIn = map declaration.dependencyName;
  afterOf = name: if alone.${name}.problems == [ ] then namesIn alone.${name}.job.after else [ ];
  # The given jobs and every job they run after, directly or not: only the jobs on the way are evaluated.
  closure =
    starts:
    map (x: x.key) (
      builtins.genericClosure {
        startSet = map (d: { key = d; }) starts;
        operator = x: map (d: { key = d; }) (filter (d: discovered ? ${d}) (afterOf x.key));
      }
    );
  runsAfter = start: closure [ start ];
  graphProblems =
    name: e:
    let
      after = namesIn e.job.after;
      # N_TO_N pairs child i with child i: both must be arrays of one size (sizes of valid jobs only).
      perIndex = filter (d: builtins.isAttrs d && d ? type) e.job.after;
      sizeOf = d: if alone ? ${d} && alone.${d}.problems == [ ] then alone.${d}.job.parallel else null;
      unpaired = filter (
        d:
        let
          size = sizeOf d.job;
        in
        size != null && (size < 2 || size != e.job.parallel)
      ) perIndex;
    in
    map (d: "${name}: after: no job named ${show d} in the jobs folder") (filter (d: !(discovered ? ${d})) after)
    ++ when (elem name after) [ "${name}: after: a job cannot run after itself" ]
    ++ map (d: "${name}: after: ${d} runs (directly or not) after ${name}, a cycle") (
      filter (d: d != name && discovered ? ${d} && elem name (runsAfter d)) after
    )
    ++ map (
      d:
      "${name}: after: ${d.job}: N_TO_N pairs array children, so both jobs need the same parallel (2 or more); "
      + "this one has ${toString e.job.parallel}, ${d.job} has ${toString (sizeOf d.job)}"
    ) unpaired;

  # Built from the selected names only: anything that walked all of `alone` would import every job file.
  selected =
    if only == null then attrNames discovered else closure (filter (d: discovered ? ${d}) only);
  evaluated = map (
    name:
    let
      e = alone.${name};
    in
    if e.problems != [ ] then e else e // { problems = graphProblems name e; }
  ) selected;
in
{
  jobs = listToAttrs (
    map (e: {
      inherit (e) name;
      value = e.job;
    }) (filter (e: e.problems == [ ]) evaluated)
  );
  # { <job> = [ "<job>: <attribute>: <problem>" ]; } for every invalid job.
  errors = listToAttrs (
    map (e: {
      inherit (e) name;
      value = e.problems;
    }) (filter (e: e.problems != [ ]) evaluated)
  );
}
