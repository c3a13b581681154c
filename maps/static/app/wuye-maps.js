/* wuye-gis map pages: data from our own API (vector tiles, paged GeoJSON), nothing from elsewhere.
 *
 * maps/pages.py builds the Leaflet map with folium and calls wuye.start(map, config).
 * window.wuyeReady becomes true once everything the page asked for has been drawn;
 * browser tests and snapshots wait on it (never on a timer).
 */
(function () {
  "use strict";
  const wuye = (window.wuye = {});
  let cfg = null;
  let map = null;
  let pending = 0;
  let started = false;
  const state = (wuye.state = { layers: {}, errors: [], kind: {} });
  window.wuyeReady = false;

  // -- plumbing -------------------------------------------------------------------------------------
  function token() {
    try { return localStorage.getItem("wuye_token"); } catch (e) { return null; }
  }
  function authHeaders(extra) {
    const h = Object.assign({}, extra || {});
    const t = token();
    if (t) h.Authorization = "Bearer " + t;
    return h;
  }
  async function getJSON(url) {
    let r = await fetch(url, { headers: authHeaders({ Accept: "application/geo+json, application/json" }) });
    if (r.status === 401 && token()) {  // a stale token must not hide public data
      r = await fetch(url, { headers: { Accept: "application/geo+json, application/json" } });
    }
    if (!r.ok) throw new Error(url + " → " + r.status);
    return r.json();
  }
  // Every page of an OGC items response (follows rel=next).
  async function allItems(url) {
    let features = [];
    let next = url;
    while (next) {
      const page = await getJSON(next);
      features = features.concat(page.features || []);
      const link = (page.links || []).find((l) => l.rel === "next");
      next = link ? link.href : null;
    }
    return features;
  }
  // Every page of GET /cases (keyset on next_after), at most maxPages.
  async function allCases(query, maxPages) {
    let features = [];
    let after = null;
    for (let i = 0; i < (maxPages || 20); i++) {
      const q = new URLSearchParams(query);
      q.set("limit", "1000");
      if (after) q.set("after", after);
      const page = await getJSON("/cases?" + q.toString());
      features = features.concat(page.features || []);
      after = page.next_after;
      if (!after) break;
    }
    return features;
  }
  wuye.pending = () => pending;  // for tests and debugging: promises still awaited
  function track(promise) {
    pending++;
    return Promise.resolve(promise)
      .catch((e) => { state.errors.push(String(e)); console.error("wuye:", e); })
      .finally(() => { pending--; checkReady(); });
  }
  function checkReady() {
    if (!started || pending > 0 || window.wuyeReady) return;
    // One frame later: Leaflet has painted the canvas.
    requestAnimationFrame(() => {
      if (pending > 0) return;
      window.wuyeReady = true;
      wuye.readyAt = performance.now();
      document.documentElement.dataset.ready = "1";
    });
  }
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  const T = (k) => (cfg.texts[k] || k);
  // The API's one error body: reason_zh is for people, reason for developers (and English pages).
  const catLabel = (c) => (cfg.lang === "en" ? c.name_en : c.name) || c.code; // a case category, by page language
  const reasonOf = (b) => (b ? (cfg.lang === "en" ? b.reason : b.reason_zh || b.reason) : "") || "";

  // -- display coordinates (identity unless the basemap is GCJ-02: then a grid from geo.coords) ------
  function shift(lon, lat) {
    const g = cfg.display;
    if (!g) return [0, 0];
    const fx = (lon - g.lon0) / g.step, fy = (lat - g.lat0) / g.step;
    const i = Math.max(0, Math.min(g.nx - 2, Math.floor(fx)));
    const j = Math.max(0, Math.min(g.ny - 2, Math.floor(fy)));
    const tx = fx - i, ty = fy - j;
    const at = (arr, a, b) => arr[b * g.nx + a];
    const bil = (arr) => at(arr, i, j) * (1 - tx) * (1 - ty) + at(arr, i + 1, j) * tx * (1 - ty)
      + at(arr, i, j + 1) * (1 - tx) * ty + at(arr, i + 1, j + 1) * tx * ty;
    return [bil(g.dlon), bil(g.dlat)];
  }
  wuye.toDisplay = function (lon, lat) {
    const d = shift(lon, lat);
    return L.latLng(lat + d[1], lon + d[0]);
  };
  wuye.fromDisplay = function (latlng) {  // fixed-point inverse, converges in a few steps
    let lon = latlng.lng, lat = latlng.lat;
    for (let k = 0; k < 4; k++) {
      const d = shift(lon, lat);
      lon = latlng.lng - d[0];
      lat = latlng.lat - d[1];
    }
    return [lon, lat];
  };
  const coordsToLatLng = (c) => wuye.toDisplay(c[0], c[1]);
  function storageGeometry(geojson) {  // display → stored coordinates, for writes
    const conv = (c) => (typeof c[0] === "number" ? wuye.fromDisplay(L.latLng(c[1], c[0])) : c.map(conv));
    return Object.assign({}, geojson, { coordinates: conv(geojson.coordinates) });
  }

  // -- page furniture: title + date, legend, scale, north arrow ----------------------------------------
  function today() {
    const d = new Date();
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  }
  function control(position, className, html) {
    const C = L.Control.extend({
      onAdd: function () {
        const div = L.DomUtil.create("div", "wuye-box " + className);
        div.innerHTML = html;
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
      },
    });
    const c = new C({ position: position });
    c.addTo(map);
    return c.getContainer();
  }
  function legendHtml(legends) {
    return "<b>" + esc(T("legend")) + "</b>" + legends.map((lg) =>
      '<div class="wuye-legend-block"><i>' + esc(lg.title) + "</i>" +
      lg.rows.map((r) => '<div><span class="wuye-swatch" style="background:' + esc(r.colour) + '"></span>' + esc(r.label) + "</div>").join("") +
      (lg.note ? '<div class="wuye-note">' + esc(lg.note) + "</div>" : "") + "</div>").join("");
  }
  function titleHtml() {
    return "<h1>" + esc(cfg.title) + '</h1><div class="wuye-date">' + esc(T("date")) + "：" + today() + "</div>";
  }
  function furniture() {
    wuye.titleBox = control("topleft", "wuye-title", titleHtml());
    control("topright", "wuye-north", '<div class="wuye-arrow">▲</div><div>' + esc(T("north")) + "</div>");
    L.control.scale({ metric: true, imperial: false, position: "bottomleft" }).addTo(map);
    if (cfg.legends && cfg.legends.length) {
      wuye.legend = control("bottomright", "wuye-legend", legendHtml(cfg.legends));
    }
  }
  function districtBounds() {
    const b = cfg.bounds;
    return b ? L.latLngBounds(wuye.toDisplay(b[0], b[1]), wuye.toDisplay(b[2], b[3])) : undefined;
  }
  function fitDistrict() {
    if (cfg.bounds) {
      const b = cfg.bounds;
      map.fitBounds(L.latLngBounds(wuye.toDisplay(b[0], b[1]), wuye.toDisplay(b[2], b[3])), { animate: false });
    }
  }
  // Our own boundaries as a quiet base (WUYE_BASEMAP=none).
  function baseLayers() {
    (cfg.baseLayers || []).forEach((entry) => {
      track(allItems("/collections/" + entry.name + "/items?limit=1000").then((features) => {
        const layer = L.geoJSON({ type: "FeatureCollection", features: features }, {
          coordsToLatLng: coordsToLatLng, interactive: false,
          style: { color: "#7f7f7f", weight: entry.name === "zones" ? 1 : 1.5, fill: entry.name === "zones",
                   fillColor: "#cccccc", fillOpacity: 0.15, dashArray: entry.name === "zones" ? null : "4 3" },
        }).addTo(map);
        state.layers["base:" + entry.name] = layer;
        restack();
      }));
    });
  }

  // Vector layers share one canvas and are painted in the order they were added, which is the order
  // their data happened to arrive: translucent fills and crossing lines then blended differently from
  // one load to the next. Stack them in a fixed order instead: the base layers at the back (in
  // configuration order), on the zone page its outline, sections and open cases on top, in that order.
  const STACK = ["zone", "sections", "cases"];
  function restack() {
    const present = (name) => state.layers[name] && map.hasLayer(state.layers[name]);
    (cfg.baseLayers || []).map((e) => "base:" + e.name).reverse().filter(present)
      .forEach((name) => state.layers[name].bringToBack());
    if (cfg.page === "zone") STACK.filter(present).forEach((name) => state.layers[name].bringToFront());
  }

  // How many features a layer has drawn, read from Leaflet's own state.
  // Overview grids count the features their cells stand for; detail grids count distinct codes.
  function gridCount(grid) {
    if (!map.hasLayer(grid) || !inZoomRange(grid)) return 0;
    const tiles = Object.entries(grid._vectorTiles).filter(([key]) => grid._tiles[key] && grid._tiles[key].current);
    if (grid.wuyeOverview) {
      let total = 0;
      tiles.forEach(([, r]) => Object.values(r._features || {}).forEach((f) => { total += f.feature.properties.count || 0; }));
      return total;
    }
    const ids = new Set();
    tiles.forEach(([, r]) => Object.keys(r._features || {}).forEach((id) => ids.add(id)));
    return ids.size;
  }
  wuye.drawn = function (name) {
    const layer = state.layers[name];
    if (!layer || !map.hasLayer(layer)) return 0;
    if (layer._vectorTiles) return gridCount(layer);
    const members = layer.getLayers ? layer.getLayers() : [];
    if (members.length && members.every((m) => m._vectorTiles)) {
      return members.reduce((n, m) => n + gridCount(m), 0);
    }
    if (layer.getLayers) return members.length;
    return 1;
  };

  // -- popups ----------------------------------------------------------------------------------------
  // Labels come from the server by vocabulary and key (layers/vocabulary.toml), never by position.
  function label(vocab, key) {
    const labels = (cfg.labels || {})[vocab] || {};
    return Object.prototype.hasOwnProperty.call(labels, key) ? labels[key] : key;
  }
  function conditionLabel(key) {
    return label("conditions", key);
  }
  async function facilityPopup(latlng, entry, code) {
    const f = await getJSON("/collections/" + entry.name + "/items/" + encodeURIComponent(code));
    const p = f.properties || {};
    L.popup().setLatLng(latlng).setContent(
      "<b>" + esc(entry.title) + "</b><br>" + esc(T("code")) + "：" + esc(code) + "<br>" + esc(T("condition")) + "：" +
      esc(conditionLabel(p.condition)) + "<br>" + esc(T("last_maintained")) + "：" + esc(p.last_maintained || p.last_inspected || "—")
    ).openOn(map);
  }
  function overviewStyle(entry) {
    return (props) => ({
      radius: entry.geometry.indexOf("Point") < 0 ? 3 : (entry.style.radius || 4), fill: true, fillOpacity: 0.9,
      weight: 1, color: entry.geometry.indexOf("Point") < 0 ? entry.style.color : "#333",
      fillColor: cfg.conditionColours[props.condition] || "#888", stroke: true,
    });
  }
  function facilityStyle(entry) {
    return (props) => ({
      radius: entry.style.radius || 4, fill: true, fillOpacity: 0.9, weight: 1, color: "#333",
      fillColor: cfg.conditionColours[props.condition] || "#888",
      stroke: true,
    });
  }

  // -- pages -----------------------------------------------------------------------------------------
  const pages = {};

  // VectorGrid puts coords.z in the URL without the zoomOffset Leaflet's TileLayer applies.
  const Grid512 = L.VectorGrid && L.VectorGrid.Protobuf.extend({
    _getVectorTilePromise: function (coords, tileBounds) {
      const shifted = { x: coords.x, y: coords.y, z: coords.z + (this.options.zoomOffset || 0) };
      return L.VectorGrid.Protobuf.prototype._getVectorTilePromise.call(this, shifted, tileBounds);
    },
  });

  function inZoomRange(layer) {
    const z = map.getZoom();
    return !((layer.options.minZoom !== undefined && z < layer.options.minZoom) ||
             (layer.options.maxZoom !== undefined && z > layer.options.maxZoom));
  }
  // Resolve once the grid's visible tiles have drawn (at once when its zoom range hides it).
  function gridDrawn(layer) {
    // 'load' fires when the visible tiles have arrived; the check also covers a grid whose tiles
    // were all in place (or none needed) before we started listening.
    // Leaflet may create the tiles a moment after the grid is added: no tiles yet is not done.
    const done = () => {
      if (!map.hasLayer(layer) || !inZoomRange(layer)) return true;
      const tiles = Object.values(layer._tiles).filter((t) => t.current);
      return !layer._loading && tiles.length > 0 && tiles.every((t) => t.loaded);
    };
    return new Promise((resolve) => {
      if (done()) { resolve(); return; }
      const finish = () => { if (done()) { layer.off("load", finish); clearInterval(timer); resolve(); } };
      layer.on("load", finish);
      const timer = setInterval(finish, 50);
    });
  }
  function vectorGrid(url, name, style, extra) {
    const styles = {};
    styles[name] = style;
    // 512-px tiles one zoom up: a quarter of the requests; none outside the district.
    return new Grid512(url, Object.assign({
      rendererFactory: L.canvas.tile, vectorTileLayerStyles: styles, interactive: true, maxZoom: 19,
      tileSize: 512, zoomOffset: -1, bounds: districtBounds(),
    }, extra));
  }
  // Overview tiles (one symbol per cell and condition, with its count; a polygon counts at its
  // centre) below detailZoom, every feature from detailZoom up.
  function facilityLayer(entry) {
    const detail = vectorGrid("/collections/" + entry.name + "/tiles/WebMercatorQuad/{z}/{x}/{y}", entry.name,
      facilityStyle(entry), { getFeatureId: (f) => f.properties.code });
    detail.on("click", (e) => facilityPopup(e.latlng, entry, e.layer.properties.code));
    detail.options.minZoom = cfg.detailZoom;
    let serial = 0;
    const overview = vectorGrid("/maps/overview/" + entry.name + "/{z}/{x}/{y}", entry.name, overviewStyle(entry),
      { maxZoom: cfg.detailZoom - 1, getFeatureId: () => "c" + (serial++) });
    overview.wuyeOverview = true;
    overview.on("click", (e) => map.setView(e.latlng, cfg.detailZoom));
    return L.layerGroup([overview, detail]);
  }

  pages.maintenance = function () {
    const overlays = {};
    cfg.layers.forEach((entry) => {
      let layer;
      if (!cfg.display) {
        layer = facilityLayer(entry);
        layer.addTo(map);
        layer.eachLayer((grid) => track(gridDrawn(grid)));
        map.on("moveend", () => {
          window.wuyeReady = false;
          layer.eachLayer((grid) => { if (map.hasLayer(layer) && grid._loading) track(gridDrawn(grid)); });
          checkReady();
        });
      } else {
        // GCJ-02 basemap: tiles cannot be shifted, so read the features as paged GeoJSON.
        layer = L.geoJSON(null, {
          coordsToLatLng: coordsToLatLng,
          pointToLayer: (f, ll) => L.circleMarker(ll, facilityStyle(entry)(f.properties)),
          onEachFeature: (f, l) => l.on("click", (e) => facilityPopup(e.latlng, entry, f.id)),
        }).addTo(map);
        track(allItems("/collections/" + entry.name + "/items?limit=10000").then((fs) => layer.addData(fs)));
      }
      state.layers[entry.name] = layer;
      overlays[entry.title] = layer;
    });
    wuye.layerControl = L.control.layers(null, overlays, { collapsed: false, position: "topright" }).addTo(map);
  };

  function caseMarker(f, ll) {
    const p = f.properties;
    const overdue = p.overdue && !p.closed_at;
    return L.circleMarker(ll, {
      radius: overdue ? 8 : 5, weight: overdue ? 3 : 1, color: overdue ? cfg.overdueColour : "#333",
      fillColor: cfg.stateColours[p.state] || "#888", fillOpacity: 0.9, className: overdue ? "wuye-overdue" : "",
    });
  }
  function casePopup(f) {
    const p = f.properties;
    return "<b>" + esc(p.code) + "</b> " + esc(p.category_zh || p.category) + "<br>" + esc(T("state")) + "：" +
      esc(stateLabel(p.state)) + (p.overdue && !p.closed_at ? ' <b style="color:red">' + esc(T("overdue")) + "</b>" : "") +
      "<br>" + esc(T("unit")) + "：" + esc(p.unit_name || "—") + "<br>" + esc(p.reported_at || "");
  }
  function stateLabel(key) {
    return label("case_states", key);
  }

  pages.cases = function () {
    const layer = L.geoJSON(null, {
      coordsToLatLng: coordsToLatLng, pointToLayer: caseMarker,
      onEachFeature: (f, l) => l.bindPopup(casePopup(f)),
    }).addTo(map);
    state.layers.cases = layer;
    const heat = L.heatLayer([], { radius: 25, blur: 18, maxZoom: 17 });
    state.layers.heat = heat;
    const stateOptions = Object.keys(cfg.stateColours).map((s) => '<option value="' + s + '">' + esc(stateLabel(s)) + "</option>").join("");
    const box = control("topright", "wuye-filters",
      '<label>' + esc(T("category")) + ' <select id="f-category"><option value="">' + esc(T("all")) + "</option></select></label>" +
      '<label>' + esc(T("state")) + ' <select id="f-state"><option value="">' + esc(T("all")) + "</option>" + stateOptions + "</select></label>" +
      '<label>' + esc(T("since")) + ' <input type="date" id="f-since"></label>' +
      '<label>' + esc(T("until")) + ' <input type="date" id="f-until"></label>' +
      '<label><input type="checkbox" id="f-heat"> ' + esc(T("heatmap")) + "</label>" +
      '<button type="button" id="f-apply">' + esc(T("apply")) + '</button> <span id="f-count"></span>');
    track(getJSON("/cases/categories").then((cats) => {
      const sel = box.querySelector("#f-category");
      cats.forEach((c) => { const o = document.createElement("option"); o.value = c.code; o.textContent = catLabel(c); sel.appendChild(o); });
    }));
    function load() {
      const q = {};
      const cat = box.querySelector("#f-category").value, st = box.querySelector("#f-state").value;
      const since = box.querySelector("#f-since").value, until = box.querySelector("#f-until").value;
      if (cat) q.category = cat;
      if (st) q.state = st;
      if (since) q.since = since + "T00:00:00+08:00";
      if (until) q.until = until + "T23:59:59+08:00";
      window.wuyeReady = false;
      return track(allCases(q).then((features) => {
        layer.clearLayers();
        layer.addData(features);
        heat.setLatLngs(features.map((f) => coordsToLatLng(f.geometry.coordinates)));
        box.querySelector("#f-count").textContent = String(features.length);
      }));
    }
    box.querySelector("#f-apply").addEventListener("click", load);
    box.querySelector("#f-heat").addEventListener("change", (e) => {
      if (e.target.checked) { heat.addTo(map); } else { map.removeLayer(heat); }
    });
    wuye.reloadCases = load;
    load();
  };

  function completionColour(share) {
    let colour = cfg.completionBreaks[0][1];
    cfg.completionBreaks.forEach((b) => { if (share >= b[0]) colour = b[1]; });
    return colour;
  }

  pages.remediation = function () {
    const progress = {};
    const layer = L.geoJSON(null, {
      coordsToLatLng: coordsToLatLng,
      style: (f) => {
        const row = progress[f.id];
        const fill = row && row.tasks ? completionColour(row.verified / row.tasks) : (cfg.phaseColours[f.properties.phase] || "#ccc");
        return { color: "#555", weight: 1.5, fillColor: fill, fillOpacity: 0.7 };
      },
      onEachFeature: (f, l) => l.bindPopup(() => {
        const p = f.properties, row = progress[f.id];
        let tasks = '<div class="wuye-note">' + esc(T("no_tasks")) + "</div>";
        if (row && row.tasks) {
          tasks = esc(T("tasks")) + "：" + row.tasks + "，" + esc(T("completion")) + " " + (row.verified_percent != null ? row.verified_percent : Math.round(100 * row.verified / row.tasks)) + "%<br>" +
            ["planned", "in_progress", "done", "verified", "overdue"].filter((k) => row[k] != null)
              .map((k) => esc((cfg.taskStates || {})[k] || k) + "：" + row[k]).join("；");
        }
        return "<b>" + esc(p.name) + "</b> (" + esc(f.id) + ")<br>" + esc(T("phase")) + "：" + esc(phaseLabel(p.phase)) +
          "<br>" + esc(T("households")) + "：" + esc(p.households == null ? "—" : p.households) + "<br>" + tasks +
          '<ul class="wuye-tasks"></ul>';
      }).on("popupopen", (e) => {
        // Each remediation item of the zone with its state, read when the popup opens.
        const row = progress[f.id];
        if (!cfg.zoneTasksUrl || !row || !row.tasks) return;
        getJSON(cfg.zoneTasksUrl.replace("{code}", encodeURIComponent(f.id))).then((body) => {
          const list = e.popup.getElement() && e.popup.getElement().querySelector(".wuye-tasks");
          if (!list) return;
          list.innerHTML = (body.features || []).map((t) => {
            const q = t.properties;
            return "<li>" + esc(q.item_zh || q.item) + (q.title ? "（" + esc(q.title) + "）" : "") + "：" +
              esc(q.state_zh || q.state) + (q.overdue ? ' <b style="color:red">' + esc(T("overdue")) + "</b>" : "") + "</li>";
          }).join("");
        }).catch((err) => console.warn(err));
      }),
    }).addTo(map);
    state.layers.zones = layer;
    const box = control("topright", "wuye-filters",
      '<label>' + esc(T("subdistrict")) + ' <select id="f-subdistrict"><option value="">' + esc(T("all_subdistricts")) + "</option></select></label>" +
      '<div id="f-tasks" class="wuye-note"></div>');
    track(allItems("/collections/subdistricts/items?limit=1000").then((subs) => {
      const sel = box.querySelector("#f-subdistrict");
      subs.forEach((s) => { const o = document.createElement("option"); o.value = s.id; o.textContent = s.properties.name || s.id; sel.appendChild(o); });
    }));
    function load() {
      const sub = box.querySelector("#f-subdistrict").value;
      window.wuyeReady = false;
      const url = "/collections/zones/items?limit=1000" + (sub ? "&subdistrict_code=" + encodeURIComponent(sub) : "");
      return track(allItems(url).then((features) => { layer.clearLayers(); layer.addData(features); }));
    }
    const loadProgress = cfg.progressUrl ? getJSON(cfg.progressUrl).then((body) => {
      const rows = Array.isArray(body) ? body : (body.progress || body.rows || []);
      rows.filter((r) => r.zone_code && (r.level == null || r.level === "zone")).forEach((r) => { progress[r.zone_code] = r; });
    }) : Promise.resolve();
    track(loadProgress.then(() => {
      const any = Object.values(progress).some((r) => r.tasks > 0);
      box.querySelector("#f-tasks").textContent = any ? "" : T("no_tasks");
      if (any && wuye.legend) {
        wuye.legend.innerHTML = legendHtml([{ title: T("completion"), rows: cfg.completionBreaks.map((b) => ({ colour: b[1], label: "≥ " + Math.round(b[0] * 100) + "%" })) }]);
      }
      return load();
    }));
    box.querySelector("#f-subdistrict").addEventListener("change", load);
    wuye.reloadZones = load;
  };
  function phaseLabel(key) {
    return label("phases", key);
  }

  // The zone page: its own layers (outline, sections, facilities, open cases) over the district's
  // quiet base layers. wuye.showZone(code) moves the same page to another zone (batch snapshots).
  let zoneLayers = [];
  function zoneLayer(name, layer) {
    state.layers[name] = layer;
    zoneLayers.push(layer);
    layer.addTo(map);
    if (STACK.indexOf(name) >= 0) restack();
    return layer;
  }
  function drawZone(code, zoneFeature) {
    const zonePromise = zoneFeature.then((zone) => {
      const outline = zoneLayer("zone", L.geoJSON(zone, { coordsToLatLng: coordsToLatLng, style: { color: "#d94801", weight: 3, fillOpacity: 0.08 } }));
      // reset: a view of its own, as on a fresh load. Without it a zone at the same zoom as the
      // view before is reached by a pan truncated to whole pixels, and drawn a fraction of a pixel off.
      map.fitBounds(outline.getBounds(), { padding: [30, 30], animate: false, reset: true });
      const b = outline.getBounds();
      const sw = wuye.fromDisplay(b.getSouthWest()), ne = wuye.fromDisplay(b.getNorthEast());
      return [sw[0], sw[1], ne[0], ne[1]].map((v) => v.toFixed(6)).join(",");
    });
    track(zonePromise);
    if (cfg.sectionLayer) {
      track(allItems("/collections/contract_sections/items?limit=1000&zone_code=" + encodeURIComponent(code)).then((fs) => {
        zoneLayer("sections", L.geoJSON({ type: "FeatureCollection", features: fs }, {
          coordsToLatLng: coordsToLatLng, style: { color: cfg.sectionLayer.style.color, weight: 2, dashArray: "6 4", fillOpacity: 0.05 },
          onEachFeature: (f, l) => l.bindTooltip(esc(f.properties.name || f.id)),
        }));
      }));
    }
    cfg.layers.forEach((entry) => {
      if (!cfg.display) {  // vector tiles of the zone's view (overview below detailZoom)
        track(zonePromise.then(() => {
          const layer = zoneLayer(entry.name, facilityLayer(entry));
          return Promise.all(layer.getLayers().map(gridDrawn));
        }));
        return;
      }
      track(zonePromise.then((bbox) => allItems("/collections/" + entry.name + "/items?limit=10000&bbox=" + bbox)).then((fs) => {
        zoneLayer(entry.name, L.geoJSON({ type: "FeatureCollection", features: fs }, {
          coordsToLatLng: coordsToLatLng,
          pointToLayer: (f, ll) => L.circleMarker(ll, facilityStyle(entry)(f.properties)),
          style: (f) => ({ color: entry.style.color, weight: 1, fillColor: cfg.conditionColours[f.properties.condition] || entry.style.fillColor, fillOpacity: 0.4 }),
          onEachFeature: (f, l) => l.on("click", (e) => facilityPopup(e.latlng, entry, f.id)),
        }));
      }));
    });
    track(allCases({ zone: code }).then((fs) => {
      const open = fs.filter((f) => !f.properties.closed_at && ["closed", "rejected", "duplicate"].indexOf(f.properties.state) < 0);
      zoneLayer("cases", L.geoJSON({ type: "FeatureCollection", features: open }, {
        coordsToLatLng: coordsToLatLng, pointToLayer: caseMarker, onEachFeature: (f, l) => l.bindPopup(casePopup(f)),
      }));
    }));
  }
  // [west, south, east, north] of a GeoJSON geometry's coordinates (what the server puts in cfg.bounds).
  function geometryBounds(geometry) {
    const b = [Infinity, Infinity, -Infinity, -Infinity];
    const walk = (c) => {
      if (typeof c[0] !== "number") { c.forEach(walk); return; }
      b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]); b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]);
    };
    walk(geometry.coordinates);
    return b;
  }

  pages.zone = function () {
    if (cfg.snapshot) document.documentElement.classList.add("wuye-snapshot");
    drawZone(cfg.zone, getJSON("/collections/zones/items/" + encodeURIComponent(cfg.zone)));
  };
  // Another zone in this page: what a fresh load of /maps/zones/{code} draws (title, bounds, the
  // zone's layers; furniture and base layers are the same), without reloading the page, Leaflet
  // and the district's base layers. Ready (window.wuyeReady) is signalled again once drawn; an
  // unknown zone ends drawn with its error in wuye.state.errors ("… → 404").
  wuye.showZone = function (code) {
    if (cfg.page !== "zone") throw new Error("showZone: not a zone page");
    window.wuyeReady = false;
    delete document.documentElement.dataset.ready;
    zoneLayers.forEach((layer) => map.removeLayer(layer));
    zoneLayers = [];
    ["zone", "sections", "cases"].concat(cfg.layers.map((e) => e.name)).forEach((k) => { delete state.layers[k]; });
    state.errors.length = 0;
    cfg.zone = code;
    const zoneFeature = getJSON("/collections/zones/items/" + encodeURIComponent(code)).then((zone) => {
      cfg.bounds = geometryBounds(zone.geometry);  // the facility grids ask only for tiles inside it
      cfg.title = cfg.zoneTitle.replace("{name}", (zone.properties || {}).name || zone.id);
      document.title = cfg.title;
      wuye.titleBox.innerHTML = titleHtml();
      return zone;
    });
    drawZone(code, zoneFeature);
    checkReady();
  };

  pages.plan = function () {
    const drawn = new L.FeatureGroup().addTo(map);
    state.layers.drawn = drawn;
    const entries = {};
    cfg.layers.forEach((e) => { entries[e.name] = e; });
    cfg.layers.forEach((entry) => {
      track(allItems("/collections/" + entry.name + "/items?limit=1000").then((fs) => {
        fs.forEach((f) => {
          L.geoJSON(f, { coordsToLatLng: coordsToLatLng, style: { color: entry.style.color, weight: 2, fillOpacity: 0.1 } })
            .eachLayer((l) => { l.wuye = { layer: entry.name, code: f.id, version: f.properties.version }; drawn.addLayer(l); });
        });
      }));
    });
    map.addControl(new L.Control.Draw({
      edit: { featureGroup: drawn, remove: false },
      draw: { polygon: { allowIntersection: false, showArea: true }, rectangle: true, polyline: false, circle: false, marker: false, circlemarker: false },
    }));
    const opts = cfg.layers.map((e) => '<option value="' + e.name + '">' + esc(e.title) + "</option>").join("");
    const panel = control("topright", "wuye-plan",
      "<b>" + esc(cfg.title) + "</b><p class=\"wuye-note\">" + esc(T("draw_hint")) + "</p>" +
      '<label>' + esc(T("layer")) + ' <select id="p-layer">' + opts + "</select></label>" +
      '<div id="p-fields"></div><button type="button" id="p-save">' + esc(T("save")) + "</button>" +
      '<div id="p-msg" role="alert"></div>');
    const msg = panel.querySelector("#p-msg");
    const fieldsFor = (name) => {
      const entry = entries[name];
      const attrs = [{ name: "code", title: T("code"), required: true, type: "text" }].concat(entry.attributes);
      panel.querySelector("#p-fields").innerHTML = attrs.filter((a) => a.required || a.name === "name").map((a) => {
        const id = "p-attr-" + a.name;
        if (a.values) {
          return "<label>" + esc(a.title) + ' <select id="' + id + '" data-attr="' + a.name + '" data-type="' + a.type + '">' +
            Object.entries(a.values).map(([k, v]) => '<option value="' + esc(k) + '"' + (k === a.default ? " selected" : "") + ">" + esc(v) + "</option>").join("") + "</select></label>";
        }
        return "<label>" + esc(a.title) + ' <input id="' + id + '" data-attr="' + a.name + '" data-type="' + a.type + '" value="' + esc(a.default || "") + '"></label>';
      }).join("");
    };
    panel.querySelector("#p-layer").addEventListener("change", (e) => fieldsFor(e.target.value));
    fieldsFor(cfg.layers[0].name);
    let created = null;
    const edited = new Set();
    map.on(L.Draw.Event.CREATED, (e) => {
      created = e.layer;
      created.setStyle({ color: "#e31a1c", weight: 3 });
      drawn.addLayer(created);
      msg.className = ""; msg.textContent = "";
    });
    map.on(L.Draw.Event.EDITED, (e) => { e.layers.eachLayer((l) => { if (l.wuye) edited.add(l); }); });
    function showError(body, status) {
      msg.className = "wuye-error";
      const rows = (body.violations || []).map((v) => "<li>" + esc(v.kind) + "：" + esc(v.layer) + " " + esc(v.code || "") +
        (v.other_code ? " ↔ " + esc(v.other_layer || "") + " " + esc(v.other_code) : "") +
        (v.area_m2 != null ? "，" + Number(v.area_m2).toFixed(1) + " m²" : "") + "</li>").join("");
      msg.innerHTML = esc(T("save_failed")) + " (" + status + ")：" + esc(reasonOf(body)) + (rows ? "<ul>" + rows + "</ul>" : "");
    }
    async function send(method, url, body, headers) {
      const r = await fetch(url, { method: method, body: JSON.stringify(body), headers: authHeaders(headers) });
      const text = await r.text();
      let parsed = {};
      try { parsed = text ? JSON.parse(text) : {}; } catch (e) { parsed = { reason: text }; }
      return { ok: r.ok, status: r.status, body: parsed, etag: r.headers.get("ETag") };
    }
    async function save() {
      if (!token()) {
        msg.className = "wuye-error";
        msg.innerHTML = esc(T("sign_in")) + ' <a href="/login?next=/maps/plan">/login</a>';
        return;
      }
      if (created) {
        const name = panel.querySelector("#p-layer").value;
        const props = {};
        panel.querySelectorAll("[data-attr]").forEach((el) => {
          if (el.value === "") return;
          props[el.dataset.attr] = el.dataset.type === "text_list" ? el.value.split(/[,，\s]+/).filter(Boolean)
            : el.dataset.type === "integer" ? parseInt(el.value, 10) : el.value;
        });
        const geometry = storageGeometry(created.toGeoJSON().geometry);
        const r = await send("POST", "/collections/" + name + "/items", { type: "Feature", properties: props, geometry: geometry },
          { "Content-Type": "application/geo+json" });
        if (!r.ok) { showError(r.body, r.status); return; }  // the drawing stays on the map
        created.wuye = { layer: name, code: r.body.id, version: (r.body.properties || {}).version };
        created.setStyle({ color: entries[name].style.color, weight: 2 });
        created = null;
      }
      for (const l of Array.from(edited)) {
        const r = await send("PATCH", "/collections/" + l.wuye.layer + "/items/" + encodeURIComponent(l.wuye.code),
          { geometry: storageGeometry(l.toGeoJSON().geometry) },
          { "Content-Type": "application/merge-patch+json", "If-Match": '"' + l.wuye.version + '"' });
        if (!r.ok) { showError(r.body, r.status); return; }
        l.wuye.version = (r.body.properties || {}).version || (r.etag || "").replace(/"/g, "");
        edited.delete(l);
      }
      msg.className = "wuye-ok";
      msg.textContent = T("saved");
    }
    panel.querySelector("#p-save").addEventListener("click", () => { save().catch((e) => showError({ reason: String(e) }, "")); });
    wuye.plan = { drawn: drawn, save: save };
  };

  pages.report = function () {
    document.body.classList.add("wuye-report-page");
    const panel = document.createElement("section");
    panel.className = "wuye-report";
    panel.innerHTML =
      "<h1>" + esc(cfg.title) + "</h1>" +
      '<div><b>' + esc(T("position")) + '</b>：<span id="r-pos">—</span> <button type="button" id="r-gps">' + esc(T("use_gps")) + "</button> " +
      '<span class="wuye-note">' + esc(T("tap_hint")) + "</span></div>" +
      '<label>' + esc(T("category")) + ' <select id="r-category" required></select></label>' +
      '<label>' + esc(T("description")) + ' <textarea id="r-description" rows="3" maxlength="2000"></textarea></label>' +
      '<label>' + esc(T("photo")) + ' <input type="file" id="r-photo" accept="image/*" capture="environment"></label>' +
      '<button type="button" id="r-submit">' + esc(T("submit")) + '</button><div id="r-msg" role="alert"></div><div id="r-result"></div>';
    document.body.appendChild(panel);
    setTimeout(() => map.invalidateSize(), 0);
    let position = null;
    let marker = null;
    function place(latlng, pos) {
      position = pos;
      if (marker) marker.setLatLng(latlng); else marker = L.circleMarker(latlng, { radius: 9, color: "#d7191c", weight: 3 }).addTo(map);
      state.layers.position = marker;
      panel.querySelector("#r-pos").textContent = pos.lon.toFixed(6) + ", " + pos.lat.toFixed(6);
    }
    // A tap is in the basemap's system (CGCS2000, or GCJ-02 on AMap); the server converts it once.
    map.on("click", (e) => place(e.latlng, { lon: e.latlng.lng, lat: e.latlng.lat, coord_sys: cfg.coordSys }));
    panel.querySelector("#r-gps").addEventListener("click", () => {
      navigator.geolocation.getCurrentPosition((p) => {
        const lon = p.coords.longitude, lat = p.coords.latitude;  // phone GPS: WGS84
        const ll = wuye.toDisplay(lon, lat);
        map.setView(ll, 17);
        place(ll, { lon: lon, lat: lat, coord_sys: "wgs84" });
      }, (err) => { panel.querySelector("#r-msg").textContent = err.message; }, { enableHighAccuracy: true, timeout: 15000 });
    });
    track(getJSON("/cases/categories").then((cats) => {
      const sel = panel.querySelector("#r-category");
      cats.forEach((c) => { const o = document.createElement("option"); o.value = c.code; o.textContent = catLabel(c); sel.appendChild(o); });
    }));
    const key = "r" + Date.now().toString(36) + Math.random().toString(36).slice(2);
    panel.querySelector("#r-submit").addEventListener("click", async () => {
      const out = panel.querySelector("#r-msg");
      out.className = "wuye-error";
      if (!position) { out.textContent = T("position") + "?"; return; }
      const body = Object.assign({ category: panel.querySelector("#r-category").value,
        description: panel.querySelector("#r-description").value || null }, position);
      const r = await fetch("/cases", { method: "POST", body: JSON.stringify(body),
        headers: authHeaders({ "Content-Type": "application/json", "Idempotency-Key": key }) });
      const answer = await r.json();
      if (!r.ok) { out.textContent = T("save_failed") + "：" + (reasonOf(answer) || r.status); return; }
      out.className = "wuye-ok";
      out.textContent = T("reported");
      const p = answer.properties || answer;
      const dups = answer.possible_duplicates || p.possible_duplicates || [];
      let html = '<p><b>' + esc(T("case_no")) + '</b>：<span id="r-code">' + esc(p.code || answer.id) + '</span><br><b>' + esc(T("unit")) +
        '</b>：<span id="r-unit">' + esc(p.unit_name || p.unit_code || "—") + "</span></p>";
      html += "<p><b>" + esc(T("duplicates")) + "</b>：" + (dups.length ? "<ul>" + dups.map((d) => "<li>" + esc(d.code) + " " + esc(d.state_zh || d.state) + "，" + Math.round(d.distance_m) + " m</li>").join("") + "</ul>" : esc(T("none_found"))) + "</p>";
      const file = panel.querySelector("#r-photo").files[0];
      if (file && token()) {
        const form = new FormData();
        form.append("photo", file);
        const up = await fetch("/cases/" + encodeURIComponent(p.code || answer.id) + "/photos", { method: "POST", body: form, headers: authHeaders() });
        html += "<p>" + esc(T("photo")) + "：" + (up.ok ? "✓" : up.status) + "</p>";
      } else if (file) {
        html += '<p class="wuye-note">' + esc(T("photo_needs_login")) + "</p>";
      }
      panel.querySelector("#r-result").innerHTML = html;
    });
  };

  // -- start -------------------------------------------------------------------------------------------
  wuye.start = function (leafletMap, config) {
    map = leafletMap;
    cfg = config;
    wuye.map = map;
    wuye.config = cfg;
    map.attributionControl.setPrefix(false);
    // Without a basemap folium leaves the map's maxZoom unset; Leaflet would then take it from
    // the layers and clamp the view to the overview grids' maxZoom when they are added.
    map.options.maxZoom = cfg.maxZoom;
    map.options.minZoom = 3;
    fitDistrict();
    furniture();
    baseLayers();
    pages[cfg.page]();
    started = true;
    checkReady();
  };
})();
