"""Problem reports (事件): categories, intake, routing by spatial join, the workflow,
idempotency, Open311, statistics, and the background jobs (escalation, webhooks; one process runs them)."""
