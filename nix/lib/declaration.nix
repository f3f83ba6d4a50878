# The attributes of a job declaration: each with its default and a check returning a list of problems (empty when valid).
# Limits are AWS Batch's (RegisterJobDefinition, SubmitJob, EvaluateOnExit, tag restrictions, Fargate task sizes).
let
  inherit (builtins)
    all
    any
    attrNames
    concatMap
    elem
    filter
    genList
    isAttrs
    isBool
    isFloat
    isInt
    isList
    isString
    length
    match
    stringLength
    substring
    toJSON
    typeOf
    ;

  matches = regex: s: match regex s != null;

  # How a value reads in a message: its kind, and the value itself when short.
  show =
    v:
    if isString v then
      "\"${if stringLength v > 40 then substring 0 40 v + "..." else v}\""
    else if isInt v || isFloat v || isBool v || v == null then
      toJSON v
    else if isList v then
      "a list"
    else if isAttrs v then
      (if v.type or null == "derivation" then "a derivation" else "an attribute set")
    else
      "a ${typeOf v}";

  expect = what: v: [ "must be ${what}, got ${show v}" ];
  when = cond: problems: if cond then problems else [ ];
  optional = check: v: if v == null then [ ] else check v;

  isNumber = v: isInt v || isFloat v;
  isDerivation = v: isAttrs v && v.type or null == "derivation";

  string = v: if isString v && v != "" then [ ] else expect "a non-empty string" v;
  bool = v: if isBool v then [ ] else expect "true or false" v;
  intBetween =
    lo: hi: v:
    if !isInt v then
      expect "an integer" v
    else
      when (v < lo || (hi != null && v > hi)) [
        "must be ${if hi == null then ">= ${toString lo}" else "between ${toString lo} and ${toString hi}"}, got ${toString v}"
      ];

  # Names: jobs, definitions and queues share AWS's rule; variables are what a POSIX shell exports.
  namePattern = "[A-Za-z0-9][A-Za-z0-9_-]{0,127}";
  awsName =
    v:
    if !isString v then
      expect "a string" v
    else
      when (!matches namePattern v) [
        "must be 1-128 letters, digits, - or _, starting with a letter or digit, got ${show v}"
      ];
  queueName =
    v:
    if !isString v then
      expect "a string" v
    else
      when (!(matches namePattern v || matches "arn:aws[a-z-]*:batch:[a-z0-9-]+:[0-9]{12}:job-queue/${namePattern}" v)) [
        "must be a queue name (1-128 letters, digits, - or _) or a job-queue ARN, got ${show v}"
      ];
  roleArn =
    v:
    if !isString v then
      expect "a string" v
    else
      when (!matches "arn:aws[a-z-]*:iam::[0-9]{12}:role/.+" v) [
        "must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), got ${show v}"
      ];
  variableName = v: matches "[A-Za-z_][A-Za-z0-9_]*" v;
  reservedVariable = v: matches "AWS_BATCH.*" v;

  # Words that mark a variable as a credential; its value would travel in plain text in the container overrides.
  credentialWords = [
    "TOKEN"
    "SECRET"
    "SECRETS"
    "PASSWORD"
    "PASSWD"
    "PASS"
    "KEY"
    "APIKEY"
    "CREDENTIAL"
    "CREDENTIALS"
    "PRIVATE"
  ];
  # Names that carry credentials by convention: a connection string holds its password (DATABASE_URL, SENTRY_DSN,
  # *_CONNECTION_STRING), a personal access token (*_PAT) or an Authorization header (*_AUTH). Other URLs are fine.
  credentialSuffixes = [
    "DSN"
    "PAT"
    "AUTH"
    "CONNECTION_STRING"
    "DATABASE_URL"
  ];
  looksLikeCredential =
    name:
    let
      upper = builtins.replaceStrings (lowerChars) (upperChars) name;
      words = filter isString (builtins.split "_" upper);
    in
    any (w: elem w credentialWords || matches ".*(TOKEN|SECRET|PASSWORD)" w) words
    || any (suffix: upper == suffix || matches ".*_${suffix}" upper) credentialSuffixes;
  lowerChars = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  upperChars = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];

  listOf =
    check: v:
    if !isList v then expect "a list" v else concatMap (x: check x) v;

  uniqueNames =
    v:
    let
      dups = filter (x: length (filter (y: y == x) v) > 1) v;
    in
    when (dups != [ ]) [ "lists ${show (builtins.head dups)} more than once" ];

  # `after`: job names, or { job; type = "N_TO_N"; } for arrays whose child i waits for child i of `job` only.
  dependencyName = d: if isAttrs d then d.job or null else d;
  dependency =
    d:
    if isString d then
      when (!matches namePattern d) [ "${show d} is not a job name" ]
    else if !isAttrs d then
      [ "must hold job names or { job; type = \"N_TO_N\"; }, got ${show d}" ]
    else
      map (k: "unknown attribute ${k} in ${show d} (expected job, type)") (
        filter (k: !elem k [ "job" "type" ]) (attrNames d)
      )
      ++ (
        if !(d ? job) then
          [ "job is required in ${show d}" ]
        else
          when (!isString d.job || !matches namePattern d.job) [ "job: ${show d.job} is not a job name" ]
      )
      ++ when (d ? type && d.type != "N_TO_N") [ "type: must be \"N_TO_N\", got ${show d.type}" ];
  dependencies =
    v:
    if !isList v then
      expect "a list of job names (folders of the jobs folder)" v
    else
      concatMap dependency v
      ++ uniqueNames (map dependencyName v)
      ++ when (length v > 20) [ "lists ${toString (length v)} jobs; AWS allows 20 dependencies per job" ];

  variableNames =
    v:
    if !isList v then
      expect "a list of variable names" v
    else
      concatMap (
        x:
        if !isString x then
          expect "a list of variable names" x
        else if !variableName x then
          [ "${show x} is not a valid variable name" ]
        else
          when (reservedVariable x) [ "${show x}: names starting with AWS_BATCH are reserved by AWS Batch" ]
      ) v
      ++ uniqueNames v;

  # name = value sets (env, secrets, tags) checked key by key.
  attrsOf =
    checkName: checkValue: v:
    if !isAttrs v || isDerivation v then
      expect "an attribute set" v
    else
      concatMap (k: checkName k ++ map (p: "${k}: ${p}") (checkValue v.${k})) (attrNames v);

  envName =
    k:
    if !variableName k then
      [ "${show k} is not a valid variable name" ]
    else
      when (reservedVariable k) [ "${show k}: names starting with AWS_BATCH are reserved by AWS Batch" ];

  envValue = v: if isString v then [ ] else expect "a string (write numbers and booleans in quotes)" v;

  secretReference =
    v:
    if !isString v then
      expect "a string" v
    else
      when
        (
          !(
            matches "arn:aws[a-z-]*:(secretsmanager|ssm):[a-z0-9-]+:[0-9]{12}:.+" v
            || matches "/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*" v
          )
        )
        [
          "must be a Secrets Manager ARN, an SSM parameter ARN or an SSM parameter name, got ${show v}"
        ];

  tagKey =
    k:
    (when (stringLength k > 128) [ "tag key ${show k} is longer than 128 characters" ])
    ++ (when (matches "[aA][wW][sS]:.*" k) [ "tag key ${show k}: the aws: prefix is reserved by AWS" ])
    ++ (when (!matches "[A-Za-z0-9 +=._:/@-]+" k) [
      "tag key ${show k} may only hold letters, digits, spaces and + - = . _ : / @"
    ]);
  tagValue =
    v:
    if !isString v then
      expect "a string" v
    else
      (when (stringLength v > 256) [ "is longer than 256 characters" ])
      ++ (when (!matches "[A-Za-z0-9 +=._:/@-]*" v) [
        "may only hold letters, digits, spaces and + - = . _ : / @"
      ]);
  tags =
    v:
    attrsOf tagKey tagValue v
    ++ when (isAttrs v && length (attrNames v) > 50) [
      "has ${toString (length (attrNames v))} tags; AWS allows 50"
    ];

  retryPattern =
    field: v:
    if !isString v then
      [ "${field}: must be a string, got ${show v}" ]
    else
      (when (stringLength v > 512) [ "${field}: is longer than 512 characters" ])
      ++ (
        if field == "onExitCode" then
          when (!matches "[0-9]*\\*?" v || v == "") [
            "${field}: must be digits optionally ending in *, got ${show v}"
          ]
        else
          when (!matches "[A-Za-z0-9.: \t]*\\*?" v || v == "") [
            "${field}: may only hold letters, digits, . : and spaces, optionally ending in *, got ${show v}"
          ]
      );
  retryRule =
    i: r:
    let
      at = "rule ${toString (i + 1)}";
      matchers = filter (f: r ? ${f}) [
        "onStatusReason"
        "onReason"
        "onExitCode"
      ];
      unknown = filter (
        f:
        !elem f [
          "action"
          "onStatusReason"
          "onReason"
          "onExitCode"
        ]
      ) (attrNames r);
    in
    if !isAttrs r then
      [ "${at}: must be an attribute set, got ${show r}" ]
    else
      map (f: "${at}: unknown attribute ${f} (expected action, onStatusReason, onReason, onExitCode)") unknown
      ++ (
        if !(r ? action) then
          [ "${at}: action is required (\"retry\" or \"exit\")" ]
        else
          when (!elem r.action [ "retry" "exit" "RETRY" "EXIT" ]) [
            "${at}: action must be \"retry\" or \"exit\", got ${show r.action}"
          ]
      )
      ++ when (matchers == [ ]) [ "${at}: needs at least one of onStatusReason, onReason, onExitCode" ]
      ++ concatMap (f: map (p: "${at}: ${p}") (retryPattern f r.${f})) matchers;
  retryRules =
    v:
    if !isList v then
      expect "a list of rules" v
    else
      (when (length v > 5) [ "has ${toString (length v)} rules; AWS allows 5" ])
      ++ concatMap (i: retryRule i (builtins.elemAt v i)) (genList (i: i) (length v));

  program =
    v:
    if isDerivation v then
      [ ]
    else if !isAttrs v then
      expect "a package or { text; runtimeInputs ? [ ]; }" v
    else
      let
        unknown = filter (k: !elem k [ "text" "runtimeInputs" ]) (attrNames v);
      in
      map (k: "unknown attribute ${k} (expected text, runtimeInputs)") unknown
      ++ (if v ? text then (if isString v.text then [ ] else map (p: "text: ${p}") (expect "a string" v.text)) else [ "text is required" ])
      ++ when (v ? runtimeInputs && !isList v.runtimeInputs) (
        map (p: "runtimeInputs: ${p}") (expect "a list of packages" v.runtimeInputs)
      );

  command = v: if !isList v || v == [ ] then expect "a non-empty list of strings" v else listOf string v;

  # Cron as CI systems write it: five fields (minute hour day-of-month month day-of-week), each a comma list of `*`,
  # a value or a range, optionally with a /step; months and weekdays also by name (JAN, MON). Checked here so that a
  # mistake is an evaluation error; the helper computes the runs with a cron library.
  cronFields = [
    { name = "minute"; lo = 0; hi = 59; names = [ ]; }
    { name = "hour"; lo = 0; hi = 23; names = [ ]; }
    { name = "day of month"; lo = 1; hi = 31; names = [ ]; }
    { name = "month"; lo = 1; hi = 12; names = [ "JAN" "FEB" "MAR" "APR" "MAY" "JUN" "JUL" "AUG" "SEP" "OCT" "NOV" "DEC" ]; }
    { name = "day of week"; lo = 0; hi = 7; names = [ "SUN" "MON" "TUE" "WED" "THU" "FRI" "SAT" ]; }
  ];
  upper = builtins.replaceStrings lowerChars upperChars;
  indexOf =
    x: xs:
    let
      found = filter (i: builtins.elemAt xs i == x) (genList (i: i) (length xs));
    in
    if found == [ ] then null else builtins.head found;
  # A field's value as a number (names count from lo: JAN = 1, SUN = 0), or null when it is no value of the field.
  cronValue =
    field: v:
    let
      digits = match "0*([0-9]{1,3})" v;
      named = indexOf (upper v) field.names;
      n = if digits != null then builtins.fromJSON (builtins.head digits) else if named != null then field.lo + named else null;
    in
    if n != null && n >= field.lo && n <= field.hi then n else null;
  cronItem =
    field: item:
    let
      parts = match "(\\*|([0-9A-Za-z]+)(-([0-9A-Za-z]+))?)(/([0-9]+))?" item;
      at = builtins.elemAt parts;
      start = at 1;
      end = at 3;
      step = at 5;
      range = "${toString field.lo}-${toString field.hi}${
        if field.names == [ ] then "" else " or ${builtins.head field.names}-${builtins.elemAt field.names (length field.names - 1)}"
      }";
      bad = what: [ "${field.name}: ${what}" ];
    in
    if parts == null then
      bad "${show item} is not *, a value, a range or one of those with /step"
    else if start != null && cronValue field start == null then
      bad "${show start} is not a value of ${range}"
    else if end != null && cronValue field end == null then
      bad "${show end} is not a value of ${range}"
    else if end != null && cronValue field start > cronValue field end then
      bad "${show item} is a range that ends before it starts"
    else
      when (step != null && (builtins.fromJSON (builtins.head (match "0*([0-9]{1,3}).*" step ++ [ "0" ])) < 1 || stringLength step > 3)) (
        bad "${show item}: the step must be a number from 1 up"
      );
  cron =
    v:
    let
      fields = filter (f: isString f && f != "") (builtins.split "[ \t]+" v);
    in
    if !isString v then
      expect "a cron string (\"0 5 * * *\") or { cron; timezone ? \"UTC\"; args ? [ ]; enable ? true; }" v
    else if length fields != 5 then
      [ "${show v} has ${toString (length fields)} fields; cron takes 5: minute hour day-of-month month day-of-week" ]
    else
      map (p: "${show v}: ${p}") (
        concatMap (i: concatMap (cronItem (builtins.elemAt cronFields i)) (
          filter isString (builtins.split "," (builtins.elemAt fields i))
        )) (genList (i: i) 5)
      );

  # IANA names, as Python's tzdata ships them (nix/lib/timezones.json; the helper computes with the same database).
  timezones = builtins.fromJSON (builtins.readFile ./timezones.json);
  timezone =
    v:
    if !isString v then
      expect "an IANA timezone name (\"Europe/Berlin\")" v
    else
      let
        close = filter (t: upper t == upper v || matches ".*/${v}" t) timezones;
      in
      when (!elem v timezones) [
        "unknown timezone ${show v}${if close == [ ] then "" else " (did you mean ${builtins.head close}?)"}; use an IANA name such as \"Europe/Berlin\" or \"UTC\""
      ];

  scheduleEntry =
    v:
    if isString v then
      cron v
    else if !isAttrs v || isDerivation v then
      expect "a cron string (\"0 5 * * *\") or { cron; timezone ? \"UTC\"; args ? [ ]; enable ? true; }" v
    else
      map (k: "unknown attribute ${k} (expected cron, timezone, args, enable)") (
        filter (k: !elem k [ "cron" "timezone" "args" "enable" ]) (attrNames v)
      )
      ++ (if v ? cron then map (p: "cron: ${p}") (cron v.cron) else [ "cron is required" ])
      ++ optional (p: map (x: "timezone: ${x}") (timezone p)) (v.timezone or null)
      ++ optional (p: map (x: "args: ${x}") (if isList p then listOf (x: if isString x then [ ] else expect "a string" x) p else expect "a list of strings" p)) (v.args or null)
      ++ optional (p: map (x: "enable: ${x}") (bool p)) (v.enable or null);
  # One schedule (a cron string or a set), or a list of them: each becomes { cron; timezone; args; enable; }.
  normalSchedule =
    v:
    {
      cron = builtins.concatStringsSep " " (
        filter (f: isString f && f != "") (builtins.split "[ \t]+" (if isString v then v else v.cron))
      );
      timezone = if isString v then "UTC" else v.timezone or "UTC";
      args = if isString v then [ ] else v.args or [ ];
      enable = if isString v then true else v.enable or true;
    };
  schedulesOf = v: if v == null then [ ] else map normalSchedule (if isList v then v else [ v ]);
  schedule =
    v:
    if isList v then
      let
        normal = map normalSchedule v;
        twice = filter (x: length (filter (y: y == x) normal) > 1) normal;
      in
      concatMap (i: map (p: "entry ${toString (i + 1)}: ${p}") (scheduleEntry (builtins.elemAt v i))) (
        genList (i: i) (length v)
      )
      ++ when (concatMap scheduleEntry v == [ ] && twice != [ ]) [
        "declares ${show (builtins.head twice).cron} in ${(builtins.head twice).timezone} with the same args twice"
      ]
    else
      scheduleEntry v;

  platform = v: when (!elem v [ "EC2" "FARGATE" ]) [ "must be \"EC2\" or \"FARGATE\", got ${show v}" ];

  # Container settings (volumes, Linux parameters, ulimits): AWS Batch's ContainerProperties, checked where it checks.
  int32 = 2147483647;
  absolutePath =
    v:
    if !isString v then
      expect "an absolute path" v
    else
      when (!matches "/[^\n]*" v || stringLength v > 4096) [ "must be an absolute path (starting with /), got ${show v}" ];
  unknownIn =
    allowed: v:
    map (k: "unknown attribute ${k} (expected ${builtins.concatStringsSep ", " allowed})") (
      filter (k: !elem k allowed) (attrNames v)
    );
  at = prefix: map (p: "${prefix}: ${p}");
  setOf =
    what: check: v:
    if !isAttrs v || isDerivation v then expect what v else concatMap (k: check k v.${k}) (attrNames v);

  efsKeys = [ "fileSystemId" "rootDirectory" "accessPointId" "transitEncryption" "iam" ];
  efs =
    v:
    if !isAttrs v || isDerivation v then
      expect "{ fileSystemId; rootDirectory ? \"/\"; accessPointId ? null; transitEncryption ? true; iam ? false; }" v
    else
      let
        encrypted = v.transitEncryption or true;
        hasRoot = (v.rootDirectory or null) != null && v.rootDirectory != "/";
      in
      unknownIn efsKeys v
      ++ (
        if !(v ? fileSystemId) then
          [ "fileSystemId is required (fs-...)" ]
        else
          when (!isString v.fileSystemId || !matches "fs-[0-9a-f]{8,40}" v.fileSystemId) [
            "fileSystemId: must be an EFS file system id (fs- and 8 to 40 hex digits), got ${show v.fileSystemId}"
          ]
      )
      ++ optional (x: at "rootDirectory" (absolutePath x)) (v.rootDirectory or null)
      ++ optional (
        x:
        when (!isString x || !matches "fsap-[0-9a-f]{8,40}" x) [
          "accessPointId: must be an EFS access point id (fsap- and 8 to 40 hex digits), got ${show x}"
        ]
      ) (v.accessPointId or null)
      ++ optional (x: at "transitEncryption" (bool x)) (v.transitEncryption or null)
      ++ optional (x: at "iam" (bool x)) (v.iam or null)
      ++ when ((v.accessPointId or null) != null && hasRoot) [
        "rootDirectory: an access point sets the directory itself; remove rootDirectory or set it to \"/\""
      ]
      ++ when (encrypted == false && ((v.iam or false) == true || (v.accessPointId or null) != null)) [
        "transitEncryption: EFS IAM authorization and access points need it; remove transitEncryption = false"
      ];
  volume =
    name: v:
    let
      shape = "{ mountPoint; readOnly ? false; efs = { fileSystemId; ... }; } or { mountPoint; hostPath; readOnly ? false; }";
      problems =
        if !isAttrs v || isDerivation v then
          expect shape v
        else
          unknownIn [ "mountPoint" "readOnly" "efs" "hostPath" ] v
          ++ (if v ? mountPoint then at "mountPoint" (absolutePath v.mountPoint) else [ "mountPoint is required" ])
          ++ optional (x: at "readOnly" (bool x)) (v.readOnly or null)
          ++ when ((v ? efs) == (v ? hostPath)) [ "declare efs or hostPath (one of them)" ]
          ++ optional (x: at "efs" (efs x)) (v.efs or null)
          ++ optional (x: at "hostPath" (absolutePath x)) (v.hostPath or null);
    in
    when (!matches "[A-Za-z0-9_-]{1,255}" name) [ "${show name}: a volume name is 1-255 letters, digits, - or _" ]
    ++ at name problems;
  volumes =
    v:
    let
      points = if isAttrs v then filter isString (map (k: v.${k}.mountPoint or null) (attrNames v)) else [ ];
      twice = filter (p: length (filter (q: q == p) points) > 1) points;
    in
    setOf "an attribute set of volumes, { data = { mountPoint = \"/data\"; efs = { fileSystemId = \"fs-...\"; }; }; }" volume v
    ++ when (twice != [ ]) [ "two volumes mount at ${show (builtins.head twice)}" ];

  # Mount options Batch's Tmpfs accepts (some take a value: mode=1777).
  tmpfsOptions = [
    "defaults" "ro" "rw" "suid" "nosuid" "dev" "nodev" "exec" "noexec" "sync" "async" "dirsync" "remount" "mand"
    "nomand" "atime" "noatime" "diratime" "nodiratime" "bind" "rbind" "unbindable" "runbindable" "private" "rprivate"
    "shared" "rshared" "slave" "rslave" "relatime" "norelatime" "strictatime" "nostrictatime" "mode" "uid" "gid"
    "nr_inodes" "nr_blocks" "mpol"
  ];
  tmpfsMount =
    path: v:
    let
      size = if isAttrs v then v.size or null else v;
      options = if isAttrs v then v.mountOptions or [ ] else [ ];
      option = o: if isString o then builtins.head (builtins.split "=" o) else o;
    in
    at path (
      absolutePath path
      ++ (
        if isAttrs v then unknownIn [ "size" "mountOptions" ] v ++ when (!(v ? size)) [ "size is required (MiB)" ]
        else if !isInt v then expect "a size in MiB or { size; mountOptions ? [ ]; }" v
        else [ ]
      )
      ++ when (size != null) (at "size" (intBetween 1 int32 size))
      ++ (
        if !isList options then
          at "mountOptions" (expect "a list of strings" options)
        else
          map (o: "mountOptions: ${show o} is not a tmpfs mount option Batch accepts") (
            filter (o: !isString o || !elem (option o) tmpfsOptions) options
          )
      )
    );

  ulimitNames = [
    "core" "cpu" "data" "fsize" "locks" "memlock" "msgqueue" "nice" "nofile" "nproc" "rss" "rtprio" "rttime"
    "sigpending" "stack"
  ];
  ulimit =
    name: v:
    let
      soft = if isAttrs v then v.soft or null else v;
      hard = if isAttrs v then v.hard or null else v;
    in
    if !elem name ulimitNames then
      [ "${show name} is not a ulimit Batch knows (${builtins.concatStringsSep ", " ulimitNames})" ]
    else
      at name (
        if isAttrs v && !isDerivation v then
          unknownIn [ "soft" "hard" ] v
          ++ when (!(v ? soft) || !(v ? hard)) [ "needs soft and hard" ]
          ++ optional (x: at "soft" (intBetween 0 int32 x)) soft
          ++ optional (x: at "hard" (intBetween 0 int32 x)) hard
          ++ when (isInt soft && isInt hard && soft > hard) [ "soft (${toString soft}) is above hard (${toString hard})" ]
        else if isInt v then
          intBetween 0 int32 v
        else
          expect "a limit (soft = hard) or { soft; hard; }" v
      );

  # A string AWS checks against a pattern; `what` says what it must be.
  patterned =
    pattern: what: v:
    if !isString v then expect "a string" v else when (!matches pattern v) [ "must be ${what}, got ${show v}" ];

  # Consumable resources are named as AWS names them (CreateConsumableResource).
  consumableName = "[A-Za-z0-9_-]{1,128}";

  # Retry spot reclaims and host failures (their status reason starts with "Host EC2"); stop on anything else.
  defaultRetryRules = [
    {
      onStatusReason = "Host EC2*";
      action = "retry";
    }
    {
      onReason = "*";
      action = "exit";
    }
  ];
in
{
  inherit
    defaultRetryRules
    dependencyName
    looksLikeCredential
    namePattern
    schedulesOf
    show
    isDerivation
    isNumber
    when
    ;

  # Attributes of Makes' computeOnAwsBatch that have no counterpart of the same name here: a declaration carried over
  # from Makes that sets one gets this line (a function of the job's name) instead of "unknown attribute".
  makesAttributes = {
    definition =
      name:
      "Makes' definition reused a job definition managed elsewhere; here the definition is built from this file "
      + "(command and image, or entrypoint) and registered when it changes: remove definition "
      + "(definitionName only renames the definition built here)";
    dryRun =
      name:
      "Makes' dryRun made every run of the job a dry run; here it is chosen per run: "
      + "compute-on-aws queue ${name} --dry-run (or compute-on-aws render ${name})";
    name =
      name:
      "Makes' name named the job; here a job is named after its folder (${name}): remove name "
      + "(definitionName names the job definition)";
    nextJob =
      name:
      "Makes' nextJob declared the job to queue after this one; here that job gets a folder of its own, "
      + "jobs/<its name>/default.nix, declaring after = [ \"${name}\" ];";
    setup =
      name:
      "Makes' setup sourced scripts (credentials, variables) before queueing; there is none here: credentials "
      + "come from the shell that queues (AWS_PROFILE, AWS_REGION, ...), and the job's variables from environment, "
      + "env and secrets";
  };

  # name = { default; description; check; }: description is the reference (docs/reference/job-attributes.md is
  # generated from it, in Markdown); check sees the value only when it is not the default null.
  attributes = {
    description = {
      default = "";
      description = "What the job does, in a line: shown by `compute-on-aws jobs`.";
      check = v: if isString v then [ ] else expect "a string" v;
    };
    queue = {
      default = null;
      description = ''
        The job queue: a name or a job-queue ARN. Unset, the config's `queue` (of the `--env` chosen). When the
        config declares `queues`, it must be one of them.
      '';
      check = queueName;
    };
    definitionName = {
      default = null;
      description = ''
        Name of the job definition this job registers (unset: the job's name). A new revision is registered only
        when the rendered definition changes. One job's own: two jobs naming one definition are refused.
      '';
      check = awsName;
    };
    entrypoint = {
      default = null;
      description = ''
        The program, built by Nix: `{ text; runtimeInputs ? [ ]; }` (a strict-mode shell script, shellchecked, with
        `runtimeInputs` on its PATH) or a package (its `bin/<mainProgram>` runs, behind a wrapper that gives a re-run child its original index,
        with the package's `bin/` on PATH). Nix builds an image holding its
        closure, unless `image` is given. Declare `entrypoint` or `command`; only `entrypoint` may use `pkgs`.
      '';
      check = program;
    };
    command = {
      default = null;
      description = ''
        The program as a non-empty list of strings, run in `image` (required with it). The arguments given to
        `queue` are appended.
      '';
      check = command;
    };
    image = {
      default = null;
      description = ''
        Image reference. Required with `command`. With `entrypoint` it replaces the Nix-built image, which must then
        hold the entrypoint's closure.
      '';
      check = string;
    };
    platform = {
      default = "EC2";
      description = "`\"EC2\"` (EC2 and spot compute) or `\"FARGATE\"`.";
      check = platform;
    };
    vcpus = {
      default = 1;
      description = "vCPUs: a whole number on EC2; 0.25, 0.5, 1, 2, 4, 8 or 16 on Fargate.";
      check = v: if isNumber v then when (v <= 0) [ "must be > 0, got ${toJSON v}" ] else expect "a number" v;
    };
    memory = {
      default = 2048;
      description = "Memory in MiB, at least 4; on Fargate, one of the sizes its vCPU count allows.";
      check = intBetween 4 null;
    };
    gpus = {
      default = 0;
      description = "GPUs (EC2 only).";
      check = intBetween 0 null;
    };
    attempts = {
      default = 3;
      description = ''
        How many times the job may run, 1-10. Which failures use another attempt is `retryRules`'s choice: by
        default host failures and spot reclaims only.
      '';
      check = intBetween 1 10;
    };
    retryRules = {
      default = defaultRetryRules;
      description = ''
        Up to 5 rules `{ action = "retry" or "exit"; onStatusReason, onReason or onExitCode = "pattern"; }` (a
        pattern may end in `*`). The first rule whose patterns all match a failed attempt decides; a failure no rule
        matches is retried. The default retries status reasons starting `Host EC2` (spot reclaims, host failures)
        and exits on anything else; `[ ]` retries every failure.
      '';
      check = retryRules;
    };
    attemptDurationSeconds = {
      default = 86400;
      description = "Timeout of each attempt in seconds, at least 60 (for an array, of each child).";
      check = intBetween 60 null;
    };
    environment = {
      default = [ ];
      description = ''
        Names of variables copied from the shell that queues into the submission. An unset one is an error; values
        are never printed. Names that look like credentials are refused unless listed in `plaintextCredentials`.
      '';
      check = variableNames;
    };
    after = {
      default = [ ];
      description = ''
        Jobs (folder names) that must succeed first, at most 20: queueing this job queues them too, before it, with
        the same arguments. `{ job = "split"; type = "N_TO_N"; }` pairs two arrays of one `parallel`: child i waits
        for child i of `split` only.
      '';
      check = dependencies;
    };
    sequential = {
      default = false;
      description = ''
        Array children run one at a time, in index order (Batch's SEQUENTIAL dependency); a failed child fails the
        ones after it.
      '';
      check = bool;
    };
    plaintextCredentials = {
      default = [ ];
      description = ''
        Names from `environment` that look like credentials but may travel in plain text in the submission.
      '';
      check = variableNames;
    };
    env = {
      default = { };
      description = "Literal variables, `NAME = \"value\";`, in the job definition.";
      check = attrsOf envName envValue;
    };
    secrets = {
      default = { };
      description = ''
        `NAME = "<Secrets Manager ARN, SSM parameter ARN or name>";`: Batch injects the value when the job starts;
        only the reference is in the definition. Needs an execution role.
      '';
      check = attrsOf envName secretReference;
    };
    parallel = {
      default = 1;
      description = ''
        Array size: 1 is a single job, 2-10000 an array whose children see `AWS_BATCH_JOB_ARRAY_INDEX`.
      '';
      check = intBetween 1 10000;
    };
    tags = {
      default = { };
      description = ''
        Tags of the job definition, with the config's `tags`; at most 50, and `aws:` is reserved. `queue --tag
        KEY=VALUE` selects jobs by them.
      '';
      check = tags;
    };
    propagateTags = {
      default = true;
      description = "Batch copies the definition's tags to the job's ECS tasks.";
      check = bool;
    };
    allowDuplicates = {
      default = false;
      description = ''
        Submit even when a job of the same name and definition is already active in the queue (otherwise that job
        is reported as a `duplicate`, exit 0).
      '';
      check = bool;
    };
    notify = {
      default = null;
      description = ''
        Which of the job's events go to the config's `notifications.topic`: a list of `"FAILED"`, `"SUCCEEDED"`
        and `"BLOCKED"` (it waits in a queue Batch finds blocked), `[ ]` for none. Unset, the config's
        `notifications.on`.
      '';
      check =
        v:
        if !isList v then
          expect "a list of \"FAILED\", \"SUCCEEDED\" or \"BLOCKED\"" v
        else
          concatMap (
            x:
            when (!elem x [ "FAILED" "SUCCEEDED" "BLOCKED" ]) [
              "expected \"FAILED\", \"SUCCEEDED\" or \"BLOCKED\", got ${show x}"
            ]
          ) v
          ++ uniqueNames v;
    };
    includePositionalArgsInName = {
      default = true;
      description = ''
        The arguments are part of the job's name, so the same job with other arguments is not a duplicate.
      '';
      check = bool;
    };
    schedulingPriority = {
      default = null;
      description = "0-9999: the job's priority within its share, on a fair-share queue.";
      check = intBetween 0 9999;
    };
    shareIdentifier = {
      default = null;
      description = ''
        The fair-share identifier the job counts against: required on a fair-share queue, refused on any other.
      '';
      check =
        v:
        if !isString v then
          expect "a string" v
        else
          when (!matches "[A-Za-z0-9_]{1,254}\\*?" v) [
            "must be 1-255 letters, digits or _ (optionally ending in *), got ${show v}"
          ];
    };
    jobRoleArn = {
      default = null;
      description = "IAM role the job's code runs as. Unset, the config's `roles.job`.";
      check = roleArn;
    };
    schedule = {
      default = null;
      description = ''
        When the job runs on its own: a 5-field cron read in UTC (`"0 5 * * *"`), `{ cron; timezone ? "UTC"; args ?
        [ ]; enable ? true; }` (an IANA timezone, the arguments of its runs), or a list of those.
      '';
      check = schedule;
    };
    executionRoleArn = {
      default = null;
      description = ''
        IAM role Batch and ECS use to pull the image, read `secrets` and write logs; required on Fargate and with
        `secrets`. Unset, the config's `roles.execution`.
      '';
      check = roleArn;
    };
    volumes = {
      default = { };
      description = ''
        Volumes mounted in the container, by name: `{ data = { mountPoint = "/data"; readOnly ? false; efs = {
        fileSystemId = "fs-..."; rootDirectory ? "/"; accessPointId ? null; transitEncryption ? true; iam ? false;
        }; }; }`, or `hostPath = "/path"` instead of `efs` for a folder of the EC2 instance (not on Fargate). With
        `iam = true` EFS authorizes the job role (`iam-policy --role job` grants it that file system only).
      '';
      check = volumes;
    };
    sharedMemorySize = {
      default = null;
      description = "Size of `/dev/shm` in MiB (EC2 only; Docker's default is 64).";
      check = intBetween 1 int32;
    };
    tmpfs = {
      default = { };
      description = ''
        In-memory folders, `{ "/scratch" = 1024; }` (MiB) or `{ "/scratch" = { size = 1024; mountOptions = [
        "noexec" ]; }; }` (EC2 only); their size counts against the job's memory.
      '';
      check = setOf "an attribute set { \"/path\" = <MiB>; }" tmpfsMount;
    };
    initProcessEnabled = {
      default = false;
      description = "Run an init process as PID 1, which forwards signals and reaps zombie processes.";
      check = bool;
    };
    maxSwap = {
      default = null;
      description = "Swap the container may use, in MiB (EC2 only; 0 turns swap off; unset, the instance's default).";
      check = intBetween 0 int32;
    };
    swappiness = {
      default = null;
      description = "0-100: how readily the container swaps (EC2 only, with `maxSwap`).";
      check = intBetween 0 100;
    };
    ulimits = {
      default = { };
      description = ''
        Resource limits, `{ nofile = 65536; nproc = { soft = 1024; hard = 4096; }; }`: one of core, cpu, data, fsize,
        locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack. The local backend
        applies them to the job's process.
      '';
      check = setOf "an attribute set { nofile = 65536; }" ulimit;
    };
    user = {
      default = null;
      description = "The user (and group) the container runs as: `\"1000\"`, `\"1000:1000\"` or a name in the image.";
      check =
        patterned "[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,254})?"
          "a user name or uid, optionally followed by :group or :gid";
    };
    readonlyRootFilesystem = {
      default = false;
      description = "Mount the image read-only: the job writes only to its volumes and `tmpfs`.";
      check = bool;
    };
    ephemeralStorage = {
      default = null;
      description = "Disk of a Fargate job in GiB, 21-200 (Fargate only; unset, Fargate's 20).";
      check = intBetween 21 200;
    };
    platformVersion = {
      default = null;
      description = "Fargate platform version, `\"LATEST\"` or `\"1.4.0\"` (Fargate only; unset, LATEST).";
      check = patterned "LATEST|[0-9]+\\.[0-9]+\\.[0-9]+" "\"LATEST\" or a version such as \"1.4.0\"";
    };
    logGroup = {
      default = null;
      description = ''
        CloudWatch Logs group of the job's output (awslogs). Unset, the config's `logs.group`, else Batch's
        `/aws/batch/job`. `infra apply` creates it with `logs.retention_days`.
      '';
      check = patterned "[A-Za-z0-9._/#-]{1,512}" "a log group name: 1-512 letters, digits and . _ / # -";
    };
    logStreamPrefix = {
      default = null;
      description = ''
        Prefix of the job's log streams (`<prefix>/default/<task id>`). Unset, the config's `logs.stream_prefix`,
        else the definition's name (the streams Batch names by default).
      '';
      check = patterned "[^:*]{1,256}" "1-256 characters without : or *";
    };
    runTags = {
      default = { };
      description = ''
        Tags of each run (SubmitJob's tags), beside those compute-on-aws sets (`compute-on-aws:job`, `:args`,
        `:slot` when scheduled, `:commit` from `COMPUTE_ON_AWS_COMMIT`, `GITHUB_SHA` or `CI_COMMIT_SHA`); with
        `propagateTags` they reach the ECS task, for cost allocation per run. With the definition's tags at most 50.
      '';
      check =
        v:
        tags v
        ++ map (k: "${k}: the compute-on-aws: prefix is the tool's own") (
          filter (k: matches "compute-on-aws:.*" k) (if isAttrs v then attrNames v else [ ])
        );
    };
    consumes = {
      default = { };
      description = ''
        Consumable resources a run holds while it runs, `{ db-connections = 1; }`: each one declared under
        `consumable_resources` in compute-on-aws.yaml. Batch (and the local backend) starts the job only when that
        much is free.
      '';
      check = setOf "an attribute set { db-connections = 1; }" (
        k: v:
        when (!matches consumableName k) [ "${show k}: a consumable resource name is 1-128 letters, digits, - or _" ]
        ++ at k (intBetween 1 int32 v)
      );
    };
  };
}
