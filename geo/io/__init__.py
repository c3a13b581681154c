"""Files in and out: layer import and export, file readers, tabular (CSV/XLSX) sheets, photo storage."""
