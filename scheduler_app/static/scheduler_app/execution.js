/* The execution page: the workflow graph of a run (steps coloured by their runs' states), kept live. */
(function () {
  "use strict";

  var cy = null;

  function drawGraph() {
    var data = document.getElementById("zq-run-graph");
    var container = document.getElementById("zq-run-dag");
    if (!data || !container || !window.zqDag) { return; }
    var graph = JSON.parse(data.textContent);
    cy = window.zqDag.draw(container, graph.nodes, graph.edges);
  }

  function onProgress(event) {
    var container = document.getElementById("zq-run-dag");
    if (!container) { return; }
    var state = (event.detail.executions || {})[container.getAttribute("data-zq-execution")];
    if (!state) { return; }
    (state.children || []).forEach(function (child) {
      if (child.trigger !== "workflow") { return; }
      window.zqDag.setStatus(cy, child.task_id, child.status);
      if (cy) {
        var node = cy.getElementById(String(child.task_id));
        if (node && node.length) { node.data("url", child.url); }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", drawGraph);
  document.addEventListener("zq:progress", onProgress);
})();
