"""Declared schedules carried out: on EventBridge Scheduler, or as scheduled CI pipelines (GitHub Actions, GitLab)."""
