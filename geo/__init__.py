"""Spatial core of wuye-gis, in rooms by concern. Never imports FastAPI, folium, api/ or maps/.

- ``store``: connection pools, the embedded PostGIS cluster, migrations, health
- ``spatial``: CRS, GCJ-02/BD-09, geometry validation, reference shapes, integrity checks
- ``access``: principals, roles, users and tokens, the scope predicate, the audit log
- ``features``: OGC API Features items, CQL2, edits with history, vector and overview tiles
- ``cases``: problem reports: categories, intake, routing, workflow, Open311, statistics
- ``programme``: remediation, inspections, surveys, acceptance
- ``io``: import, export, file readers, tabular sheets, photos
- ``demo``: the synthetic demo district

``errors``, ``settings``, ``workcal`` (the working calendar) and ``sheets`` (tables written as CSV or
XLSX) are shared by every room.
"""
