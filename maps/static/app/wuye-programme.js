// The publicity page's map (issue 21 point 3): the zone's outline (from /collections/zones/items/{code}),
// its records' places, and a click (or tap) that picks the new record's place into the lon/lat fields.
// Leaflet from our npm copy; no basemap tiles are needed. window.wuyeProgrammeReady marks it drawn.
(function () {
  "use strict";
  window.wuyeProgrammeReady = false;
  const box = document.getElementById("pub-map");
  if (!box || typeof L === "undefined") { window.wuyeProgrammeReady = true; return; }
  const map = L.map(box, { attributionControl: false, tap: true });
  window.wuyePublicityMap = map;
  const lonInput = document.getElementById("pub-lon"), latInput = document.getElementById("pub-lat");
  let picked = null;

  function pick(latlng) {
    if (picked) picked.remove();
    picked = L.marker(latlng, { title: "picked" }).addTo(map);
  }

  document.querySelectorAll("#record-list tr.record-row").forEach((row) => {
    const lat = parseFloat(row.dataset.lat), lon = parseFloat(row.dataset.lon);
    if (isNaN(lat) || isNaN(lon)) return;
    L.circleMarker([lat, lon], { radius: 6, color: "#1b5e20", weight: 2, fillColor: "#66bb6a", fillOpacity: 0.8 })
      .bindTooltip(row.querySelector("td:nth-child(2)").textContent).addTo(map);
  });
  if (lonInput && latInput) {
    const lon0 = parseFloat(lonInput.value), lat0 = parseFloat(latInput.value);
    if (!isNaN(lon0) && !isNaN(lat0)) pick([lat0, lon0]);  // kept from a refused form
    map.on("click", (e) => {
      lonInput.value = e.latlng.lng.toFixed(7);
      latInput.value = e.latlng.lat.toFixed(7);
      pick(e.latlng);
    });
  }
  // where a place may be picked: within the rule's distance of the zone (drawn dashed, from the server)
  let near = null, band = null;
  try { near = JSON.parse(box.dataset.near || "null"); } catch (e) { near = null; }
  if (near) {
    band = L.geoJSON(near, { style: { color: "#2e7d32", weight: 1.5, dashArray: "6 4", fill: false }, interactive: false }).addTo(map);
  }
  fetch("/collections/zones/items/" + encodeURIComponent(box.dataset.zone), { headers: { Accept: "application/geo+json" } })
    .then((r) => (r.ok ? r.json() : null))
    .then((feature) => {
      if (!feature) { map.setView([28.23, 112.95], 14); return; }
      const outline = L.geoJSON(feature, { style: { color: "#0d47a1", weight: 2, fillOpacity: 0.08 } }).addTo(map);
      map.fitBounds((band || outline).getBounds().pad(0.1));
    })
    .catch(() => map.setView([28.23, 112.95], 14))
    .finally(() => { window.wuyeProgrammeReady = true; });
})();
