"""Spatial core of wuye-gis: settings, database, CRS, validation, import/export.

Never imports FastAPI or folium (see DESIGN.md).
"""
