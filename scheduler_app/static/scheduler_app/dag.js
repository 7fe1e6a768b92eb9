/* Draws a workflow DAG with Cytoscape.js and the dagre layout; nodes are coloured by status. */
(function () {
  "use strict";

  var COLOURS = {
    success: "#2e7d32", failed: "#c62828", running: "#1565c0", paused: "#b26a00", pending: "#607d8b",
    terminated: "#6d4c41", completed: "#ef6c00", skipped: "#9e9e9e", not_started: "#bdbdbd", "": "#90a4ae",
  };

  function colour(status) { return COLOURS[status] || COLOURS[""]; }

  /* Cytoscape adds an inline <style> for its container unless an element with this id exists. The
   * Content-Security-Policy refuses inline styles, so admin.css carries that rule and this marker stands in. */
  var CYTOSCAPE_STYLESHEET_ID = "__________cytoscape_stylesheet";

  function markCytoscapeStylesheet() {
    if (document.getElementById(CYTOSCAPE_STYLESHEET_ID)) { return; }
    var marker = document.createElement("meta");
    marker.id = CYTOSCAPE_STYLESHEET_ID;
    document.head.appendChild(marker);
  }

  /* nodes: [{id, label, status, url}], edges: [{source, target}]; returns the Cytoscape instance. */
  function draw(container, nodes, edges) {
    if (!window.cytoscape || !container) { return null; }
    markCytoscapeStylesheet();
    var ids = new Set(nodes.map(function (node) { return String(node.id); }));
    var elements = nodes.map(function (node) {
      return { data: { id: String(node.id), label: node.label, status: node.status || "", url: node.url || "" } };
    }).concat(edges.filter(function (edge) {
      return ids.has(String(edge.source)) && ids.has(String(edge.target));
    }).map(function (edge) {
      return { data: { id: "e" + edge.source + "-" + edge.target, source: String(edge.source), target: String(edge.target) } };
    }));
    var cy = window.cytoscape({
      container: container,
      elements: elements,
      userZoomingEnabled: false,
      boxSelectionEnabled: false,
      autoungrabify: true,
      style: [
        { selector: "node", style: {
          shape: "round-rectangle", label: "data(label)", "text-valign": "center", "text-halign": "center",
          color: "#fff", "font-size": 12, "text-wrap": "ellipsis", "text-max-width": 150, width: 160, height: 34,
          "background-color": function (ele) { return colour(ele.data("status")); },
          "border-width": 1, "border-color": "#37474f",
        } },
        { selector: "node[status = 'not_started'], node[status = '']", style: { color: "#263238" } },
        { selector: "edge", style: {
          width: 2, "line-color": "#90a4ae", "target-arrow-color": "#90a4ae", "target-arrow-shape": "triangle",
          "curve-style": "bezier",
        } },
      ],
      layout: { name: hasDagre() ? "dagre" : "breadthfirst",
        rankDir: "LR", nodeSep: 20, rankSep: 60, padding: 16, directed: true, fit: true },
    });
    cy.on("tap", "node", function (event) {
      var url = event.target.data("url");
      if (url) { window.location.href = url; }
    });
    container.zqCy = cy;
    return cy;
  }

  function hasDagre() {
    try { return typeof window.cytoscape("layout", "dagre") === "function"; } catch (error) { return false; }
  }

  function setStatus(cy, id, status) {
    if (!cy) { return; }
    var node = cy.getElementById(String(id));
    if (node && node.length) { node.data("status", status); }
  }

  window.zqDag = { draw: draw, setStatus: setStatus, colour: colour };
})();
