// The fees page's choropleth (issue 21 point 6): the caller's zones coloured by their collection rate by
// amount, the same bins as the table's badges (maps/fees_web.py rate_class). Leaflet from our npm copy,
// no basemap tiles; the zones and their rates come from /workbench/fees/map.json.
(function () {
  "use strict";
  window.wuyeFeesReady = false;
  const colours = [[95, "#1b5e20"], [85, "#66bb6a"], [70, "#fdd835"], [50, "#fb8c00"], [-1, "#c62828"]];
  function colour(rate) {
    if (rate === null || rate === undefined) return "#bdbdbd";
    return colours.find(([limit]) => rate >= limit)[1];
  }
  const box = document.getElementById("fees-map");
  if (!box) { window.wuyeFeesReady = true; return; }
  const map = L.map(box, { attributionControl: false });
  map.setView([28.23, 112.95], 13);
  fetch(box.dataset.src, { headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : null))
    .then((fc) => {
      if (!fc) return;
      const drawn = L.geoJSON(fc, {
        filter: (f) => f.geometry !== null,
        style: (f) => ({ color: "#37474f", weight: 1, fillColor: colour(f.properties.rate_by_amount), fillOpacity: 0.75 }),
        onEachFeature: (f, layer) => {
          const p = f.properties;
          const rate = p.rate_by_amount === null ? "—" : p.rate_by_amount + "%";
          layer.bindTooltip(p.name + " " + rate, { sticky: true });
          layer.on("click", () => {
            const row = document.querySelector('tr.zone-row[data-zone="' + p.code + '"] a');
            if (row) location.href = row.href;
          });
        },
      }).addTo(map);
      if (drawn.getLayers().length) map.fitBounds(drawn.getBounds().pad(0.05));
      box.dataset.zones = String(drawn.getLayers().length);
    })
    .catch(() => {})
    .finally(() => { window.wuyeFeesReady = true; });
})();
