/* The dashboard: its runs-per-day chart (Chart.js, stacked bars by status) and its timeline. */
(function () {
  "use strict";

  var COLOURS = { success: "#2e7d32", failed: "#c62828", other: "#90a4ae" };

  /* The timeline's bars carry their place in data-zq-left / data-zq-width (percent of the track): the
   * Content-Security-Policy refuses style attributes, but positions set from script are allowed. */
  function placeTimeline() {
    Array.prototype.forEach.call(document.querySelectorAll(".zq-timeline__bar[data-zq-left]"), function (bar) {
      bar.style.left = bar.getAttribute("data-zq-left") + "%";
      bar.style.width = bar.getAttribute("data-zq-width") + "%";
    });
  }

  /* The panels show one state of each run, live.js's latest answer: a run that ended leaves "Running now"
   * and its timeline bar takes its final colour, as its badges (which live.js updates) do. */
  var ACTIVE = ["pending", "running", "paused"];

  function onProgress(event) {
    var states = event.detail.executions || {};
    Object.keys(states).forEach(function (id) {
      var state = states[id];
      Array.prototype.forEach.call(document.querySelectorAll("[data-zq-bar='" + id + "']"), function (bar) {
        Array.prototype.slice.call(bar.classList).forEach(function (name) {
          if (name.indexOf("zq-bg--") === 0) { bar.classList.remove(name); }
        });
        bar.classList.add("zq-bg--" + state.status);
      });
      if (ACTIVE.indexOf(state.status) < 0) {
        Array.prototype.forEach.call(document.querySelectorAll("[data-zq-running='" + id + "']"), function (row) {
          row.hidden = true;
        });
      }
    });
    var none = document.getElementById("zq-running-none");
    if (none) { none.hidden = document.querySelectorAll("#zq-running tr[data-zq-running]:not([hidden])").length > 0; }
  }

  document.addEventListener("zq:progress", onProgress);
  document.addEventListener("DOMContentLoaded", function () {
    placeTimeline();
    var data = document.getElementById("zq-dashboard-chart");
    var canvas = document.getElementById("zq-runs-chart");
    if (!data || !canvas || !window.Chart) { return; }
    var chart = JSON.parse(data.textContent);
    window.zqDashboardChart = new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: chart.series.map(function (series) {
          return { label: series.label, data: series.data, backgroundColor: COLOURS[series.key], stack: "runs" };
        }),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { position: "bottom" }, title: { display: false, text: chart.title } },
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  });
})();
