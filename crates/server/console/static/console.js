// The Odradek console's plots: every <div class="chart" data-src="..."> is drawn with uPlot
// from its JSON series ({labels: [...], data: [[x...], [y1...], ...]}) and refreshed every
// few seconds.
"use strict";

(function () {
  const REFRESH_MS = 2000;
  const COLOURS = ["#3a5bd9", "#d9822b", "#2e7d32", "#8e24aa"];

  function empty(el, text) {
    const d = document.createElement("div");
    d.className = "empty";
    d.textContent = text;
    el.replaceChildren(d);
  }

  function draw(el) {
    let plot = null;
    const load = () =>
      fetch(el.dataset.src, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
        .then((series) => {
          if (series.data[0].length === 0) {
            if (!plot) empty(el, "No samples yet (the broker samples every 2 s).");
            return;
          }
          if (!plot) {
            el.textContent = "";
            const opts = {
              width: Math.max(el.clientWidth - 16, 300),
              height: 220,
              series: [{}].concat(
                series.labels.map((label, i) => ({ label, stroke: COLOURS[i % COLOURS.length], width: 2 }))
              ),
              axes: [{}, { size: 70 }],
            };
            plot = new uPlot(opts, series.data, el);
            el.dataset.points = String(series.data[0].length);
          } else {
            plot.setData(series.data);
            el.dataset.points = String(series.data[0].length);
          }
        })
        .catch((e) => {
          if (!plot) empty(el, String(e.message));
        });
    load();
    setInterval(load, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".chart[data-src]").forEach(draw);
    // Forms that destroy something ask first (the question is in data-confirm).
    document.querySelectorAll("form[data-confirm]").forEach((f) =>
      f.addEventListener("submit", (e) => {
        if (!window.confirm(f.dataset.confirm)) e.preventDefault();
      })
    );
  });
})();
