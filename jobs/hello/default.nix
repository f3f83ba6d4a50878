# The smallest job: a plain command in a public image. Nothing to build, so it runs anywhere, even without nixpkgs.
{
  description = "Greets, with its arguments";
  queue = "default";
  command = [
    "echo"
    "hello from compute-on-aws"
  ];
  image = "public.ecr.aws/docker/library/busybox:1.36";
  vcpus = 1;
  memory = 512;
  attempts = 1;
  attemptDurationSeconds = 300;
}
