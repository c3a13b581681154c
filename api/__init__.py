"""The faces of wuye-gis: the FastAPI app and the ``wuye`` command line."""
