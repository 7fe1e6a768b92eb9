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
