/* The action picker of the task form: choose a registered action, fill in its declared parameters.
 *
 * The JSON config textarea stays the source of truth: the picker writes each change into it and reads it
 * back when it is edited by hand, so every config key stays reachable and the form works without this
 * script. The server checks the saved config with the validator the API uses; its messages show on the
 * config field.
 */
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }

  function readConfig(textarea) {
    try {
      var value = JSON.parse(textarea.value || "{}");
      return value && typeof value === "object" && !Array.isArray(value) ? value : null;
    } catch (error) {
      return null;
    }
  }

  function writeConfig(textarea, config) {
    textarea.value = JSON.stringify(config, null, 2);
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function inputFor(param, value) {
    var input;
    if (param.choices && param.choices.length) {
      input = document.createElement("select");
      var blank = document.createElement("option");
      blank.value = "";
      blank.textContent = param.default === null ? "—" : "— (" + param.default + ")";
      input.appendChild(blank);
      param.choices.forEach(function (choice) {
        var option = document.createElement("option");
        option.value = String(choice);
        option.textContent = String(choice);
        input.appendChild(option);
      });
      input.value = value === undefined || value === null ? "" : String(value);
    } else if (param.type === "boolean") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = value === undefined || value === null ? param.default === true : value === true;
    } else {
      input = document.createElement("input");
      input.type = param.type === "integer" || param.type === "number" ? "number" : "text";
      if (param.type === "integer") { input.step = "1"; }
      if (param.type === "number") { input.step = "any"; }
      if (param.minimum !== null) { input.min = String(param.minimum); }
      if (param.maximum !== null) { input.max = String(param.maximum); }
      if (param.default !== null) { input.placeholder = String(param.default); }
      if (param.type === "date") { input.placeholder = param.default === null ? "YYYYMMDD" : String(param.default); }
      if (value !== undefined && value !== null) {
        input.value = Array.isArray(value) ? value.join(",") : String(value);
      }
    }
    input.id = "zq-param-" + param.name;
    input.name = "";  // never submitted: the config textarea carries the values
    input.dataset.param = param.name;
    input.required = false;
    return input;
  }

  function valueOf(param, input) {
    if (param.type === "boolean") { return input.checked; }
    var raw = input.value.trim();
    if (raw === "") { return undefined; }
    if (param.type === "integer" || param.type === "number") {
      var number = Number(raw);
      return isNaN(number) ? raw : number;
    }
    if (param.choices && param.choices.length) {
      var match = param.choices.filter(function (choice) { return String(choice) === raw; });
      return match.length ? match[0] : raw;
    }
    return raw;
  }

  function Picker(root, textarea, actions) {
    this.root = root;
    this.textarea = textarea;
    this.actions = {};
    var self = this;
    actions.forEach(function (entry) { self.actions[entry.name] = entry; });
    this.select = root.querySelector("select.zq-action-picker__select");
    this.fields = root.querySelector(".zq-action-picker__fields");
    this.description = root.querySelector(".zq-action-picker__description");
    this.invalid = root.querySelector(".zq-action-picker__invalid");
  }

  Picker.prototype.render = function () {
    var config = readConfig(this.textarea);
    this.invalid.hidden = config !== null;
    this.select.disabled = config === null;
    this.fields.textContent = "";
    if (config === null) { return; }
    var entry = this.actions[config.task_action];
    this.select.value = entry ? entry.name : "";
    this.description.textContent = entry ? entry.description : "";
    if (!entry) { return; }
    var self = this;
    entry.parameters.forEach(function (param) {
      var row = document.createElement("div");
      row.className = "zq-action-picker__param";
      var label = document.createElement("label");
      label.htmlFor = "zq-param-" + param.name;
      label.textContent = param.name + (param.required ? " *" : "");
      var input = inputFor(param, config[param.name]);
      input.addEventListener(param.type === "boolean" || input.tagName === "SELECT" ? "change" : "input", function () {
        self.update(param, input);
      });
      row.appendChild(label);
      row.appendChild(input);
      if (param.help) {
        var help = document.createElement("div");
        help.className = "help";
        help.textContent = param.help;
        row.appendChild(help);
      }
      self.fields.appendChild(row);
    });
  };

  Picker.prototype.update = function (param, input) {
    var config = readConfig(this.textarea);
    if (config === null) { return; }
    var value = valueOf(param, input);
    if (value === undefined) { delete config[param.name]; } else { config[param.name] = value; }
    this.writing = true;
    writeConfig(this.textarea, config);
    this.writing = false;
  };

  Picker.prototype.choose = function (name) {
    var config = readConfig(this.textarea);
    if (config === null) { return; }
    var before = this.actions[config.task_action];
    if (before) {
      before.parameters.forEach(function (param) { delete config[param.name]; });
    }
    if (name) {
      delete config.command;
      config.task_action = name;
    } else {
      delete config.task_action;
    }
    writeConfig(this.textarea, config);
    this.render();
  };

  Picker.prototype.start = function () {
    var self = this;
    this.select.addEventListener("change", function () { self.choose(self.select.value); });
    this.textarea.addEventListener("input", function () { if (!self.writing) { self.render(); } });
    var type = $("id_task_type");
    var row = this.root.closest(".field-action_picker") || this.root;
    var showForType = function () { row.hidden = type.value === "workflow"; };
    if (type) { type.addEventListener("change", showForType); showForType(); }
    this.render();
  };

  document.addEventListener("DOMContentLoaded", function () {
    var root = $("zq-action-picker");
    var textarea = $("id_config");
    var data = $("zq-actions");
    if (!root || !textarea || !data) { return; }
    new Picker(root, textarea, JSON.parse(data.textContent)).start();
    root.hidden = false;
  });
})();
