"""The AWS Batch infrastructure of a config: compute environments and job queues, planned, applied, exported."""
