"""What queueing a job means, before any side effect: requests rendered from templates, checked against AWS's limits and
the declared infrastructure, named, and ordered in chains of jobs that run after others. Pure: no AWS, no Nix."""
