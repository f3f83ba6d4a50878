# A realistic ETL: a Nix-built script that extracts one day of observations from an HTTP API, reshapes them with jq and
# loads them where LOAD_URL points. Queue it for a day: nix run .#queue-job -- observes-etl 2026-11-25
{ pkgs, ... }:
{
  description = "Loads one day of observations (argument: YYYY-MM-DD, default yesterday)";
  queue = "etl-small";
  # etl-small is shared by fair share between teams (compute-on-aws.yaml): this job counts against observes' part.
  shareIdentifier = "observes";
  entrypoint = {
    runtimeInputs = [
      pkgs.coreutils
      pkgs.curl
      pkgs.jq
    ];
    text = ''
      day="''${1:-$(date -u -d yesterday +%F)}"
      echo "observes-etl: commit ''${CI_COMMIT_SHA:-unknown}, attempt ''${AWS_BATCH_JOB_ATTEMPT:-1}, day $day"
      curl --fail --silent --show-error --retry 3 \
        --header "Authorization: Bearer $OBSERVES_API_TOKEN" \
        "$OBSERVES_API_URL?day=$day" \
        | jq --compact-output '.observations[] | {station, time, value}' \
        > observations.jsonl
      echo "observes-etl: $(wc -l < observations.jsonl) observations"
      curl --fail --silent --show-error --upload-file observations.jsonl "$LOAD_URL/$day.jsonl"
    '';
  };
  vcpus = 2;
  memory = 4096;
  attempts = 3;
  attemptDurationSeconds = 4 * 3600;
  # Every day at 05:00 UTC, for the day before (the script's default): from CI (queue --due) or EventBridge Scheduler.
  schedule = "0 5 * * *";
  environment = [ "CI_COMMIT_SHA" ];
  env = {
    OBSERVES_API_URL = "https://observations.example.com/v1/observations";
    LOAD_URL = "https://warehouse.example.com/landing/observations";
  };
  secrets.OBSERVES_API_TOKEN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:observes/api-token";
  tags = {
    team = "observes";
    cost-center = "data-platform";
  };
}
