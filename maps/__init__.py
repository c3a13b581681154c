"""folium map builders (maps issue)."""
