/* Live progress for the scheduler admin: polls the executions' JSON view while runs are active.
 *
 * Elements opt in with data attributes, so the server-rendered page works without this script:
 *   data-zq-progress="ID" data-zq-active="1"   a progress bar (admin.common.progress_bar); every bar's
 *                                               width comes from its data-zq-percent
 *   data-zq-status="ID"                         a status badge
 *   data-zq-field="NAME" data-zq-execution="ID" a text field (task_name, status_note, current_item, counts,
 *                                               message, times, result, output_tail, error_message); a
 *                                               <pre> box is hidden while empty
 *   data-zq-empty="NAME" data-zq-execution="ID" the placeholder of field NAME, shown while it is empty
 *   data-zq-action="VERB" data-zq-execution="ID" a control button, shown when the state allows VERB
 * Every answer is also sent as a "zq:progress" event for page scripts (graphs, child tables).
 */
(function () {
  "use strict";

  var ACTIVE = ["pending", "running", "paused"];
  var INTERVAL_MS = 1000;
  var tracked = new Set();
  var timer = null;

  function progressUrl() {
    var config = document.getElementById("zq-live-config");
    return config ? config.getAttribute("data-progress-url") : null;
  }

  function each(selector, fn) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), fn);
  }

  /* Server-rendered bars carry their width in data-zq-percent: the Content-Security-Policy refuses style
   * attributes, but a width set from script (element.style) is allowed. */
  function paintBars() {
    each(".zq-progress[data-zq-percent]", function (el) {
      var bar = el.querySelector(".zq-progress__bar");
      if (bar) { bar.style.width = el.getAttribute("data-zq-percent") + "%"; }
    });
  }

  function collect() {
    each("[data-zq-progress][data-zq-active='1']", function (el) { tracked.add(el.getAttribute("data-zq-progress")); });
    each("[data-zq-status]", function (el) {
      ACTIVE.forEach(function (status) {
        if (el.classList.contains("zq-badge--" + status)) { tracked.add(el.getAttribute("data-zq-status")); }
      });
    });
  }

  function setModifier(el, prefix, status) {
    Array.prototype.slice.call(el.classList).forEach(function (name) {
      if (name.indexOf(prefix) === 0) { el.classList.remove(name); }
    });
    el.classList.add(prefix + status);
  }

  function updateBar(id, status, percent, item) {
    each("[data-zq-progress='" + id + "']", function (el) {
      var bar = el.querySelector(".zq-progress__bar");
      var label = el.querySelector(".zq-progress__label");
      var value = Math.max(0, Math.min(100, Number(percent) || 0));
      if (bar) { bar.style.width = value.toFixed(1) + "%"; }
      if (label) { label.textContent = Math.round(value) + "%"; }
      setModifier(el, "zq-progress--", status);
      el.setAttribute("data-zq-active", ACTIVE.indexOf(status) >= 0 ? "1" : "0");
      el.setAttribute("data-zq-percent", value.toFixed(1));
      if (item !== undefined) { el.title = item || ""; }
    });
  }

  function updateBadge(id, status, label) {
    each("[data-zq-status='" + id + "']", function (el) {
      setModifier(el, "zq-badge--", status);
      el.textContent = label;
    });
  }

  function setField(id, name, value) {
    var text = value === null || value === undefined ? "" : String(value);
    each("[data-zq-field='" + name + "'][data-zq-execution='" + id + "']", function (el) {
      if (el.textContent !== text) { el.textContent = text; }  /* unchanged: keeps a box's scroll position */
      if (el.tagName === "PRE") { el.hidden = !text; }
    });
    each("[data-zq-empty='" + name + "'][data-zq-execution='" + id + "']", function (el) { el.hidden = !!text; });
  }

  function apply(state) {
    var id = String(state.id);
    updateBar(id, state.status, state.progress_percent, state.current_item);
    updateBadge(id, state.status, state.status_label);
    setField(id, "task_name", state.task_name);
    setField(id, "status_note", state.status_note);
    setField(id, "result", state.result);
    setField(id, "output_tail", state.output_tail);
    setField(id, "current_item", state.current_item);
    setField(id, "counts", state.total_items ? state.processed_items + "/" + state.total_items : "");
    setField(id, "message", state.message);
    setField(id, "start_time", state.start_time);
    setField(id, "end_time", state.end_time);
    setField(id, "estimated_end_time", state.estimated_end_time);
    setField(id, "duration", state.duration);
    setField(id, "error_message", state.error_message);
    each("[data-zq-action][data-zq-execution='" + id + "']", function (button) {
      button.hidden = state.actions.indexOf(button.getAttribute("data-zq-action")) < 0;
    });
    (state.children || []).forEach(function (child) {
      updateBar(String(child.id), child.status, child.progress_percent);
      updateBadge(String(child.id), child.status, child.status_label);
    });
    if (ACTIVE.indexOf(state.status) < 0) { tracked.delete(id); }
    (state.children || []).forEach(function (child) {
      if (ACTIVE.indexOf(child.status) >= 0) { tracked.add(String(child.id)); } else { tracked.delete(String(child.id)); }
    });
  }

  function poll() {
    timer = null;
    var url = progressUrl();
    if (!url || tracked.size === 0) { return; }
    var ids = Array.from(tracked).join(",");
    fetch(url + "?ids=" + encodeURIComponent(ids), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (payload) {
        var states = payload.executions || {};
        ids.split(",").forEach(function (id) { if (!states[id]) { tracked.delete(id); } });
        Object.keys(states).forEach(function (id) { apply(states[id]); });
        document.dispatchEvent(new CustomEvent("zq:progress", { detail: payload }));
      })
      .catch(function () { /* a failed poll is retried on the next turn */ })
      .then(schedule);
  }

  function schedule() {
    if (timer === null && tracked.size > 0) { timer = window.setTimeout(poll, INTERVAL_MS); }
  }

  function confirmDangerous(event) {
    var button = event.target.closest("[data-zq-confirm]");
    if (button && !window.confirm(button.getAttribute("data-zq-confirm"))) { event.preventDefault(); }
  }

  window.zqLive = {
    track: function (id) { tracked.add(String(id)); schedule(); },
    tracked: function () { return Array.from(tracked); },
  };

  document.addEventListener("click", confirmDangerous);
  document.addEventListener("DOMContentLoaded", function () { paintBars(); collect(); schedule(); });
})();
