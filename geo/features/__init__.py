"""OGC API Features: items as one SQL statement, CQL2 filters, edits with history, vector and overview tiles."""
