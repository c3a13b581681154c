"""The layer catalogue: one declarative spec per layer (``specs/*.toml``) and the SQL
migrations (``migrations/*.sql``). The single source of truth for geo/, api/ and maps/.
"""

from layers.catalogue import (
    Attribute,
    Catalogue,
    LayerSpec,
    load_catalogue,
    vocabulary,
)

__all__ = ["Attribute", "Catalogue", "LayerSpec", "load_catalogue", "vocabulary"]
