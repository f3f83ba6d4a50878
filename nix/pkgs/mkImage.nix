# A job's container image: the entrypoint's closure plus CA certificates, streamed as a docker-archive (nothing large in
# the store). With no tag given the tag is the hash of the image's configuration, so an unchanged job keeps its tag.
{ pkgs }:
{
  # Image name, usually the job's name.
  name,
  # The entrypoint derivation (from mkEntrypoint); its bin/ is linked into the image's /bin.
  entrypoint,
  # Image tag; null derives it from the content.
  tag ? null,
}:
pkgs.dockerTools.streamLayeredImage {
  inherit name tag;
  contents = [
    entrypoint
    pkgs.cacert
  ];
  config.Env = [
    "PATH=/bin"
    "SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt"
  ];
}
