/* wuye-gis planner page (/maps/plan): draw and edit zones and sections with Leaflet-Geoman, saved
 * through OGC API Features Part 4. Loaded after wuye-maps.js, whose helpers it takes from wuye.lib.
 *
 * Every shape on the page is a Leaflet polygon in the `drawn` group with `l.wuye` = {layer, code,
 * version, props, status}; status is "clean", "changed" (PATCH with If-Match) or "new" (POST), and
 * removed shapes wait in `deleted` (DELETE with If-Match). 保存 sends one request per shape, deletions
 * first, then changes, then new shapes (a shrunk neighbour makes room for a new one); each answer is
 * shown next to its shape, and a refused shape keeps its drawing and never stops the others.
 * 撤销 undoes the last unsaved change (Ctrl+Z too).
 */
(function () {
  "use strict";
  const wuye = window.wuye;
  const { track, getJSON, allItems, control, esc, token, authHeaders, reasonOf, coordsToLatLng, storageGeometry } = wuye.lib;
  const state = wuye.state;

  wuye.pages.plan = function () {
    const map = wuye.map;
    const cfg = wuye.config;
    const P = (k) => cfg.planTexts[k] || k;
    const entries = {};
    cfg.layers.forEach((e) => { entries[e.name] = e; });
    const drawn = new L.FeatureGroup().addTo(map);
    const theirs = L.layerGroup().addTo(map);  // the saved shape beside a drawing refused with 412
    state.layers.drawn = drawn;
    state.layers.theirs = theirs;
    const deleted = [];
    const history = [];  // undo records: {undo: function}
    const choices = { subdistricts: [], zones: [], units: [] };
    let selected = null;
    let splitting = null;

    // -- the shapes ---------------------------------------------------------------------------------
    const latlngsOf = (l) => JSON.parse(JSON.stringify(l.getLatLngs()));
    function styleOf(l) {
      const entry = entries[l.wuye.layer];
      const base = { color: entry.style.color, weight: 2, fillOpacity: 0.1, dashArray: null };
      if (l.wuye.status !== "clean") Object.assign(base, { color: "#e31a1c", weight: 3 });
      if (l === selected) Object.assign(base, { fillOpacity: 0.3 });
      return base;
    }
    function restyle(l) { if (l.setStyle) l.setStyle(styleOf(l)); }
    function adopt(l, meta) {
      l.wuye = meta;
      meta.last = latlngsOf(l);
      if (meta.status === "clean") meta.savedShape = meta.last;
      l.on("pm:edit", () => changed(l));
      l.on("pm:dragend", () => changed(l));
      l.on("click", () => select(l));
      drawn.addLayer(l);
      restyle(l);
      return l;
    }
    // Geometry changed by a vertex edit or a drag: remember the previous one for 撤销.
    function changed(l) {
      if (!drawn.hasLayer(l)) return;
      const now = latlngsOf(l);
      if (JSON.stringify(now) === JSON.stringify(l.wuye.last)) return;
      const before = l.wuye.last, status = l.wuye.status;
      l.wuye.last = now;
      if (status === "clean") l.wuye.status = "changed";
      clearNote(l);
      restyle(l);
      history.push({ undo: () => { setShape(l, before); l.wuye.status = status; restyle(l); } });
      refresh();
    }
    function setShape(l, latlngs) {
      const editing = l.pm && l.pm.enabled();
      if (editing) l.pm.disable();
      l.setLatLngs(latlngs);
      l.wuye.last = latlngsOf(l);
      if (editing) l.pm.enable();
    }
    // Replace shapes by others (a cut, a split), as one undoable change.
    function replace(olds, news) {
      olds.forEach((o) => { drawn.removeLayer(o); map.removeLayer(o); clearNote(o); });
      history.push({ undo: () => {
        news.forEach((n) => { drawn.removeLayer(n); map.removeLayer(n); clearNote(n); });
        olds.forEach((o) => { delete o._pmTempLayer; drawn.addLayer(o); restyle(o); });  // Geoman marks a cut one as temporary
        if (news.indexOf(selected) >= 0) select(null);
      } });
      refresh();
    }
    function noteOn(l, html, ok) {
      clearNote(l);
      l.bindTooltip(html, { permanent: true, direction: "center", className: "wuye-shape-note " + (ok ? "wuye-ok" : "wuye-error") });
      l.wuye.note = true;
      if (map.hasLayer(l)) l.openTooltip();
    }
    function clearNote(l) {
      if (l.wuye && l.wuye.note) { l.unbindTooltip(); l.wuye.note = false; }
    }

    // -- load the zones and sections ------------------------------------------------------------------
    function loadLayer(entry) {
      return allItems("/collections/" + entry.name + "/items?limit=1000").then((fs) => {
        fs.forEach((f) => {
          L.geoJSON(f, { coordsToLatLng: coordsToLatLng }).eachLayer((l) => {
            adopt(l, { layer: entry.name, code: f.id, version: f.properties.version, props: f.properties, status: "clean" });
          });
        });
        // Sections lie inside zones: on top of them, whichever arrived first, so a click finds them.
        drawn.eachLayer((l) => { if (l.wuye.layer === "contract_sections") l.bringToFront(); });
        if (entry.name === "zones") {
          choices.zones = fs.map((f) => ({ code: f.id, name: f.properties.name || f.id }));
        }
      });
    }
    cfg.layers.forEach((entry) => track(loadLayer(entry)));
    track(allItems("/collections/subdistricts/items?limit=1000").then((fs) => {
      choices.subdistricts = fs.map((f) => ({ code: f.id, name: f.properties.name || f.id }));
    }));
    track(getJSON(cfg.unitsUrl).then((units) => { choices.units = units; }));

    // -- Leaflet-Geoman: draw, edit vertices, drag, cut, remove; snapping to the neighbours ----------
    map.pm.setLang(cfg.lang === "en" ? "en" : "zh");
    map.pm.setGlobalOptions({ snappable: true, snapDistance: 20, allowSelfIntersection: false, layerGroup: drawn,
      templineStyle: { color: "#e31a1c" }, hintlineStyle: { color: "#e31a1c", dashArray: "5 5" } });
    map.pm.addControls({
      position: "topleft", drawMarker: false, drawCircleMarker: false, drawPolyline: false, drawCircle: false,
      drawText: false, rotateMode: false, drawPolygon: true, drawRectangle: true, editMode: true, dragMode: true,
      cutPolygon: true, removalMode: true,
    });
    // The other layers on the page (district and sub-district outlines) are not for editing, but
    // new and edited shapes snap to them as to the zones and sections.
    map.on("layeradd", (e) => {
      if (!(e.layer instanceof L.GeoJSON)) return;
      e.layer.eachLayer((c) => { c.options.pmIgnore = true; c.options.snapIgnore = false; });
    });

    // A hole is cut in the selected shape only (in every shape under it when none is selected).
    map.on("pm:drawstart", (e) => {
      if (e.shape === "Cut") map.pm.Draw.Cut.options.layersToCut = selected ? [selected] : [];
    });
    map.on("pm:create", (e) => {
      const l = e.layer;
      if (splitting) { finishSplit(splitting, l); splitting = null; return; }
      const name = panel.querySelector("#p-layer").value;
      adopt(l, { layer: name, code: null, version: null, props: defaults(name), status: "new" });
      history.push({ undo: () => { drawn.removeLayer(l); map.removeLayer(l); if (selected === l) select(null); } });
      select(l);
      refresh();
    });
    map.on("pm:cut", (e) => {
      const orig = e.originalLayer, cut = e.layer;
      if (!orig.wuye) return;
      const meta = Object.assign({}, orig.wuye, { status: orig.wuye.status === "new" ? "new" : "changed", note: false });
      adopt(cut, meta);
      replace([orig], [cut]);
      if (selected === orig) select(cut);
    });
    map.on("pm:remove", (e) => {
      const l = e.layer;
      if (!l.wuye) return;
      const name = l.wuye.props.name || l.wuye.code || P("new_shape");
      if (!window.confirm(P("confirm_delete").replace("{name}", name))) {  // kept: back on the map
        drawn.addLayer(l);
        return;
      }
      drawn.removeLayer(l);
      clearNote(l);
      if (l.wuye.code && l.wuye.status !== "new") deleted.push(l);
      if (selected === l) select(null);
      history.push({ undo: () => {
        const i = deleted.indexOf(l);
        if (i >= 0) deleted.splice(i, 1);
        drawn.addLayer(l);
        restyle(l);
      } });
      refresh();
    });

    // -- split: draw the part to split off; it becomes a new shape with the same attributes ----------
    const toClip = (latlngs) => {  // Leaflet polygon latlngs → polyclip multipolygon [[[x, y]…]…]
      const rings = (r) => r.map((p) => [p.lng, p.lat]).concat([[r[0].lng, r[0].lat]]);
      const polys = Array.isArray(latlngs[0][0]) ? latlngs : [latlngs];
      return polys.map((poly) => poly.map(rings));
    };
    const fromClip = (mp) => mp.map((poly) => poly.map((ring) => ring.slice(0, -1).map((c) => L.latLng(c[1], c[0]))));
    function finishSplit(l, knife) {
      drawn.removeLayer(knife);
      const a = toClip(l.getLatLngs()), b = toClip(knife.getLatLngs());
      const kept = polyclip.difference(a, b), off = polyclip.intersection(a, b);
      if (!kept.length || !off.length) { say(P("split_miss"), false); return; }
      const keep = adopt(L.polygon(fromClip(kept)), Object.assign({}, l.wuye, {
        status: l.wuye.status === "new" ? "new" : "changed", note: false }));
      const props = Object.assign({}, l.wuye.props, { code: (l.wuye.code || "new") + "-2" });
      const part = adopt(L.polygon(fromClip(off)), { layer: l.wuye.layer, code: null, version: null, props: props, status: "new" });
      replace([l], [keep, part]);
      select(part);
    }

    // -- the panel: layer, attribute form (lists from the API), save, undo -------------------------------
    const opts = cfg.layers.map((e) => '<option value="' + e.name + '">' + esc(e.title) + "</option>").join("");
    const panel = control("topright", "wuye-plan",
      "<b>" + esc(cfg.title) + '</b><p class="wuye-note">' + esc(P("hint")) + "</p>" +
      "<label>" + esc(P("new_layer")) + ' <select id="p-layer">' + opts + "</select></label>" +
      '<div id="p-selected" class="wuye-note"></div><div id="p-fields"></div>' +
      '<button type="button" id="p-split" disabled>' + esc(P("split")) + "</button> " +
      '<button type="button" id="p-undo" disabled>' + esc(P("undo")) + "</button> " +
      '<button type="button" id="p-save">' + esc(P("save")) + "</button>" +
      '<div id="p-pending" class="wuye-note"></div><div id="p-msg" role="alert"></div>');
    const msg = panel.querySelector("#p-msg");
    function defaults(name) {
      const props = {};
      entries[name].attributes.forEach((a) => { if (a.default != null) props[a.name] = a.default; });
      return props;
    }
    function listFor(a) {  // [[code, label]…] of an attribute chosen from a list
      if (a.values) return Object.entries(a.values);
      const list = a.choices === "units" ? choices.units : a.choices === "zones" ? choices.zones
        : a.choices === "subdistricts" ? choices.subdistricts : null;
      return list ? list.map((c) => [c.code, c.name + (c.kind_label ? "（" + c.kind_label + "）" : "")]) : null;
    }
    function field(a, value) {
      const id = "p-attr-" + a.name;
      const star = a.required ? ' <span class="wuye-required" title="' + esc(P("required")) + '">*</span>' : "";
      const head = '<label for="' + id + '">' + esc(a.title) + star + "</label>";
      const list = listFor(a);
      if (list && a.type === "text_list") {
        const on = new Set(value || []);
        return '<fieldset id="' + id + '" data-attr="' + a.name + '" data-type="text_list"><legend>' + esc(a.title) + star + "</legend>" +
          list.map(([k, v]) => '<label class="wuye-check"><input type="checkbox" value="' + esc(k) + '"' + (on.has(k) ? " checked" : "") +
            "> " + esc(v) + "</label>").join("") + "</fieldset>";
      }
      if (list) {
        return head + '<select id="' + id + '" data-attr="' + a.name + '" data-type="' + a.type + '"' + (a.required ? " required" : "") + ">" +
          '<option value="">—</option>' + list.map(([k, v]) => '<option value="' + esc(k) + '"' + (k === value ? " selected" : "") + ">" +
          esc(v) + "</option>").join("") + "</select>";
      }
      const type = a.type === "integer" ? "number" : a.type === "date" ? "date" : "text";
      return head + '<input id="' + id + '" type="' + type + '" data-attr="' + a.name + '" data-type="' + a.type + '" value="' +
        esc(value == null ? "" : value) + '"' + (a.required ? " required" : "") + ">";
    }
    // Edit mode works on the selected shape only (on every shape when none is selected): boundaries
    // shared with neighbours have a vertex of each shape at the same spot, and the handle under the
    // mouse must be the selected shape's.
    function focusEditing() {
      if (!map.pm.globalEditModeEnabled() || !selected) return;
      drawn.eachLayer((l) => { if (l !== selected && l.pm && l.pm.enabled()) l.pm.disable(); });
      if (!selected.pm.enabled()) selected.pm.enable();
    }
    map.on("pm:globaleditmodetoggled", focusEditing);
    function select(l) {
      const prev = selected;
      selected = l;
      focusEditing();
      if (prev && drawn.hasLayer(prev)) restyle(prev);
      const fields = panel.querySelector("#p-fields");
      panel.querySelector("#p-split").disabled = !l;
      if (!l) { fields.innerHTML = ""; panel.querySelector("#p-selected").textContent = P("none_selected"); return; }
      restyle(l);
      const entry = entries[l.wuye.layer];
      panel.querySelector("#p-selected").textContent = entry.title + "：" + (l.wuye.code ? (l.wuye.props.name || "") + " " + l.wuye.code : P("new_shape"));
      const attrs = (l.wuye.code ? [] : [{ name: "code", title: P("code"), required: true, type: "text" }]).concat(entry.attributes);
      fields.innerHTML = attrs.map((a) => field(a, l.wuye.props[a.name])).join("");
    }
    function readField(el) {
      if (el.dataset.type === "text_list") return Array.from(el.querySelectorAll("input:checked")).map((c) => c.value);
      if (el.value === "") return null;
      return el.dataset.type === "integer" ? parseInt(el.value, 10) : el.value;
    }
    panel.querySelector("#p-fields").addEventListener("change", (e) => {
      if (!selected) return;
      const el = e.target.closest("[data-attr]");
      if (!el) return;
      const l = selected, name = el.dataset.attr, before = l.wuye.props[name], status = l.wuye.status;
      l.wuye.props = Object.assign({}, l.wuye.props, { [name]: readField(el) });
      if (status === "clean") { l.wuye.status = "changed"; }
      (l.wuye.changedProps = l.wuye.changedProps || new Set()).add(name);
      restyle(l);
      history.push({ undo: () => {
        l.wuye.props = Object.assign({}, l.wuye.props, { [name]: before });
        l.wuye.status = status;
        restyle(l);
        if (selected === l) select(l);
      } });
      refresh();
    });
    function refresh() {
      const pending = drawn.getLayers().filter((l) => l.wuye && l.wuye.status !== "clean").length + deleted.length;
      panel.querySelector("#p-pending").textContent = pending ? P("pending").replace("{n}", pending) : "";
      panel.querySelector("#p-undo").disabled = history.length === 0;
    }
    function undo() {
      const last = history.pop();
      if (last) last.undo();
      refresh();
    }
    panel.querySelector("#p-undo").addEventListener("click", undo);
    document.addEventListener("keydown", (e) => {
      if ((e.ctrlKey || e.metaKey) && e.key === "z" && !/^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName)) {
        e.preventDefault();
        undo();
      }
    });
    panel.querySelector("#p-split").addEventListener("click", () => {
      if (!selected) return;
      splitting = selected;
      map.pm.enableDraw("Polygon");
      say(P("split_hint"), true);
    });
    select(null);

    // -- save: one request per shape ---------------------------------------------------------------------
    function say(html, ok) {
      msg.className = ok ? "wuye-ok" : "wuye-error";
      msg.innerHTML = html;
    }
    function nameOf(layer, code) {  // "金岭小区（jinling）" when the page has it
      const hit = drawn.getLayers().find((x) => x.wuye.layer === layer && x.wuye.code === code);
      const name = hit ? hit.wuye.props.name : (choices[layer] || []).filter((c) => c.code === code).map((c) => c.name)[0];
      return name ? name + "（" + code + "）" : code;
    }
    function fieldTitle(l, name) {
      if (name === "geometry") return P("geometry");
      const a = entries[l.wuye.layer].attributes.find((x) => x.name === name);
      return a ? a.title : name === "code" ? P("code") : name;
    }
    function refusal(r, l) {
      const body = r.body || {};
      const kinds = { overlap: P("overlap"), outside_parent: P("outside_parent"), missing_parent: P("missing_parent") };
      const rows = (body.violations || []).map((v) => "<li>" + esc(kinds[v.kind] || v.kind) + "：" +
        esc(v.other_code ? (entries[v.other_layer] ? entries[v.other_layer].title : v.other_layer) + " " + nameOf(v.other_layer, v.other_code) : v.code || "") +
        (v.area_m2 != null ? "，" + Number(v.area_m2).toFixed(1) + " m²" : "") + "</li>").join("");
      // With violations, the page words them itself (the reason text names layers by their codes).
      const reason = rows ? P("geometry_conflict") : reasonOf(body) || P("http_error");
      const field = body.field && !rows ? "（" + esc(fieldTitle(l, body.field)) + "）" : "";
      return esc(P("refused")) + " " + r.status + "：" + esc(reason) + field + (rows ? "<ul>" + rows + "</ul>" : "");
    }
    async function send(method, url, body, headers) {
      let r;
      try {
        r = await fetch(url, { method: method, body: body == null ? undefined : JSON.stringify(body), headers: authHeaders(headers) });
      } catch (e) {
        return { ok: false, status: 0, body: { reason_zh: P("offline"), reason: String(e) } };
      }
      const text = await r.text();
      let parsed = {};
      try { parsed = text ? JSON.parse(text) : {}; } catch (e) { parsed = { reason: text }; }
      return { ok: r.ok, status: r.status, body: parsed, etag: r.headers.get("ETag") };
    }
    const itemUrl = (l) => "/collections/" + l.wuye.layer + "/items/" + encodeURIComponent(l.wuye.code);
    const versionOf = (r) => (r.body.properties || {}).version || Number((r.etag || "").replace(/"/g, ""));
    // 412: someone saved this shape meanwhile. Draw theirs beside ours; the next 保存 overwrites it.
    async function showTheirs(l) {
      try {
        const f = await getJSON(itemUrl(l));
        const other = L.geoJSON(f, { coordsToLatLng: coordsToLatLng, pmIgnore: true, interactive: false,
          style: { color: "#555", weight: 2, dashArray: "6 4", fill: false } });
        other.eachLayer((x) => { x.options.pmIgnore = true; });
        theirs.addLayer(other);
        l.wuye.theirs = other;
        l.wuye.version = f.properties.version;
        return f.properties.version;
      } catch (e) {
        return null;
      }
    }
    async function saveOne(l, method) {
      if (l.wuye.theirs) { theirs.removeLayer(l.wuye.theirs); l.wuye.theirs = null; }
      let r;
      if (method === "DELETE") {
        r = await send("DELETE", itemUrl(l), null, { "If-Match": '"' + l.wuye.version + '"' });
      } else if (method === "PATCH") {
        const patch = {};
        if (JSON.stringify(l.wuye.last) !== JSON.stringify(l.wuye.savedShape || null)) patch.geometry = storageGeometry(l.toGeoJSON(15).geometry);
        const props = {};
        (l.wuye.changedProps || new Set()).forEach((k) => { props[k] = l.wuye.props[k]; });
        if (Object.keys(props).length) patch.properties = props;
        r = await send("PATCH", itemUrl(l), patch,
          { "Content-Type": "application/merge-patch+json", "If-Match": '"' + l.wuye.version + '"' });
      } else {
        const props = Object.assign({}, l.wuye.props);
        ["version", "created_at", "updated_at", "id"].forEach((k) => delete props[k]);
        r = await send("POST", "/collections/" + l.wuye.layer + "/items",
          { type: "Feature", properties: props, geometry: storageGeometry(l.toGeoJSON(15).geometry) },
          { "Content-Type": "application/geo+json" });
      }
      if (r.ok) {
        if (method === "DELETE") {
          deleted.splice(deleted.indexOf(l), 1);
          return { ok: true, text: P("deleted") + " " + l.wuye.code };
        }
        if (method === "POST") l.wuye.code = r.body.id;
        l.wuye.version = versionOf(r);
        l.wuye.props = Object.assign({}, l.wuye.props, r.body.properties || {});
        l.wuye.status = "clean";
        l.wuye.changedProps = new Set();
        l.wuye.savedShape = l.wuye.last;
        restyle(l);
        noteOn(l, esc(P("saved")), true);
        return { ok: true, text: P("saved") + " " + l.wuye.code };
      }
      let html = refusal(r, l);
      if (r.status === 412) {
        const v = await showTheirs(l);
        html = esc(P("conflict_412").replace("{v}", v == null ? "?" : v));
      }
      if (method === "DELETE") {  // a refused deletion: the shape comes back, with the reason
        deleted.splice(deleted.indexOf(l), 1);
        drawn.addLayer(l);
        restyle(l);
      }
      noteOn(l, html, false);
      return { ok: false, text: (l.wuye.code || l.wuye.props.code || P("new_shape")) + "：" + html };
    }
    async function save() {
      if (!token()) {
        say(esc(P("sign_in")) + ' <a href="/login?next=/maps/plan">/login</a>', false);
        return;
      }
      if (map.pm.globalEditModeEnabled()) map.pm.disableGlobalEditMode();  // the toolbar follows
      if (map.pm.globalDragModeEnabled()) map.pm.disableGlobalDragMode();
      const jobs = deleted.slice().map((l) => [l, "DELETE"])
        .concat(drawn.getLayers().filter((l) => l.wuye.status === "changed").map((l) => [l, "PATCH"]))
        .concat(drawn.getLayers().filter((l) => l.wuye.status === "new").map((l) => [l, "POST"]));
      if (!jobs.length) { say(esc(P("nothing")), true); return; }
      say(esc(P("saving")), true);
      msg.className = "wuye-busy";
      const results = [];
      for (const [l, method] of jobs) results.push(await saveOne(l, method));  // in order: deletions make room
      const failed = results.filter((x) => !x.ok);
      if (!failed.length) history.length = 0;
      const lines = results.map((x) => '<li class="' + (x.ok ? "wuye-ok" : "wuye-error") + '">' + (x.ok ? esc(x.text) : x.text) + "</li>").join("");
      say((failed.length ? esc(P("some_failed").replace("{n}", failed.length).replace("{m}", results.length))
        : esc(P("saved")) + "（" + results.length + "）") + "<ul>" + lines + "</ul>", !failed.length);
      if (selected) select(drawn.hasLayer(selected) ? selected : null);
      refresh();
      wuye.plan.savedAt = performance.now();
    }
    panel.querySelector("#p-save").addEventListener("click", () => {
      save().catch((e) => say(esc(P("save_failed")) + "：" + esc(String(e)), false));
    });
    wuye.plan = { drawn: drawn, save: save, deleted: deleted, history: history };
  };
})();
