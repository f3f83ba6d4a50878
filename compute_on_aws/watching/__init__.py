"""What a user sees of a job on either backend, and waiting on jobs and their logs until they end."""
