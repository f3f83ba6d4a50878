"""The AWS account a config needs: compute environments, job queues and their roles, planned, applied, exported as
Terraform; and the least-privilege IAM policies of whoever queues, schedules or applies."""
