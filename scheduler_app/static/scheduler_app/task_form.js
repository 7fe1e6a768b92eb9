/* The task form: fields by task type, the live schedule preview, and the workflow step editor with its DAG.
 *
 * The JSON config textarea stays the source of truth: the step editor reads it and writes it back, so the
 * form still works without this script. Checks are the API's (schedules/preview/, workflows/validate/).
 */
(function () {
  "use strict";

  var config = {};
  var text = {};

  function $(id) { return document.getElementById(id); }

  function csrfToken() {
    var input = document.querySelector("#scheduledtask_form input[name=csrfmiddlewaretoken]") ||
      document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function postJson(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().catch(function () { return { valid: false, errors: { detail: [String(response.status)] } }; });
    });
  }

  function debounce(fn, ms) {
    var handle = null;
    return function () {
      window.clearTimeout(handle);
      handle = window.setTimeout(fn, ms);
    };
  }

  function taskType() {
    var select = $("id_task_type");
    return select ? select.value : "common_task";
  }

  /* ---------------------------------------------------------------------------------- fields by type */

  function showByType() {
    var type = taskType();
    var schedule = document.querySelector("fieldset.zq-schedule");
    if (schedule) { schedule.hidden = type === "manual_task"; }
    var editor = document.querySelector(".field-workflow_editor");
    if (editor) { editor.hidden = type !== "workflow"; }
    if (type === "workflow") { workflow.render(); }
  }

  /* ---------------------------------------------------------------------------------- schedule preview */

  var preview = {
    box: null,
    serial: 0,

    list: function (selector, items, render) {
      var list = this.box.querySelector(selector);
      list.innerHTML = "";
      (items || []).forEach(function (item) { list.appendChild(render(item)); });
      return list;
    },

    /* One run: its time in the task's zone, the viewer's when it differs, and what moved it. */
    runItem: function (run) {
      var item = document.createElement("li");
      var at = typeof run === "string" ? run : run.at;
      item.textContent = formatRun(at);
      if (typeof run === "string") { return item; }
      if (run.at_viewer && offsetOf(run.at_viewer) !== offsetOf(at)) {
        var viewer = document.createElement("span");
        viewer.className = "zq-preview__viewer";
        viewer.textContent = " = " + formatRun(run.at_viewer);
        item.appendChild(viewer);
      }
      if (run.note) {
        var note = document.createElement("span");
        note.className = "zq-preview__note " + (run.marks || []).map(function (mark) { return "zq-mark--" + mark; }).join(" ");
        note.textContent = " " + run.note;
        item.appendChild(note);
      }
      return item;
    },

    show: function (answer, error) {
      var box = this.box;
      answer = answer || {};
      box.querySelector(".zq-preview__description").textContent = answer.description || "";
      var errorBox = box.querySelector(".zq-preview__error");
      errorBox.textContent = error || "";
      errorBox.hidden = !error;
      var runs = answer.runs && answer.runs.length ? answer.runs : (answer.next_runs || []);
      this.list(".zq-preview__runs", runs, this.runItem);
      box.querySelector(".zq-preview__heading").hidden = !runs.length;
      var removed = answer.removed || [];
      this.list(".zq-preview__removed", removed, function (entry) {
        var item = document.createElement("li");
        item.textContent = formatRun(entry.planned) + " — " + entry.reason;
        return item;
      });
      var removedHeading = box.querySelector(".zq-preview__removed-heading");
      if (removedHeading) { removedHeading.hidden = !removed.length; }
      this.list(".zq-preview__notes", answer.notes || [], function (text) {
        var item = document.createElement("li");
        item.textContent = text;
        return item;
      });
      box.classList.remove("zq-is-loading");
    },

    refresh: function () {
      if (!preview.box) { return; }
      if (taskType() === "manual_task") { preview.show({ description: text.manual }, ""); return; }
      var cron = value("id_cron_expression");
      var interval = value("id_interval_seconds");
      var runAt = splitDateTime("id_run_at");
      if (!cron && !interval && !runAt) { preview.show({ description: text.needSchedule }, ""); return; }
      if (!config.previewUrl) { return; }
      var body = { count: config.count, timezone: value("id_timezone") || null };
      if (cron) { body.cron_expression = cron; }
      if (interval) { body.interval_seconds = /^\d+$/.test(interval) ? Number(interval) : interval; }
      if (runAt) { body.run_at = runAt; }
      var calendar = selectedName("id_calendar");
      if (calendar) {
        body.calendar = calendar;
        body.calendar_rule = value("id_calendar_rule") || null;
        var n = value("id_calendar_n");
        if (n) { body.calendar_n = /^\d+$/.test(n) ? Number(n) : n; }
        var events = selectedName("id_event_calendar");
        if (events) { body.event_calendar = events; }
      }
      var validFrom = splitDateTime("id_valid_from");
      var validUntil = splitDateTime("id_valid_until");
      if (validFrom) { body.valid_from = validFrom; }
      if (validUntil) { body.valid_until = validUntil; }
      var jitter = value("id_jitter_seconds");
      if (jitter && /^\d+$/.test(jitter)) { body.jitter_seconds = Number(jitter); }
      var taskId = preview.box.getAttribute("data-task-id");
      if (taskId) { body.task_id = Number(taskId); }
      var serial = ++preview.serial;
      preview.box.classList.add("zq-is-loading");
      postJson(config.previewUrl, body).then(function (answer) {
        if (serial !== preview.serial) { return; }  // an older answer arriving late
        if (answer.valid) {
          preview.show(answer, "");
        } else {
          var messages = [];
          Object.keys(answer.errors || {}).forEach(function (field) {
            messages = messages.concat(answer.errors[field]);
          });
          preview.show({}, messages.join(" ") || answer.detail || "?");
        }
      }).catch(function () { preview.box.classList.remove("zq-is-loading"); });
    },
  };

  function value(id) { return ((($(id) || {}).value) || "").trim(); }

  /* The admin's split date and time inputs (id_x_0, id_x_1) as one local ISO text, or "". */
  function splitDateTime(id) {
    var day = value(id + "_0");
    if (!day) { return value(id); }
    var clock = value(id + "_1") || "00:00:00";
    return day + "T" + clock;
  }

  /* A calendar select's chosen calendar, by its name (the API takes names). */
  function selectedName(id) {
    var select = $(id);
    if (!select || !select.value || select.selectedIndex < 0) { return ""; }
    return select.options[select.selectedIndex].text;
  }

  function offsetOf(iso) {
    var match = /(Z|[+-]\d{2}:\d{2})$/.exec(iso || "");
    return match ? (match[1] === "Z" ? "+00:00" : match[1]) : "";
  }

  /* "2025-01-06T18:00:00+08:00" -> "2025-01-06 18:00:00 +08:00 Mon", as the server renders it. */
  function formatRun(iso) {
    var match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(iso);
    if (!match) { return iso; }
    var day = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]))).getUTCDay();
    var offset = match[5] === "Z" ? "+00:00" : match[5];
    return match[1] + "-" + match[2] + "-" + match[3] + " " + match[4] + " " + offset + " " + config.weekdays[day];
  }

  /* ---------------------------------------------------------------------------------- workflow editor */

  var workflow = {
    root: null,
    candidates: [],
    byId: {},
    cy: null,

    textarea: function () { return $("id_config"); },

    read: function () {
      var raw = this.textarea().value.trim();
      if (!raw) { return {}; }
      try {
        var value = JSON.parse(raw);
        return value && typeof value === "object" && !Array.isArray(value) ? value : null;
      } catch (error) { return null; }
    },

    write: function (value) {
      this.textarea().value = JSON.stringify(value, null, 2);
      this.draw(value);
      this.validate();
    },

    steps: function (value) { return Array.isArray(value.tasks) ? value.tasks : []; },

    select: function (options, selected, multiple) {
      var select = document.createElement("select");
      if (multiple) { select.multiple = true; select.size = Math.min(4, Math.max(2, options.length)); }
      options.forEach(function (option) {
        var element = document.createElement("option");
        element.value = option[0];
        element.textContent = option[1];
        if (multiple ? selected.indexOf(option[0]) >= 0 : String(selected) === String(option[0])) {
          element.selected = true;
        }
        select.appendChild(element);
      });
      return select;
    },

    label: function (id) {
      var task = this.byId[id];
      return task ? task.name + " (#" + id + ")" + (task.enabled ? "" : " – " + text.disabled) : "#" + id;
    },

    render: function () {
      var box = this.root.querySelector(".zq-workflow__table");
      box.innerHTML = "";
      var value = this.read();
      if (value === null) {
        box.textContent = text.invalidJson;
        return;
      }
      var self = this;
      var controls = document.createElement("div");
      controls.className = "zq-workflow__controls";
      var kind = this.select([["serial", text.serial], ["parallel", text.parallel]], value.workflow_type || "serial");
      kind.name = "zq-workflow-type";
      var failure = this.select([["stop", text.stop], ["continue", text.continue]], value.on_failure || "stop");
      failure.name = "zq-on-failure";
      var parallel = document.createElement("input");
      parallel.type = "number";
      parallel.min = 1;
      parallel.max = 100;
      parallel.className = "vIntegerField";
      parallel.name = "zq-max-parallel";
      parallel.value = value.max_parallel || 4;
      [[text.workflowType, kind], [text.onFailure, failure], [text.maxParallel, parallel]].forEach(function (pair) {
        var label = document.createElement("label");
        label.textContent = pair[0] + " ";
        label.appendChild(pair[1]);
        controls.appendChild(label);
      });
      box.appendChild(controls);

      var steps = this.steps(value);
      var table = document.createElement("table");
      table.className = "zq-steps";
      var head = table.createTHead().insertRow();
      [text.step, text.dependsOn, ""].forEach(function (title) {
        var cell = document.createElement("th");
        cell.textContent = title;
        head.appendChild(cell);
      });
      var body = table.createTBody();
      var choices = [["", text.choose]].concat(this.candidates.map(function (task) {
        return [String(task.id), self.label(task.id)];
      }));
      steps.forEach(function (step, index) {
        var row = body.insertRow();
        row.setAttribute("data-index", index);
        var picker = self.select(choices, step.task_id === undefined ? "" : step.task_id, false);
        picker.className = "zq-step-task";
        row.insertCell().appendChild(picker);
        var others = steps.filter(function (other, position) { return position !== index && other.task_id !== undefined; })
          .map(function (other) { return [String(other.task_id), self.label(other.task_id)]; });
        var deps = self.select(others, (step.dependencies || []).map(String), true);
        deps.className = "zq-step-deps";
        row.insertCell().appendChild(deps);
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "zq-btn zq-step-remove";
        remove.textContent = text.remove;
        row.insertCell().appendChild(remove);
      });
      if (!steps.length) {
        var empty = body.insertRow().insertCell();
        empty.colSpan = 3;
        empty.className = "zq-muted";
        empty.textContent = text.noSteps;
      }
      box.appendChild(table);
      var add = document.createElement("button");
      add.type = "button";
      add.className = "zq-btn zq-step-add";
      add.textContent = text.addStep;
      box.appendChild(add);

      box.onchange = function () { self.collect(); };
      box.oninput = function (event) { if (event.target.name === "zq-max-parallel") { self.collect(); } };
      box.onclick = function (event) {
        if (event.target.classList.contains("zq-step-add")) {
          var current = self.read() || {};
          var used = self.steps(current).map(function (step) { return step.task_id; });
          var next = self.candidates.filter(function (task) { return used.indexOf(task.id) < 0; })[0];
          if (!next) { return; }
          current.workflow_type = current.workflow_type || "serial";
          current.tasks = self.steps(current).concat([{ task_id: next.id, name: next.name, dependencies: [] }]);
          self.write(current);
          self.render();
        } else if (event.target.classList.contains("zq-step-remove")) {
          var at = Number(event.target.closest("tr").getAttribute("data-index"));
          var now = self.read() || {};
          var removed = self.steps(now)[at];
          now.tasks = self.steps(now).filter(function (step, position) { return position !== at; });
          now.tasks.forEach(function (step) {
            step.dependencies = (step.dependencies || []).filter(function (dep) { return !removed || dep !== removed.task_id; });
          });
          self.write(now);
          self.render();
        }
      };
      this.draw(value);
    },

    collect: function () {
      var value = this.read() || {};
      var box = this.root.querySelector(".zq-workflow__table");
      value.workflow_type = box.querySelector("[name=zq-workflow-type]").value;
      value.on_failure = box.querySelector("[name=zq-on-failure]").value;
      var parallel = Number(box.querySelector("[name=zq-max-parallel]").value);
      if (value.workflow_type === "parallel" && parallel) { value.max_parallel = parallel; } else { delete value.max_parallel; }
      var self = this;
      var steps = [];
      Array.prototype.forEach.call(box.querySelectorAll("tbody tr[data-index]"), function (row) {
        var id = row.querySelector(".zq-step-task").value;
        if (!id) { return; }
        var deps = Array.prototype.filter.call(row.querySelector(".zq-step-deps").options, function (option) {
          return option.selected;
        }).map(function (option) { return Number(option.value); });
        var task = self.byId[id];
        steps.push({ task_id: Number(id), name: task ? task.name : "", dependencies: deps });
      });
      value.tasks = steps;
      this.write(value);
      this.render();
    },

    draw: function (value) {
      var container = $("zq-dag");
      if (!container || !window.zqDag || value === null) { return; }
      var steps = this.steps(value).filter(function (step) { return step.task_id !== undefined; });
      container.hidden = steps.length === 0;
      if (this.cy) { this.cy.destroy(); this.cy = null; }
      if (!steps.length) { return; }
      var self = this;
      var nodes = steps.map(function (step) {
        var task = self.byId[step.task_id];
        return {
          id: step.task_id,
          label: task ? task.name : (step.name || "#" + step.task_id),
          status: task ? task.status : "",
        };
      });
      var edges = [];
      steps.forEach(function (step) {
        (step.dependencies || []).forEach(function (dep) { edges.push({ source: dep, target: step.task_id }); });
      });
      this.cy = window.zqDag.draw(container, nodes, edges);
    },

    validate: debounce(function () {
      var value = workflow.read();
      var list = workflow.root.querySelector(".zq-workflow__errors");
      var ok = workflow.root.querySelector(".zq-workflow__valid");
      if (!config.validateUrl || value === null || taskType() !== "workflow") { return; }
      var taskId = workflow.root.getAttribute("data-task-id");
      postJson(config.validateUrl, { config: value, task_id: taskId ? Number(taskId) : null }).then(function (answer) {
        list.innerHTML = "";
        var errors = answer.errors || [];
        if (!Array.isArray(errors)) {
          errors = [].concat.apply([], Object.keys(errors).map(function (key) { return [].concat(errors[key]); }));
        }
        errors.forEach(function (message) {
          var item = document.createElement("li");
          item.textContent = message;
          list.appendChild(item);
        });
        list.hidden = errors.length === 0;
        ok.hidden = !answer.valid;
      });
    }, 400),

    init: function () {
      this.root = $("zq-workflow-editor");
      if (!this.root || !this.textarea()) { return false; }
      var data = $("zq-workflow-tasks");
      this.candidates = data ? JSON.parse(data.textContent) : [];
      var self = this;
      this.candidates.forEach(function (task) { self.byId[task.id] = task; });
      this.textarea().addEventListener("input", debounce(function () {
        if (taskType() === "workflow") { self.render(); self.validate(); }
      }, 400));
      return true;
    },
  };

  /* ---------------------------------------------------------------------------------- start */

  document.addEventListener("DOMContentLoaded", function () {
    var settings = $("zq-task-form-config");
    if (!settings) { return; }
    config = JSON.parse(settings.textContent);
    text = config.text;
    preview.box = $("zq-schedule-preview");
    var hasEditor = workflow.init();
    var refresh = debounce(preview.refresh, 300);
    [
      "id_cron_expression", "id_interval_seconds", "id_timezone", "id_run_at_0", "id_run_at_1", "id_calendar",
      "id_calendar_rule", "id_calendar_n", "id_event_calendar", "id_valid_from_0", "id_valid_from_1",
      "id_valid_until_0", "id_valid_until_1", "id_jitter_seconds",
    ].forEach(function (id) {
      var input = $(id);
      if (input) { input.addEventListener("input", refresh); input.addEventListener("change", refresh); }
    });
    var type = $("id_task_type");
    if (type) {
      type.addEventListener("change", function () { showByType(); preview.refresh(); });
    }
    if (hasEditor) { showByType(); } else {
      var schedule = document.querySelector("fieldset.zq-schedule");
      if (schedule) { schedule.hidden = taskType() === "manual_task"; }
    }
    preview.refresh();
    if (hasEditor && taskType() === "workflow") { workflow.validate(); }
  });
})();
