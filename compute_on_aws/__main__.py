from compute_on_aws.cli import run

run()
