"""The AWS layer every AWS user of the package shares: one session and client per service, one budget of calls per
second, and the AWS Batch calls with rules of their own (a definition per content hash, SubmitJob exactly once)."""
