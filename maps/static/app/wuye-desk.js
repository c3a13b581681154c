// The case desk: a map beside the list (the rows' own positions) and, on a case page, the case's
// position (a click on the map fills the "correct position" form). Leaflet from our npm copy; no
// basemap tiles are needed (the district's zones are drawn from /collections/zones/items).
(function () {
  "use strict";
  window.wuyeDeskReady = false;
  // The list's rows are in the page as served: mark the first frame drawn with them (bench/workbench.py
  // reads this mark: navigation → rows shown).
  if (document.querySelector("#case-list tr.case-row")) {
    requestAnimationFrame(() => performance.mark("wuye-rows-shown"));
  }
  let zones = null;

  function drawZones(map) {
    const add = (fc) => L.geoJSON(fc, { style: { color: "#607d8b", weight: 1, fillOpacity: 0.05 }, interactive: false }).addTo(map);
    if (zones) { add(zones); return Promise.resolve(); }
    return fetch("/collections/zones/items?limit=1000&properties=name", { headers: { Accept: "application/geo+json" } })
      .then((r) => (r.ok ? r.json() : null))
      .then((fc) => { if (fc) { zones = fc; add(fc); } })
      .catch(() => {});
  }

  function listMap() {
    const box = document.getElementById("desk-map");
    if (!box) return Promise.resolve();
    if (box._wuyeMap) { box._wuyeMap.remove(); }
    const map = L.map(box, { attributionControl: false });
    box._wuyeMap = map;
    const points = [];
    // the case desk's rows, or the facility-faults page's (faulty red, under repair orange)
    const faultColours = { faulty: "#c62828", repairing: "#ef6c00" };
    document.querySelectorAll("#case-list tr.case-row, #fault-list tr.fault-row").forEach((row) => {
      const lat = parseFloat(row.dataset.lat), lon = parseFloat(row.dataset.lon);
      if (isNaN(lat) || isNaN(lon)) return;
      points.push([lat, lon]);
      const overdue = row.classList.contains("overdue") || row.classList.contains("pinned");
      const fill = faultColours[row.dataset.condition] || (row.classList.contains("pinned") ? "#6a1b9a" : "#42a5f5");
      L.circleMarker([lat, lon], { radius: overdue ? 7 : 5, color: overdue ? "#000" : "#1565c0", weight: overdue ? 3 : 1, fillColor: fill, fillOpacity: 0.8 })
        .bindTooltip(row.dataset.code).addTo(map)
        .on("click", () => { location.href = row.querySelector("a").href; });
    });
    if (points.length) map.fitBounds(L.latLngBounds(points).pad(0.2), { maxZoom: 17 });
    else map.setView([28.23, 112.95], 13);
    return drawZones(map);
  }

  function caseMap() {
    const box = document.getElementById("case-map");
    if (!box) return Promise.resolve();
    const lat = parseFloat(box.dataset.lat), lon = parseFloat(box.dataset.lon);
    const map = L.map(box, { attributionControl: false }).setView([lat, lon], 17);
    window.wuyeCaseMap = map;
    L.circleMarker([lat, lon], { radius: 8, color: "#b71c1c", weight: 3, fillOpacity: 0.6 }).addTo(map);
    const lonInput = document.getElementById("move-lon"), latInput = document.getElementById("move-lat");
    if (lonInput && latInput) {
      let picked = null;
      map.on("click", (e) => {
        lonInput.value = e.latlng.lng.toFixed(6);
        latInput.value = e.latlng.lat.toFixed(6);
        if (picked) picked.remove();
        picked = L.marker(e.latlng).addTo(map);
      });
    }
    return drawZones(map);
  }

  function ready() {
    Promise.all([listMap(), caseMap()]).finally(() => { window.wuyeDeskReady = true; });
  }
  document.addEventListener("htmx:afterSettle", () => { window.wuyeDeskReady = false; ready(); });
  ready();
})();
