"""Coordinates and geometry: CRS handling, GCJ-02/BD-09 conversion, geometry validation,
the district's reference shapes and the spatial integrity checks."""
