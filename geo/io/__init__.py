"""Files in and out: layer import and export, file readers, tabular (CSV/XLSX) sheets, photo storage, backups."""

from typing import Literal

# The import modes, here rather than in importer.py so that the command line can offer them
# without loading pandas, pyarrow and GDAL (``wuye backup`` and friends start faster).
Mode = Literal["append", "upsert", "replace"]
MODES: tuple[str, ...] = ("append", "upsert", "replace")
