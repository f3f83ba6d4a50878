# A job's container image: the entrypoint's closure plus CA certificates, streamed as a docker-archive (nothing large in
# the store). With no tag given the tag is the hash of the image's configuration, so an unchanged job keeps its tag.
# `copyTo` pushes it anywhere skopeo can (nix run .#<job>-image.copyTo -- docker://registry/repo:tag [skopeo flags]);
# compute-on-aws pushes by itself when queueing, this is for doing it by hand.
{ pkgs }:
{
  # Image name, usually the job's name.
  name,
  # The entrypoint derivation (from mkEntrypoint); its bin/ is linked into the image's /bin.
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
    config.Env = [
      "PATH=/bin"
      "SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt"
    ];
  };
in
image
// {
  copyTo = pkgs.writeShellApplication {
    name = "copy-to";
    runtimeInputs = [
      pkgs.coreutils
      pkgs.skopeo
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
      skopeo copy "$@" "docker-archive:$archive" "$destination"
    '';
  };
}
