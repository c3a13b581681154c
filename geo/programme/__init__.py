"""The programme's work per zone: remediation tasks, inspections, door-to-door surveys and acceptance verdicts."""
