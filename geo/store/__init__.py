"""The database: connection pools, the embedded PostGIS cluster, migrations and the health check."""
