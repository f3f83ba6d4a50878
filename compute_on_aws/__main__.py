from compute_on_aws.cli import main

main()
