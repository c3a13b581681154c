// The statistics page: each chart of /workbench/stats/data drawn with Apache ECharts (our npm copy)
// and shown as a table from the same rows; each section's two buttons switch between the chart and
// its table. When every chart has rendered, window.wuyeStatsReady is true and #stats-status says so
// (tests and bench/ wait on it).
(function () {
  "use strict";
  window.wuyeStatsReady = false;
  const root = document.getElementById("stats");
  const status = document.getElementById("stats-status");
  const zh = root.dataset.lang !== "en";
  const palette = ["#1565c0", "#ef6c00", "#c62828"];

  function fillTable(section, chart) {
    const head = section.querySelector("thead"), body = section.querySelector("tbody");
    const tr = document.createElement("tr");
    chart.columns.forEach((c) => { const th = document.createElement("th"); th.scope = "col"; th.textContent = c; tr.appendChild(th); });
    head.replaceChildren(tr);
    body.replaceChildren(...chart.rows.map((row) => {
      const r = document.createElement("tr");
      row.forEach((v, i) => {
        const cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) cell.scope = "row";
        cell.textContent = v === null ? "—" : String(v);
        r.appendChild(cell);
      });
      return r;
    }));
  }

  function option(chart) {
    const names = chart.rows.map((r) => r[0]);
    const base = { animation: false, tooltip: { trigger: "axis" }, grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true } };
    const axis = { type: "category", data: names, axisLabel: { interval: 0, rotate: names.length > 4 ? 30 : 0 } };
    if (!chart.rows.length) {
      return { animation: false, title: { text: zh ? "暂无数据" : "No figures yet", left: "center", top: "middle", textStyle: { color: "#78909c", fontSize: 15 } } };
    }
    if (chart.id === "state") {
      return { animation: false, tooltip: { trigger: "item" }, legend: { top: 0, type: "scroll" },
        // on a phone the labels would be cut to "…": the legend names the slices there
        series: [{ type: "pie", radius: ["30%", "62%"], top: 24, label: { show: window.innerWidth >= 600 },
          data: chart.rows.map((r) => ({ name: r[0], value: r[1] })) }] };
    }
    if (chart.id === "satisfaction") {
      // the interval as a floating bar (an invisible stack up to its lower bound), the rate as a point
      return { ...base, legend: { top: 0, data: [chart.columns[1], zh ? "95% 置信区间" : "95% interval"] },
        xAxis: axis, yAxis: { type: "value", min: 0, max: 100 },
        series: [
          { type: "bar", stack: "ci", itemStyle: { color: "transparent" }, tooltip: { show: false }, data: chart.rows.map((r) => r[2]) },
          { name: zh ? "95% 置信区间" : "95% interval", type: "bar", stack: "ci", itemStyle: { color: "#90caf9" }, data: chart.rows.map((r) => +(r[3] - r[2]).toFixed(1)) },
          { name: chart.columns[1], type: "scatter", symbolSize: 10, itemStyle: { color: "#0d47a1" }, data: chart.rows.map((r) => r[1]) },
        ] };
    }
    if (chart.id === "unit" || chart.id === "month") {
      // on-time rate (%) on the left axis, median hours to close on the right (the columns name the
      // units); months as a line over lighter bars
      const line = chart.id === "month";
      return { ...base, legend: { top: 0, data: [chart.columns[3], chart.columns[4]] }, xAxis: axis,
        yAxis: [{ type: "value", min: 0, max: 100 }, { type: "value", splitLine: { show: false } }],
        series: [
          { name: chart.columns[4], type: "bar", yAxisIndex: 1, itemStyle: { color: line ? "#ffcc80" : palette[1] }, data: chart.rows.map((r) => r[4]) },
          { name: chart.columns[3], type: line ? "line" : "bar", yAxisIndex: 0, z: 3, symbolSize: 8, lineStyle: { width: 3 },
            itemStyle: { color: palette[0] }, data: chart.rows.map((r) => r[3]) },
        ] };
    }
    if (chart.id === "fees") {
      return { ...base, legend: { top: 0 }, xAxis: axis, yAxis: { type: "value", min: 0, max: 100 },
        series: [3, 6].map((i, k) => ({ name: chart.columns[i], type: "bar", itemStyle: { color: palette[k] }, data: chart.rows.map((r) => r[i]) })) };
    }
    if (chart.id === "remediation") {
      return { ...base, legend: { top: 0 }, xAxis: axis, yAxis: { type: "value", minInterval: 1 },
        series: [1, 2].map((i, k) => ({ name: chart.columns[i], type: "bar", itemStyle: { color: palette[k] }, data: chart.rows.map((r) => r[i]) })) };
    }
    return { ...base, legend: { top: 0 }, xAxis: axis, yAxis: { type: "value", minInterval: 1 },
      series: [1, 2, 3].map((i, k) => ({ name: chart.columns[i], type: "bar", itemStyle: { color: palette[k] }, data: chart.rows.map((r) => r[i]) })) };
  }

  // the chart or its table: the pressed button says which is shown
  function switcher(section, ec) {
    section.querySelectorAll(".stat-view").forEach((button) => {
      button.addEventListener("click", () => {
        const view = button.dataset.view;
        section.dataset.view = view;
        section.querySelectorAll(".stat-view").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
        section.querySelector(".stat-chart").hidden = view !== "chart";
        section.querySelector(".stat-table").hidden = view !== "table";
        if (view === "chart") ec.resize();
      });
    });
  }

  function draw(data) {
    let pending = data.length;
    const instances = [];
    const done = () => {
      pending -= 1;
      if (pending === 0) {
        window.wuyeStatsReady = true;
        status.dataset.charts = "drawn";
        status.textContent = zh ? "图表已绘制完成。" : "All charts drawn.";
      }
    };
    data.forEach((chart) => {
      const section = document.getElementById("stat-" + chart.id);
      fillTable(section, chart);
      const box = section.querySelector(".stat-chart");
      const ec = echarts.init(box, null, { renderer: "canvas" });
      instances.push(ec);
      switcher(section, ec);
      ec.on("finished", function once() { ec.off("finished", once); section.dataset.drawn = "true"; done(); });
      ec.setOption(option(chart));
    });
    window.addEventListener("resize", () => instances.forEach((ec) => ec.resize()));
  }

  fetch(root.dataset.src, { headers: { Accept: "application/json" } })
    .then((r) => { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
    .then(draw)
    .catch((e) => { status.dataset.charts = "failed"; status.className = "wuye-error"; status.textContent = (zh ? "统计数据读取失败：" : "Could not read the figures: ") + e.message; });
})();
