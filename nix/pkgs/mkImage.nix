# A job's container image: the entrypoint's closure plus CA certificates and a /tmp, streamed as a docker-archive
# (nothing large in the store). With no tag given the tag is the hash of the image's configuration, so an unchanged job
# keeps its tag. The image is for the system of the `pkgs` it is built with, whatever machine evaluates it.
# `copyTo` pushes it anywhere skopeo can (nix run .#<job>-image.copyTo -- docker://registry/repo:tag [skopeo flags]);
# compute-on-aws pushes by itself when queueing, this is for doing it by hand.
{
  # nixpkgs of the image's system.
  pkgs,
  # nixpkgs of the machine that pushes (copyTo runs there).
  hostPkgs ? pkgs,
}:
{
  # Image name, usually the job's name.
  name,
  # The entrypoint derivation (from mkEntrypoint, for the image's system); its bin/ is linked into the image's /bin.
  entrypoint,
  # Image tag; null derives it from the content.
  tag ? null,
}:
let
  image = pkgs.dockerTools.streamLayeredImage {
    inherit name tag;
    contents = [
      entrypoint
      pkgs.cacert
    ];
    # dockerTools images have no /tmp: mktemp, sort and most runtimes need one, as on any Linux system.
    extraCommands = "mkdir -m 1777 tmp";
    config.Env = [
      "PATH=/bin"
      "SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt"
    ];
  };
  # skopeo reads a trust policy on every copy and nixpkgs' skopeo ships none in /etc: give it one. The source is an
  # archive built here, so there is no signature to verify.
  policy = builtins.toFile "compute-on-aws-skopeo-policy.json" (
    builtins.toJSON {
      default = [ { type = "insecureAcceptAnything"; } ];
    }
  );
in
image
// {
  copyTo = hostPkgs.writeShellApplication {
    name = "copy-to";
    runtimeInputs = [
      hostPkgs.coreutils
      hostPkgs.skopeo
    ];
    # skopeo cannot read a docker-archive from a pipe: the stream goes to a private temporary file first.
    text = ''
      if [ "$#" -lt 1 ]; then
        echo "usage: copy-to DESTINATION [SKOPEO COPY FLAGS...]   (e.g. docker://registry.example/jobs:${name})" >&2
        exit 2
      fi
      destination=$1
      shift
      archive=$(mktemp)
      trap 'rm -f "$archive"' EXIT
      ${image} > "$archive"
      skopeo --policy ${policy} copy "$@" "docker-archive:$archive" "$destination"
    '';
    meta.description = "Pushes the image of ${name} with skopeo: copy-to DESTINATION [SKOPEO COPY FLAGS...]";
  };
}
