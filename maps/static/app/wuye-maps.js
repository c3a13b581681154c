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
  // The district's boundaries are read once per page, whoever asks (base layers, pickers, search).
  const boundaries = {};
  function boundaryItems(name) {
    const url = "/collections/" + name + "/items?limit=1000";
    if (!boundaries[url]) boundaries[url] = allItems(url);
    return boundaries[url];
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
  const categoryNames = {};  // code → name in the page's language, once /cases/categories has been read
  function categories() {
    return getJSON("/cases/categories").then((cats) => { cats.forEach((c) => { categoryNames[c.code] = catLabel(c); }); return cats; });
  }
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
  function today() {  // the date in Asia/Shanghai, as every time on the pages
    return localTime(new Date().toISOString()).slice(0, 10);
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
  // On a phone the legend folds to its title (a tap opens it), so it does not cover the map.
  function legendHtml(legends) {
    const open = cfg.snapshot || window.innerWidth >= 600 ? " open" : "";
    return "<details" + open + "><summary><b>" + esc(T("legend")) + "</b></summary>" + legends.map((lg) =>
      '<div class="wuye-legend-block"><i>' + esc(lg.title) + "</i>" +
      lg.rows.map((r) => "<div>" + swatch(r) + esc(r.label) + "</div>").join("") +
      (lg.note ? '<div class="wuye-note">' + esc(lg.note) + "</div>" : "") + "</div>").join("") + "</details>";
  }
  // A legend swatch: the kind's symbol (shape) or the value's colour.
  function swatch(row) {
    if (!row.shape) return '<span class="wuye-swatch" style="background:' + esc(row.colour) + '"></span>';
    const d = { circle: '<circle cx="7" cy="7" r="5"/>', square: '<rect x="2.5" y="2.5" width="9" height="9"/>',
      triangle: '<path d="M7 1.5 L12.5 11.5 L1.5 11.5 Z"/>', diamond: '<path d="M7 1 L13 7 L7 13 L1 7 Z"/>',
      polygon: '<path d="M2 3 L10 1.5 L12.5 9 L5 12.5 Z"/>',
      hexagon: '<path d="M4 1.5 L10 1.5 L13 7 L10 12.5 L4 12.5 L1 7 Z"/>',
      star: '<path d="M7 1 L8.8 5.2 L13 5.5 L9.8 8.3 L10.8 12.8 L7 10.4 L3.2 12.8 L4.2 8.3 L1 5.5 L5.2 5.2 Z"/>',
      cross: '<path d="M5 1.5 H9 V5 H12.5 V9 H9 V12.5 H5 V9 H1.5 V5 H5 Z"/>' }[row.shape] || "";
    if (row.shape === "line") {  // a line kind: its dash pattern and width, in dark grey
      return '<svg class="wuye-kind" width="22" height="14" viewBox="0 0 22 14" aria-hidden="true">' +
        '<line x1="1" y1="7" x2="21" y2="7" stroke="#222" stroke-width="' + esc(String(Math.min(row.weight || 3, 5))) +
        '" stroke-dasharray="' + esc(row.dash || "") + '"/></svg>';
    }
    return '<svg class="wuye-kind" width="14" height="14" viewBox="0 0 14 14" aria-hidden="true">' +
      '<g fill="' + esc(row.colour) + '" stroke="#222" stroke-width="1.2">' + d + "</g></svg>";
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
  // A view in the address (#zoom/lat/lon, as map sites write it): a link opens the same view.
  function hashView() {
    const m = /^#(\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)$/.exec(location.hash);
    if (!m) return false;
    map.setView([Number(m[2]), Number(m[3])], Number(m[1]), { animate: false });
    return true;
  }
  function keepHash() {
    map.on("moveend", () => {
      const c = map.getCenter();
      history.replaceState(null, "", location.pathname + location.search + "#" + map.getZoom() + "/" + c.lat.toFixed(6) + "/" + c.lng.toFixed(6));
    });
  }
  // Pages open on the programme zones (cfg.view), not the whole district where each zone is ~10 px.
  function fitDistrict() {
    const b = cfg.view || cfg.bounds;
    if (b) map.fitBounds(L.latLngBounds(wuye.toDisplay(b[0], b[1]), wuye.toDisplay(b[2], b[3])), { animate: false, padding: [20, 20] });
  }
  // The navigation bar (built by the server): sign-in state and the sign-in link's way back.
  function navBar() {
    const nav = document.querySelector(".wuye-nav");
    if (!nav) return;
    // signed in: a token of the page's own, or a session the server named in the bar
    const signedIn = !!token() || !!nav.querySelector("[data-user]");
    nav.querySelectorAll("[data-signed-in]").forEach((el) => { el.hidden = !signedIn; });
    nav.querySelectorAll("[data-signed-out]").forEach((el) => { el.hidden = signedIn; });
    const login = nav.querySelector(".wuye-nav-login");
    if (login) login.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    const logout = nav.querySelector(".wuye-nav-logout");
    if (logout) logout.addEventListener("click", async (e) => {
      if (!token()) return;  // a page session: the form signs out
      e.preventDefault();
      try { await fetch("/auth/logout", { method: "POST", headers: authHeaders() }); } catch (err) { /* signed out here anyway */ }
      try { localStorage.removeItem("wuye_token"); } catch (err) { /* private mode */ }
      logout.form.submit();
    });
  }
  // Zone names: above the fills, below popups; clicks pass through them to the map.
  function labelPane() {
    if (!map.getPane("wuyeLabels")) {
      const pane = map.createPane("wuyeLabels");
      pane.style.zIndex = 450;
      pane.style.pointerEvents = "none";
    }
    return "wuyeLabels";
  }
  // The one case or position a page is about (report, follow): above the zone names, so a name
  // written at a zone's centre never hides the marker under it.
  function focusPane() {
    if (!map.getPane("wuyeFocus")) map.createPane("wuyeFocus").style.zIndex = 460;
    return "wuyeFocus";
  }
  // Zone names from the zoom at which they fit inside their zone.
  function zoneLabels(group) {
    const update = () => {
      group.eachLayer((l) => {
        const name = (l.feature.properties || {}).name || l.feature.id;
        if (!l.getTooltip()) l.bindTooltip(esc(name), { permanent: true, direction: "center", className: "wuye-zone-label", opacity: 1, pane: labelPane() });
        const b = l.getBounds();
        const w = map.latLngToContainerPoint(b.getNorthEast()).x - map.latLngToContainerPoint(b.getSouthWest()).x;
        const fits = w >= name.length * 13 + 10;
        if (fits && !l.isTooltipOpen()) l.openTooltip(); else if (!fits && l.isTooltipOpen()) l.closeTooltip();
      });
    };
    map.on("zoomend", update);
    update();
    return update;
  }
  // Our own boundaries as a quiet base (WUYE_BASEMAP=none).
  function baseLayers() {
    (cfg.baseLayers || []).forEach((entry) => {
      track(boundaryItems(entry.name).then((features) => {
        const layer = L.geoJSON({ type: "FeatureCollection", features: features }, {
          coordsToLatLng: coordsToLatLng, interactive: false,
          style: { color: "#7f7f7f", weight: entry.name === "zones" ? 1 : 1.5, fill: entry.name === "zones",
                   fillColor: "#cccccc", fillOpacity: 0.15, dashArray: entry.name === "zones" ? null : "4 3" },
        }).addTo(map);
        state.layers["base:" + entry.name] = layer;
        if (entry.name === "zones") {
          zoneLabels(layer);
          if (cfg.page !== "report" && cfg.page !== "follow") clickableGeoJSON(220, layer, (f) => f.properties.name || f.id, areaPopup);
        }
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
  // Times as people here read them: Asia/Shanghai, "2026-11-30 09:15" (a bare date stays a date).
  const shanghai = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  function localTime(iso) {
    if (!iso) return "—";
    if (/^\d{4}-\d{2}-\d{2}$/.test(iso)) return iso;
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    const parts = Object.fromEntries(shanghai.formatToParts(d).map((x) => [x.type, x.value]));
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute;
  }
  wuye.localTime = localTime;
  function openPopup(latlng, html) {
    return L.popup({ maxWidth: 320 }).setLatLng(latlng).setContent(html).openOn(map);
  }
  // A facility's popup opens at once with what the tile knows (code, condition) and then reads the
  // feature for the rest (last maintenance); ``known`` is the tile's properties, if any.
  async function facilityPopup(latlng, entry, code, known) {
    const html = (p, more) => "<b>" + esc(entry.title) + "</b><br>" + esc(T("code")) + "：" + esc(code) + "<br>" +
      esc(T("condition")) + "：" + '<span class="wuye-value" data-key="' + esc(p.condition) + '">' +
      esc(conditionLabel(p.condition)) + "</span><br>" + esc(T("last_maintained")) + "：" + more;
    const popup = known ? openPopup(latlng, html(known, "…")) : null;
    const f = await getJSON("/collections/" + entry.name + "/items/" + encodeURIComponent(code));
    const p = f.properties || {};
    const full = html(p, esc(localTime(p.last_maintained || p.last_inspected)));
    if (!popup) openPopup(latlng, full); else if (map.hasLayer(popup)) popup.setContent(full);
  }
  // Overview symbols stand for a tile cell: its count, the count by condition, and a way in.
  function overviewPopup(latlng, entry, props) {
    const rows = String(props.detail || "").split(",").filter(Boolean).map((kv) => {
      const [k, n] = kv.split(":");
      return "<li>" + esc(conditionLabel(k)) + "：" + esc(n) + "</li>";
    }).join("");
    const div = L.DomUtil.create("div", "wuye-overview-popup");
    div.innerHTML = "<b>" + esc(entry.title) + "</b> " + esc(props.count) + "<ul>" + rows + "</ul>" +
      '<button type="button" class="wuye-zoom-in">' + esc(T("zoom_in")) + "</button>";
    div.querySelector("button").addEventListener("click", () => { map.closePopup(); map.setView(latlng, cfg.detailZoom); });
    openPopup(latlng, div);
  }
  // Point symbols: a shape per facility kind (the legend shows them), filled by condition.
  function symbolPath(ctx, shape, x, y, r) {
    ctx.beginPath();
    if (shape === "square") {
      ctx.rect(x - r * 0.9, y - r * 0.9, r * 1.8, r * 1.8);
    } else if (shape === "triangle") {
      ctx.moveTo(x, y - r * 1.2); ctx.lineTo(x + r * 1.1, y + r * 0.8); ctx.lineTo(x - r * 1.1, y + r * 0.8); ctx.closePath();
    } else if (shape === "diamond") {
      ctx.moveTo(x, y - r * 1.2); ctx.lineTo(x + r * 1.2, y); ctx.lineTo(x, y + r * 1.2); ctx.lineTo(x - r * 1.2, y); ctx.closePath();
    } else if (shape === "hexagon") {
      for (let i = 0; i < 6; i++) {
        const a = Math.PI / 3 * i;
        if (i) ctx.lineTo(x + r * 1.1 * Math.cos(a), y + r * 1.1 * Math.sin(a)); else ctx.moveTo(x + r * 1.1, y);
      }
      ctx.closePath();
    } else if (shape === "star") {
      for (let i = 0; i < 10; i++) {
        const a = -Math.PI / 2 + Math.PI / 5 * i, q = i % 2 ? r * 0.55 : r * 1.3;
        if (i) ctx.lineTo(x + q * Math.cos(a), y + q * Math.sin(a)); else ctx.moveTo(x + q * Math.cos(a), y + q * Math.sin(a));
      }
      ctx.closePath();
    } else if (shape === "cross") {
      const a = r * 0.4, b = r * 1.1;
      ctx.moveTo(x - a, y - b); ctx.lineTo(x + a, y - b); ctx.lineTo(x + a, y - a); ctx.lineTo(x + b, y - a);
      ctx.lineTo(x + b, y + a); ctx.lineTo(x + a, y + a); ctx.lineTo(x + a, y + b); ctx.lineTo(x - a, y + b);
      ctx.lineTo(x - a, y + a); ctx.lineTo(x - b, y + a); ctx.lineTo(x - b, y - a); ctx.lineTo(x - a, y - a); ctx.closePath();
    } else {
      ctx.arc(x, y, r, 0, Math.PI * 2, false);
    }
  }
  // Where a point symbol is drawn in its tile (overview symbols sit in their layer's quarter of the cell).
  function symbolAt(feat) {
    const o = feat.options || {};
    return L.point(feat._point.x + (o.dx || 0), feat._point.y + (o.dy || 0));
  }
  const ShapeTile = L.Canvas.Tile && L.Canvas.Tile.extend({
    _updateCircle: function (layer) {
      if (!this._drawing || layer._empty()) return;
      const o = layer.options || {};
      const p = symbolAt(layer), ctx = this._ctx, r = Math.max(layer._radius, 1);
      symbolPath(ctx, o.shape, p.x, p.y, r);
      this._fillStroke(ctx, layer);
      if (o.text) {  // overview counts: dark text on a light halo, readable on any fill
        ctx.font = "bold " + (o.textSize || 11) + 'px "Noto Sans CJK SC", sans-serif';
        ctx.textAlign = "center"; ctx.textBaseline = "middle";
        ctx.lineWidth = 3; ctx.strokeStyle = "rgba(255,255,255,0.9)"; ctx.strokeText(o.text, p.x, p.y);
        ctx.fillStyle = "#111"; ctx.fillText(o.text, p.x, p.y);
      }
    },
  });
  const shapeTile = (coords, size, opts) => new ShapeTile(coords, size, opts);
  function countText(n) {
    return n >= 10000 ? Math.round(n / 1000) + "k" : n >= 1000 ? (n / 1000).toFixed(1) + "k" : String(n);
  }
  // Each layer's overview symbol sits in its own quarter of the cell, so layers never cover each other.
  const QUARTERS = [[-1, -1], [1, -1], [-1, 1], [1, 1]];
  function overviewStyle(entry, index) {
    const q = QUARTERS[index % 4], cell = cfg.overviewCellPx || 64;
    return (props) => {
      const text = countText(props.count || 0);
      return {
        shape: entry.style.shape, radius: Math.max(7, 3 + 3.4 * text.length), fill: true, fillOpacity: 0.85, weight: 1.5,
        color: "#222", fillColor: cfg.conditionColours[props.condition] || "#888", stroke: true,
        dx: q[0] * cell / 4, dy: q[1] * cell / 4, text: text, textSize: 11,
      };
    };
  }
  function facilityStyle(entry) {
    if (entry.style.shape === "line") {  // a line in its condition's colour, its kind's dashes
      return (props) => ({
        color: cfg.conditionColours[props.condition] || "#888", weight: entry.style.weight || 3, opacity: 0.95,
        dashArray: entry.style.dashArray || null, fill: false, stroke: true,
      });
    }
    return (props) => ({
      shape: entry.style.shape, radius: entry.style.radius || 5, fill: true, fillOpacity: 0.95, weight: 1, color: "#222",
      fillColor: cfg.conditionColours[props.condition] || "#888", stroke: true,
    });
  }

  // -- clicks: one path for every clickable thing --------------------------------------------------------
  // Leaflet.VectorGrid 1.3's own click handling does not answer a real mouse click under Leaflet 1.9
  // (the tile canvases' offsets and the overlay canvas above them), so no layer handles its own
  // clicks: the map's click asks every clickable layer what lies under the pointer, from the decoded
  // tiles (vector grids) or Leaflet's projected shapes (GeoJSON layers). Points (cases, facilities,
  // overview symbols) come before areas; of the areas only the topmost layer answers. One hit opens
  // its popup, several a list to choose from.
  const clickables = [];
  const TOLERANCE = 5;  // px beyond a symbol's edge that still counts (a finger is not a pixel)
  function clickable(rank, layer, hits) {
    clickables.push({ rank: rank, layer: layer, hits: hits });
    clickables.sort((a, b) => a.rank - b.rank);
  }
  const POINT_RANKS = 100;  // ranks below it are points, above it areas
  function hitsAt(latlng) {
    const found = [];
    clickables.forEach((c) => {
      if (c.layer && !map.hasLayer(c.layer)) return;
      c.hits(latlng).forEach((h) => found.push(Object.assign({ rank: c.rank }, h)));
    });
    if (!found.length) return [];
    if (found[0].rank < POINT_RANKS) return found.filter((h) => h.rank < POINT_RANKS);
    return found.filter((h) => h.rank === found[0].rank);
  }
  wuye.hitsAt = (lat, lng) => hitsAt(L.latLng(lat, lng)).map((h) => h.label);  // for tests: read-only
  function listPopup(latlng, hits) {
    const div = L.DomUtil.create("div", "wuye-hits");
    div.innerHTML = "<b>" + esc(T("here")) + "（" + hits.length + "）</b><ul>" +
      hits.map((h, i) => '<li><a href="#" data-i="' + i + '">' + esc(h.label) + "</a></li>").join("") + "</ul>";
    div.querySelectorAll("a").forEach((a) => a.addEventListener("click", (ev) => {
      ev.preventDefault();
      Promise.resolve(hits[Number(a.dataset.i)].open(latlng)).catch((e) => console.error("wuye:", e));
    }));
    openPopup(latlng, div);
  }
  // The pointer shows a hand over anything a click would answer (checked once a frame at most).
  function hoverCursor() {
    let queued = null;
    map.on("mousemove", (e) => {
      const first = !queued;
      queued = e.latlng;
      if (!first) return;
      requestAnimationFrame(() => {
        const at = queued;
        queued = null;
        map.getContainer().style.cursor = hitsAt(at).length ? "pointer" : "";
      });
    });
  }
  function onMapClick(e) {
    const hits = hitsAt(e.latlng);
    if (hits.length === 1) Promise.resolve(hits[0].open(e.latlng)).catch((err) => console.error("wuye:", err));
    else if (hits.length > 1) listPopup(e.latlng, hits);
  }
  // The features of a vector grid under latlng: read from the decoded tile under the pointer.
  function ringsContain(parts, p) {
    let inside = false;
    parts.forEach((ring) => {
      for (let j = 0, k = ring.length - 1; j < ring.length; k = j++) {
        const a = ring[j], b = ring[k];
        if (((a.y > p.y) !== (b.y > p.y)) && (p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x)) inside = !inside;
      }
    });
    return inside;
  }
  function gridHits(grid, latlng) {
    if (!map.hasLayer(grid) || !inZoomRange(grid) || grid._tileZoom === undefined) return [];
    const size = grid.getTileSize(), z = grid._tileZoom;
    const px = map.project(latlng, z), scale = map.getZoomScale(map.getZoom(), z);
    const x = Math.floor(px.x / size.x), y = Math.floor(px.y / size.y);
    const key = x + ":" + y + ":" + z;
    const renderer = grid._vectorTiles[key];
    if (!renderer || !grid._tiles[key] || !grid._tiles[key].current) return [];
    const local = L.point(px.x - x * size.x, px.y - y * size.y);
    const out = [];
    Object.values(renderer._features || {}).forEach((entry) => {
      const feat = entry.feature;
      if (!feat || !feat.options) return;
      if (feat._point) {
        const r = (feat._radius || 4) * 1.2 + ((feat.options.weight || 0) / 2 + TOLERANCE) / scale;
        if (symbolAt(feat).distanceTo(local) <= r) out.push(feat.properties);
      } else if (feat._parts && ringsContain(feat._parts, local)) {
        out.push(feat.properties);
      }
    });
    return out.reverse();  // drawn last, on top
  }
  // The features of a GeoJSON layer under latlng, topmost first.
  function geojsonHits(group, latlng) {
    const lp = map.latLngToLayerPoint(latlng);
    const out = [];
    group.eachLayer((l) => {
      if (l instanceof L.CircleMarker) {
        if (map.latLngToLayerPoint(l.getLatLng()).distanceTo(lp) <= l.getRadius() + (l.options.weight || 0) / 2 + TOLERANCE) out.push(l);
      } else if (l._containsPoint && l._parts && l._containsPoint(lp)) {
        out.push(l);
      }
    });
    return out.reverse();
  }
  // A GeoJSON layer whose features open popup(feature, layer) when clicked.
  function clickableGeoJSON(rank, group, labelOf, popupOf) {
    clickable(rank, group, (latlng) => geojsonHits(group, latlng).map((l) => ({
      label: labelOf(l.feature), open: (at) => popupOf(l.feature, at, l),
    })));
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
  // After the view moves, the page is ready again only once the grids' new tiles have drawn (a click,
  // a snapshot or a test waits for it).
  function redrawnOnMove(group) {
    map.on("moveend", () => {
      window.wuyeReady = false;
      group.eachLayer((grid) => { if (map.hasLayer(group) && grid._loading) track(gridDrawn(grid)); });
      checkReady();
    });
  }
  function vectorGrid(url, name, style, extra) {
    const styles = {};
    styles[name] = style;
    // 512-px tiles one zoom up: a quarter of the requests; none outside the district.
    return new Grid512(url, Object.assign({
      // interactive: false: clicks are answered by the map (see "clicks" above), not by each tile.
      rendererFactory: shapeTile, vectorTileLayerStyles: styles, interactive: false, maxZoom: 19,
      tileSize: 512, zoomOffset: -1, bounds: districtBounds(),
    }, extra));
  }
  // Overview tiles (one symbol per cell and condition, with its count; a polygon counts at its
  // centre) below detailZoom, every feature from detailZoom up.
  function facilityLayer(entry) {
    const index = cfg.layers.indexOf(entry);
    const detail = vectorGrid("/collections/" + entry.name + "/tiles/WebMercatorQuad/{z}/{x}/{y}", entry.name,
      facilityStyle(entry), { getFeatureId: (f) => f.properties.code });
    detail.options.minZoom = cfg.detailZoom;
    let serial = 0;
    const overview = vectorGrid("/maps/overview/" + entry.name + "/{z}/{x}/{y}", entry.name, overviewStyle(entry, index),
      { maxZoom: cfg.detailZoom - 1, getFeatureId: () => "c" + (serial++) });
    overview.wuyeOverview = true;
    const group = L.layerGroup([overview, detail]);
    const isPoint = entry.geometry.indexOf("Point") >= 0;
    clickable((isPoint ? 20 : 110) + index, group, (latlng) => gridHits(detail, latlng).map((props) => ({
      label: entry.title + " " + props.code + "（" + conditionLabel(props.condition) + "）",
      open: (at) => facilityPopup(at, entry, props.code, props),
    })));
    clickable(40 + index, group, (latlng) => gridHits(overview, latlng).map((props) => ({
      label: entry.title + " × " + props.count,
      open: (at) => overviewPopup(at, entry, props),
    })));
    return group;
  }

  // "Go to": a sub-district or zone by name; choosing one zooms the map to it.
  function placePicker() {
    const box = control("topleft", "wuye-goto", '<label>' + esc(T("go_to")) + ' <select id="f-goto"><option value="">—</option></select></label>');
    const sel = box.querySelector("#f-goto");
    const shapes = {};
    const group = (title, features, prefix) => {
      const g = document.createElement("optgroup");
      g.label = title;
      features.forEach((f) => {
        shapes[prefix + f.id] = f;
        const o = document.createElement("option"); o.value = prefix + f.id; o.textContent = f.properties.name || f.id; g.appendChild(o);
      });
      sel.appendChild(g);
    };
    // not awaited by the ready signal: the picker is not part of the drawing (its options come with
    // the base layers' own reading of the boundaries)
    Promise.all([boundaryItems("subdistricts"), boundaryItems("zones")])
      .then(([subs, zones]) => { group(T("subdistrict"), subs, "s:"); group(T("zones"), zones, "z:"); })
      .catch((e) => { state.errors.push(String(e)); });
    sel.addEventListener("change", () => {
      const f = shapes[sel.value];
      if (!f) { fitDistrict(); return; }
      map.fitBounds(L.geoJSON(f, { coordsToLatLng: coordsToLatLng }).getBounds(), { animate: false, padding: [20, 20] });
    });
    return sel;
  }

  pages.maintenance = function () {
    placePicker();
    const overlays = {};
    cfg.layers.forEach((entry) => {
      let layer;
      if (!cfg.display) {
        layer = facilityLayer(entry);
        layer.addTo(map);
        layer.eachLayer((grid) => track(gridDrawn(grid)));
        redrawnOnMove(layer);
      } else {
        // GCJ-02 basemap: tiles cannot be shifted, so read the features as paged GeoJSON.
        layer = L.geoJSON(null, {
          coordsToLatLng: coordsToLatLng,
          pointToLayer: (f, ll) => L.circleMarker(ll, facilityStyle(entry)(f.properties)),
          interactive: false,
        }).addTo(map);
        clickableGeoJSON(20 + cfg.layers.indexOf(entry), layer, (f) => entry.title + " " + f.id, (f, at) => facilityPopup(at, entry, f.id));
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
      interactive: false,
    });
  }
  function caseCategory(p) {
    return categoryNames[p.category] || p.category_zh || p.category;
  }
  function casePopup(f) {
    const p = f.properties;
    return "<b>" + esc(p.code) + "</b> " + esc(caseCategory(p)) + "<br>" + esc(T("state")) + "：" +
      '<span class="wuye-value" data-key="' + esc(p.state) + '">' + esc(stateLabel(p.state)) + "</span>" +
      (p.overdue && !p.closed_at ? ' <b style="color:red">' + esc(T("overdue")) + "</b>" : "") +
      (p.supervised ? ' <b class="wuye-supervised" style="color:#6a1b9a">' + esc(T("supervised")) + "</b>" : "") +
      "<br>" + esc(T("unit")) + "：" + esc(p.unit_name || "—") + "<br>" + esc(T("reported_at")) + "：" + esc(localTime(p.reported_at));
  }
  function clickableCases(layer) {
    clickableGeoJSON(10, layer, (f) => f.properties.code + " " + caseCategory(f.properties) + "（" + stateLabel(f.properties.state) + "）",
      (f, at) => openPopup(at, casePopup(f)));
  }
  function stateLabel(key) {
    return label("case_states", key);
  }

  pages.cases = function () {
    placePicker();
    const layer = L.geoJSON(null, { coordsToLatLng: coordsToLatLng, pointToLayer: caseMarker }).addTo(map);
    state.layers.cases = layer;
    clickableCases(layer);
    const heat = L.heatLayer([], { radius: 25, blur: 18, maxZoom: 17 });
    state.layers.heat = heat;
    const stateOptions = cfg.orders.case_states.map((s) => '<option value="' + s + '">' + esc(stateLabel(s)) + "</option>").join("");
    const box = control("topright", "wuye-filters",
      '<label>' + esc(T("category")) + ' <select id="f-category"><option value="">' + esc(T("all")) + "</option></select></label>" +
      '<label>' + esc(T("state")) + ' <select id="f-state"><option value="">' + esc(T("all")) + "</option>" + stateOptions + "</select></label>" +
      '<label>' + esc(T("since")) + ' <input type="date" id="f-since"></label>' +
      '<label>' + esc(T("until")) + ' <input type="date" id="f-until"></label>' +
      '<label><input type="checkbox" id="f-heat"> ' + esc(T("heatmap")) + "</label>" +
      '<button type="button" id="f-apply">' + esc(T("apply")) + '</button> <span id="f-count"></span>');
    track(categories().then((cats) => {
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

  // 巡更图: a week's scans per checkpoint (GET /patrols/checkpoints) coloured covered / missed / never,
  // and each zone's coverage (GET /patrols/coverage); staff-only figures, so a visitor is asked to sign in.
  pages.patrols = function () {
    placePicker();
    const layer = L.geoJSON(null, {
      coordsToLatLng: coordsToLatLng,
      pointToLayer: (f, ll) => L.circleMarker(ll, {
        radius: 7, weight: 1.5, color: "#222", fillOpacity: 0.95, interactive: false, pane: focusPane(),
        fillColor: cfg.patrolColours[checkpointClass(f.properties)],
      }),
    }).addTo(map);
    state.layers.patrols = layer;
    function checkpointClass(p) {
      return p.scans === 0 ? "never" : p.missed ? "missed" : "covered";
    }
    function checkpointPopup(f) {
      const p = f.properties;
      return "<b>" + esc(p.name) + "</b> " + esc(p.code) + "<br>" + esc(T("zones")) + "：" + esc(zoneNames[p.zone_code] || p.zone_code) +
        "<br>" + esc(T("patrol_scans")) + '：<span class="wuye-value" data-key="scans">' + esc(p.scans) + "</span> " + esc(T("times")) +
        "<br>" + esc(T("patrol_days_missed")) + '：<span class="wuye-value" data-key="days_missed">' + esc(p.days_missed) + "</span> " + esc(T("days"));
    }
    clickableGeoJSON(10, layer, (f) => f.properties.name, (f, at) => openPopup(at, checkpointPopup(f)));
    const zoneNames = {};
    const box = control("topright", "wuye-filters wuye-patrols",
      '<label>' + esc(T("week_of")) + ' <input type="date" id="p-week"></label>' +
      '<label>' + esc(T("zones")) + ' <select id="p-zone"><option value="">' + esc(T("all")) + "</option></select></label>" +
      '<button type="button" id="p-apply">' + esc(T("apply")) + "</button>" +
      '<div id="p-status" role="status"></div><table id="p-zones" class="wuye-patrol-table"></table>');
    const week = box.querySelector("#p-week");
    // the last full week (the one the acceptance figures judge) by default
    const d = new Date(today() + "T12:00:00Z");
    d.setUTCDate(d.getUTCDate() - 7);
    week.value = d.toISOString().slice(0, 10);
    track(boundaryItems("zones").then((zones) => {
      const sel = box.querySelector("#p-zone");
      zones.sort((a, b) => String(a.id).localeCompare(String(b.id))).forEach((z) => {
        zoneNames[z.id] = z.properties.name || z.id;
        const o = document.createElement("option");
        o.value = z.id; o.textContent = zoneNames[z.id]; sel.appendChild(o);
      });
    }));
    async function read(url) {
      const r = await fetch(url, { headers: authHeaders({ Accept: "application/json" }) });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) {
        const err = new Error(r.status === 401 ? T("sign_in") : reasonOf(body) || String(r.status));
        err.status = r.status;
        throw err;
      }
      return body;
    }
    function load() {
      const q = new URLSearchParams();
      if (week.value) q.set("on", week.value);
      const zone = box.querySelector("#p-zone").value;
      if (zone) q.set("zone", zone);
      const status = box.querySelector("#p-status");
      status.className = "";
      status.textContent = T("loading");
      window.wuyeReady = false;
      const cover = new URLSearchParams(q);
      cover.set("period", "week");
      return track(Promise.all([read("/patrols/checkpoints?" + q), read("/patrols/coverage?" + cover)]).then(([points, zones]) => {
        layer.clearLayers();
        layer.addData(points.features);
        status.textContent = T("week_from") + " " + points.from + " · " + points.features.length + " " + T("patrol_points");
        box.querySelector("#p-zones").innerHTML = "<tr><th>" + esc(T("zones")) + "</th><th>" + esc(T("patrol_coverage")) + "</th></tr>" +
          zones.map((z) => '<tr data-zone="' + esc(z.zone_code) + '"' + (z.flagged ? ' class="wuye-flagged"' : "") + "><td>" +
            esc(zoneNames[z.zone_code] || z.zone_code) + "</td><td>" + (z.coverage_pct === null ? "—" : esc(z.coverage_pct) + " %") +
            (z.flagged ? " ⚠ " + esc(z.flag_zh && cfg.lang !== "en" ? z.flag_zh : T("patrol_flagged")) : "") + "</td></tr>").join("");
        if (zone && points.features.length) map.fitBounds(layer.getBounds(), { padding: [40, 40], maxZoom: 18 });
      }).catch((e) => {
        layer.clearLayers();
        box.querySelector("#p-zones").innerHTML = "";
        status.className = "wuye-error";
        status.innerHTML = esc(e.message) + (e.status === 401 ? ' <a href="/login?next=' + encodeURIComponent(location.pathname) + '">' + esc(T("nav_login")) + "</a>" : "");
      }));
    }
    box.querySelector("#p-apply").addEventListener("click", load);
    wuye.reloadPatrols = load;
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
      interactive: false,
    }).addTo(map);
    function zonePopup(f, at) {
      const p = f.properties, row = progress[f.id];
      let tasks = '<div class="wuye-note">' + esc(T("no_tasks")) + "</div>";
      if (row && row.tasks) {
        tasks = esc(T("tasks")) + "：" + row.tasks + "，" + esc(T("completion")) + " " + (row.verified_percent != null ? row.verified_percent : Math.round(100 * row.verified / row.tasks)) + "%<br>" +
          ["planned", "in_progress", "done", "verified", "overdue"].filter((k) => row[k] != null)
            .map((k) => esc((cfg.taskStates || {})[k] || k) + "：" + row[k]).join("；");
      }
      const popup = openPopup(at, "<b>" + esc(p.name) + "</b> (" + esc(f.id) + ")<br>" + esc(T("phase")) + "：" +
        '<span class="wuye-value" data-key="' + esc(p.phase) + '">' + esc(phaseLabel(p.phase)) + "</span><br>" +
        esc(T("households")) + "：" + esc(p.households == null ? "—" : p.households) + "<br>" + tasks + '<ul class="wuye-tasks"></ul>');
      // Each remediation item of the zone with its state, read when the popup opens.
      if (!cfg.zoneTasksUrl || !row || !row.tasks) return;
      getJSON(cfg.zoneTasksUrl.replace("{code}", encodeURIComponent(f.id))).then((body) => {
        const list = popup.getElement() && popup.getElement().querySelector(".wuye-tasks");
        if (!list) return;
        list.innerHTML = (body.features || []).map((t) => {
          const q = t.properties;
          return "<li>" + esc(label("remediation_items", q.item)) + (q.title ? "（" + esc(q.title) + "）" : "") + "：" +
            esc((cfg.taskStates || {})[q.state] || q.state) + (q.overdue ? ' <b style="color:red">' + esc(T("overdue")) + "</b>" : "") + "</li>";
        }).join("");
      }).catch((err) => console.warn(err));
    }
    clickableGeoJSON(200, layer, (f) => f.properties.name || f.id, zonePopup);
    state.layers.zones = layer;
    const box = control("topright", "wuye-filters",
      '<label>' + esc(T("subdistrict")) + ' <select id="f-subdistrict"><option value="">' + esc(T("all_subdistricts")) + "</option></select></label>" +
      '<div id="f-tasks" class="wuye-note"></div>');
    track(boundaryItems("subdistricts").then((subs) => {
      const sel = box.querySelector("#f-subdistrict");
      subs.forEach((s) => { const o = document.createElement("option"); o.value = s.id; o.textContent = s.properties.name || s.id; sel.appendChild(o); });
    }));
    let labels = null;
    function load() {
      const sub = box.querySelector("#f-subdistrict").value;
      window.wuyeReady = false;
      const url = "/collections/zones/items?limit=1000" + (sub ? "&subdistrict_code=" + encodeURIComponent(sub) : "");
      return track(allItems(url).then((features) => {
        layer.clearLayers();
        layer.addData(features);
        // the filter zooms to what it kept (all zones: the programme's extent)
        if (sub && features.length) map.fitBounds(layer.getBounds(), { animate: false, padding: [30, 30] }); else if (!sub) fitDistrict();
        if (labels) labels(); else labels = zoneLabels(layer);
      }));
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
  // A zone or a contract section, as its popup reads it (labels by key from the vocabulary).
  function areaPopup(f, at) {
    const p = f.properties || {};
    const rows = p.phase !== undefined
      ? [[T("kind"), label("zone_kinds", p.kind)], [T("phase"), '<span class="wuye-value" data-key="' + esc(p.phase) + '">' + esc(phaseLabel(p.phase)) + "</span>", true],
         [T("households"), p.households == null ? "—" : p.households]]
      : [[T("contractor_unit"), p.contractor_unit || "—"],
         [T("service_kinds"), (p.service_kinds || []).map((k) => label("service_kinds", k)).join("、") || "—"]];
    openPopup(at, "<b>" + esc(p.name || f.id) + "</b> (" + esc(f.id) + ")" +
      rows.map((r) => "<br>" + esc(r[0]) + "：" + (r[2] ? r[1] : esc(r[1]))).join(""));
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
      const outline = zoneLayer("zone", L.geoJSON(zone, { coordsToLatLng: coordsToLatLng, interactive: false, style: { color: "#d94801", weight: 3, fillOpacity: 0.08 } }));
      clickableGeoJSON(210, outline, (f) => f.properties.name || f.id, areaPopup);
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
        const sections = zoneLayer("sections", L.geoJSON({ type: "FeatureCollection", features: fs }, {
          coordsToLatLng: coordsToLatLng, interactive: false,
          style: { color: cfg.sectionLayer.style.color, weight: 2, dashArray: "6 4", fillOpacity: 0.05 },
        }));
        clickableGeoJSON(150, sections, (f) => cfg.sectionLayer.title + " " + (f.properties.name || f.id), areaPopup);
      }));
    }
    cfg.layers.forEach((entry) => {
      if (!cfg.display) {  // vector tiles of the zone's view (overview below detailZoom)
        track(zonePromise.then(() => {
          const layer = zoneLayer(entry.name, facilityLayer(entry));
          redrawnOnMove(layer);
          return Promise.all(layer.getLayers().map(gridDrawn));
        }));
        return;
      }
      track(zonePromise.then((bbox) => allItems("/collections/" + entry.name + "/items?limit=10000&bbox=" + bbox)).then((fs) => {
        zoneLayer(entry.name, L.geoJSON({ type: "FeatureCollection", features: fs }, {
          coordsToLatLng: coordsToLatLng,
          pointToLayer: (f, ll) => L.circleMarker(ll, facilityStyle(entry)(f.properties)),
          style: (f) => ({ color: entry.style.color, weight: 1, fillColor: cfg.conditionColours[f.properties.condition] || entry.style.fillColor, fillOpacity: 0.4 }),
          interactive: false,
        }));
        clickableGeoJSON((entry.geometry.indexOf("Point") >= 0 ? 20 : 110) + cfg.layers.indexOf(entry), state.layers[entry.name],
          (f) => entry.title + " " + f.id, (f, at) => facilityPopup(at, entry, f.id));
      }));
    });
    track(allCases({ zone: code }).then((fs) => {
      const open = fs.filter((f) => !f.properties.closed_at && ["closed", "rejected", "duplicate"].indexOf(f.properties.state) < 0);
      clickableCases(zoneLayer("cases", L.geoJSON({ type: "FeatureCollection", features: open }, {
        coordsToLatLng: coordsToLatLng, pointToLayer: caseMarker,
      })));
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
    if (cfg.lang === "en") track(categories());  // case popups name the category in English
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
    const gone = new Set(zoneLayers);
    clickables.splice(0, clickables.length, ...clickables.filter((c) => !gone.has(c.layer)));
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

  // Pages kept in their own scripts (wuye-plan.js: the planner) register in wuye.pages and use
  // these helpers; the page's script is loaded after this one.
  wuye.pages = pages;
  wuye.lib = { track, getJSON, allItems, control, esc, T, token, authHeaders, reasonOf, coordsToLatLng, storageGeometry };

  // Names of sub-districts and zones for a search box (a datalist) that zooms to the one chosen.
  function placeSearch(input, list) {
    const byName = {};
    track(Promise.all([boundaryItems("subdistricts"), boundaryItems("zones")])
      .then(([subs, zones]) => {
        subs.concat(zones).forEach((f) => {
          const name = (f.properties || {}).name || f.id;
          byName[name] = f;
          const o = document.createElement("option"); o.value = name; list.appendChild(o);
        });
      }));
    return function go() {
      const q = input.value.trim();
      const f = byName[q] || Object.values(byName).find((g) => ((g.properties || {}).name || "").indexOf(q) >= 0);
      if (!q || !f) return false;
      map.fitBounds(L.geoJSON(f, { coordsToLatLng: coordsToLatLng }).getBounds(), { animate: false, padding: [10, 10] });
      return true;
    };
  }

  pages.report = function () {
    document.body.classList.add("wuye-report-page");
    const panel = document.createElement("section");
    panel.className = "wuye-report";
    const q = cfg.lang === "en" ? "?lang=en" : "";
    panel.innerHTML =
      "<h1>" + esc(cfg.title) + "</h1>" +
      '<form id="r-search-form" role="search"><label>' + esc(T("search_place")) +
      ' <input type="search" id="r-search" list="r-places" autocomplete="off"></label><datalist id="r-places"></datalist></form>' +
      '<div id="r-form"><div><b>' + esc(T("position")) + '</b>：<span id="r-pos">—</span> <button type="button" id="r-gps">' + esc(T("use_gps")) + "</button> " +
      '<span class="wuye-note">' + esc(T("tap_hint")) + "</span></div>" +
      '<label>' + esc(T("category")) + ' <select id="r-category" required></select></label>' +
      '<label>' + esc(T("description")) + ' <textarea id="r-description" rows="3" maxlength="2000"></textarea></label>' +
      '<label id="r-photo-label" hidden>' + esc(T("photo")) + ' <input type="file" id="r-photo" accept="image/*" capture="environment"></label>' +
      '<p class="wuye-note" id="r-photo-note">' + esc(T("photo_needs_login")) + "</p>" +
      '<button type="button" id="r-submit">' + esc(T("submit")) + "</button></div>" +
      '<div id="r-msg" role="alert"></div><div id="r-result"></div>';
    document.body.appendChild(panel);
    setTimeout(() => map.invalidateSize(), 0);
    const $ = (sel) => panel.querySelector(sel);
    const go = placeSearch($("#r-search"), $("#r-places"));
    const say = (cls, text) => { $("#r-msg").className = cls; $("#r-msg").textContent = text; };
    $("#r-search-form").addEventListener("submit", (e) => { e.preventDefault(); if (!go()) say("wuye-error", T("no_place")); else say("", ""); });
    $("#r-search").addEventListener("change", () => { if (go()) say("", ""); });
    // A photo can be sent only by a signed-in reporter (POST /cases/{code}/photos): offer the
    // picker only then, instead of taking a photo that would silently not be sent.
    if (token()) {
      track(fetch("/auth/me", { headers: authHeaders() }).then((r) => {
        $("#r-photo-label").hidden = !r.ok;
        $("#r-photo-note").hidden = r.ok;
      }));
    }
    let position = null;
    let marker = null;
    function place(latlng, pos) {
      position = pos;
      if (marker) marker.setLatLng(latlng); else marker = L.circleMarker(latlng, { radius: 9, color: "#d7191c", weight: 3, fillColor: "#fff", fillOpacity: 1, pane: focusPane() }).addTo(map);
      state.layers.position = marker;
      $("#r-pos").textContent = pos.lon.toFixed(6) + ", " + pos.lat.toFixed(6);
    }
    // A tap is in the basemap's system (CGCS2000, or GCJ-02 on AMap); the server converts it once.
    map.on("click", (e) => place(e.latlng, { lon: e.latlng.lng, lat: e.latlng.lat, coord_sys: cfg.coordSys }));
    $("#r-gps").addEventListener("click", () => {
      navigator.geolocation.getCurrentPosition((p) => {
        const lon = p.coords.longitude, lat = p.coords.latitude;  // phone GPS: WGS84
        const ll = wuye.toDisplay(lon, lat);
        map.setView(ll, 17);
        place(ll, { lon: lon, lat: lat, coord_sys: "wgs84" });
      }, (err) => say("wuye-error", T(err.code === 1 ? "gps_denied" : "gps_failed")), { enableHighAccuracy: true, timeout: 15000 });
    });
    track(categories().then((cats) => {
      const sel = $("#r-category");
      cats.forEach((c) => { const o = document.createElement("option"); o.value = c.code; o.textContent = catLabel(c); sel.appendChild(o); });
    }));
    // One Idempotency-Key per report: a retry of the same report (same body, e.g. after a network
    // error) sends the same key and gets the first answer; any other report gets a fresh key.
    let sent = null;  // { key, body }
    const newKey = () => (crypto.randomUUID ? crypto.randomUUID() : "r" + Date.now().toString(36) + Math.random().toString(36).slice(2));
    wuye.reportKey = () => (sent ? sent.key : null);  // for tests: read-only
    let busy = false;
    $("#r-submit").addEventListener("click", async () => {
      if (busy) return;
      if (!position) { say("wuye-error", T("need_position")); return; }
      if (!$("#r-category").value) { say("wuye-error", T("category_required")); return; }
      const body = JSON.stringify(Object.assign({ category: $("#r-category").value,
        description: $("#r-description").value || null }, position));
      if (!sent || sent.body !== body) sent = { key: newKey(), body: body };
      busy = true;
      say("", T("sending"));
      let r, answer;
      try {
        r = await fetch("/cases", { method: "POST", body: body,
          headers: authHeaders({ "Content-Type": "application/json", "Idempotency-Key": sent.key }) });
        answer = await r.json().catch(() => ({}));
      } catch (e) {
        busy = false;
        say("wuye-error", T("network_error"));
        return;
      }
      busy = false;
      if (!r.ok) { say("wuye-error", T("submit_failed") + "：" + (reasonOf(answer) || r.status)); return; }
      say("wuye-ok", T("reported"));
      const p = answer.properties || answer;
      const code = p.code || answer.id;
      const dups = answer.possible_duplicates || p.possible_duplicates || [];
      let html = '<p><b>' + esc(T("case_no")) + '</b>：<span id="r-code">' + esc(code) + '</span><br><b>' + esc(T("unit")) +
        '</b>：<span id="r-unit">' + esc(p.unit_name || "—") + "</span></p>";
      html += "<p><b>" + esc(T("duplicates")) + "</b>：" + (dups.length ? "<ul>" + dups.map((d) => "<li>" + esc(d.code) + " " +
        esc(label("case_states", d.state)) + "，" +
        (d.distance_m != null ? Math.round(d.distance_m) + " m" : esc(d.proximity_zh || "")) + "</li>").join("") + "</ul>" : esc(T("none_found"))) + "</p>";
      html += '<p id="r-photo-result"></p><p><a id="r-follow" href="/report/' + encodeURIComponent(code) + q + '">' + esc(T("follow")) +
        '</a></p><button type="button" id="r-next">' + esc(T("next_report")) + "</button>";
      $("#r-result").innerHTML = html;
      $("#r-form").hidden = true;
      const file = $("#r-photo").files[0];
      if (file && !$("#r-photo-label").hidden) {
        const form = new FormData();
        form.append("photo", file);
        const up = await fetch("/cases/" + encodeURIComponent(code) + "/photos", { method: "POST", body: form, headers: authHeaders() })
          .catch(() => null);
        const body2 = up && !up.ok ? await up.json().catch(() => ({})) : null;
        $("#r-photo-result").textContent = up && up.ok ? T("photo_sent") + " ✓" : T("photo_failed") + (body2 ? "：" + reasonOf(body2) : "");
      }
      $("#r-next").addEventListener("click", () => {
        // the next report: a clean form (position kept, the same spot is common) and a fresh key
        sent = null;
        $("#r-description").value = "";
        $("#r-photo").value = "";
        $("#r-result").innerHTML = "";
        say("", "");
        $("#r-form").hidden = false;
      });
    });
  };

  // The follow page of one case (/report/{code}): the public view of GET /cases/{code}: its state,
  // category, unit, times and public history, by key in the page's language; no personal data.
  pages.follow = function () {
    document.body.classList.add("wuye-report-page");
    const panel = document.createElement("section");
    panel.className = "wuye-follow";
    panel.innerHTML = "<h1>" + esc(T("follow_title")) + " " + esc(cfg.caseCode) + '</h1><div id="c-body">' + esc(T("loading")) + "</div>";
    document.body.appendChild(panel);
    setTimeout(() => map.invalidateSize(), 0);
    track(categories().catch(() => []).then(() => fetch("/cases/" + encodeURIComponent(cfg.caseCode), { headers: { Accept: "application/json" } })).then(async (r) => {
      const body = await r.json().catch(() => ({}));
      const out = panel.querySelector("#c-body");
      if (!r.ok) { out.className = "wuye-error"; out.textContent = r.status === 404 ? T("not_found") : reasonOf(body) || String(r.status); return; }
      const p = body.properties || {};
      const steps = (p.history || []).map((h) => "<li>" + esc(localTime(h.at)) + " " + esc(label("case_states", h.state)) + "</li>").join("");
      out.innerHTML = "<p><b>" + esc(T("state")) + '</b>：<span id="c-state" class="wuye-value" data-key="' + esc(p.state) + '">' +
        esc(label("case_states", p.state)) + "</span>" + (p.overdue && !p.closed_at ? ' <b class="wuye-error">' + esc(T("overdue")) + "</b>" : "") +
        (p.supervised ? ' <b id="c-supervised" style="color:#6a1b9a">' + esc(T("supervised")) + "</b>" : "") +
        "<br><b>" + esc(T("category")) + "</b>：" + esc(caseCategory(p)) +
        "<br><b>" + esc(T("unit")) + "</b>：" + esc(p.unit_name || "—") +
        "<br><b>" + esc(T("reported_at")) + "</b>：" + esc(localTime(p.reported_at)) + "</p>" +
        "<b>" + esc(T("history")) + '</b><ol id="c-history">' + steps + "</ol>";
      if (body.geometry) {
        const ll = coordsToLatLng(body.geometry.coordinates);
        state.layers.case = L.circleMarker(ll, { radius: 9, color: "#222", weight: 2, fillColor: cfg.stateColours[p.state] || "#888", fillOpacity: 1, pane: focusPane() }).addTo(map);
        map.setView(ll, 17, { animate: false });
      }
    }));
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
    if (cfg.page === "zone" || cfg.page === "follow" || !hashView()) fitDistrict();
    if (cfg.page !== "zone" && cfg.page !== "follow") keepHash();
    navBar();
    furniture();
    baseLayers();
    pages[cfg.page]();
    if (["plan", "report", "follow"].indexOf(cfg.page) < 0) {
      map.on("click", onMapClick);
      if (!cfg.snapshot) hoverCursor();
    }
    started = true;
    checkReady();
  };
})();
