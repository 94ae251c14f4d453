// Create and edit an application: form fields for the usual keys or the raw JSON, and Marathon's
// 400/422 details shown next to their field or listed with their path (reference §1.5).

import { api, appPath, forceQuery, outcome } from "./api.js";
import { notify, showError } from "./notices.js";
import { $, appHref, definition, esc, setHTML } from "./render.js";

// form field → the 422 detail path Marathon reports for it (§1.5)
const FORM_FIELDS = {
  id: "/id", cmd: "/cmd", cpus: "/cpus", mem: "/mem", instances: "/instances", image: "/container/docker/image",
};
const NEW_APP = { id: "", cmd: "", cpus: 0.1, mem: 128, instances: 1 };
// Play's JSON reader codes in 400/422 details (§1.5), said in words; the code stays visible
const PLAY_ERRORS = {
  "error.min": "is below the minimum", "error.max": "is above the maximum", "error.path.missing": "is required",
  "error.expected.jsnumber": "must be a number", "error.expected.jsstring": "must be a string",
  "error.expected.jsboolean": "must be true or false", "error.expected.jsarray": "must be an array",
  "error.expected.jsobject": "must be an object", "error.minLength": "is too short", "error.maxLength": "is too long",
  "error.pattern": "has the wrong form",
};
const explain = (e) => (PLAY_ERRORS[e] ? `${PLAY_ERRORS[e]} (${e})` : e);

const formField = (name, label, input, hint = "") => `
  <div class="field">
    <label for="field-${name}">${label}</label>${input}
    ${hint ? `<small>${hint}</small>` : ""}
    <p class="field-error" id="error-${name}" data-testid="error-${name}"></p>
  </div>`;

const inputAttrs = (name) => `id="field-${name}" name="${name}" data-testid="field-${name}" aria-describedby="error-${name}"`;

export const FormView = {
  editing: null, // the app id being edited; null when creating
  base: {}, // the definition the form fields are laid over (keeps the keys the form has no field for)
  mode: "form",
  mounted: 0, // counts mounts, so a load that returns after the user went elsewhere is dropped
  mount(id) {
    const editing = id !== null;
    return `
    <section aria-labelledby="form-title">
      ${editing ? `<nav class="crumbs" aria-label="Breadcrumb"><a href="#/apps">Applications</a> › <a href="${appHref(id)}">${esc(id)}</a></nav>` : ""}
      <h1 id="form-title">${editing ? `Edit ${esc(id)}` : "Create Application"}</h1>
      <form id="app-form" data-testid="app-form" novalidate>
        <div class="mode buttons" role="group" aria-label="Editor">
          <button type="button" id="mode-form" data-testid="mode-form" aria-pressed="true">Form</button>
          <button type="button" id="mode-json" data-testid="mode-json" aria-pressed="false">JSON</button>
        </div>
        <div id="form-message" class="form-message" role="alert" data-testid="form-message" hidden></div>
        <ul id="form-errors" class="form-errors" data-testid="form-errors"></ul>
        <fieldset id="form-fields">
          <legend class="sr-only">Application</legend>
          ${formField("id", "ID", `<input ${inputAttrs("id")} required autocomplete="off" placeholder="/my-app"${editing ? " readonly" : ""}>`)}
          ${formField("cmd", "Command", `<textarea ${inputAttrs("cmd")} rows="3" spellcheck="false" placeholder="sleep 600"></textarea>`, "run by /bin/sh -c; may be empty with a Docker image")}
          <div class="row">
            ${formField("cpus", "CPUs", `<input ${inputAttrs("cpus")} type="number" step="any" min="0">`)}
            ${formField("mem", "Memory (MiB)", `<input ${inputAttrs("mem")} type="number" step="any" min="0">`)}
            ${formField("instances", "Instances", `<input ${inputAttrs("instances")} type="number" step="1" min="0">`)}
          </div>
          ${formField("image", "Docker image (optional)", `<input ${inputAttrs("image")} autocomplete="off" placeholder="library/nginx:1.25">`)}
        </fieldset>
        <div id="json-editor" class="field" hidden>
          <label for="field-json">App definition (JSON)</label>
          <textarea id="field-json" data-testid="field-json" rows="22" spellcheck="false" aria-describedby="error-json"></textarea>
          <p class="field-error" id="error-json" data-testid="error-json"></p>
        </div>
        <div class="buttons">
          <button type="submit" class="primary" data-testid="submit-app">${editing ? "Change and deploy" : "Create Application"}</button>
          <a class="button" role="button" href="${editing ? appHref(id) : "#/apps"}" data-testid="cancel-form">Cancel</a>
        </div>
      </form>
    </section>`;
  },
  async init(id) {
    this.editing = id;
    const mount = ++this.mounted;
    $("#mode-form").addEventListener("click", () => this.switchMode("form"));
    $("#mode-json").addEventListener("click", () => this.switchMode("json"));
    $("#app-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit(false);
    });
    if (id === null) {
      this.base = { ...NEW_APP };
      this.fill(this.base);
      this.showMode("form");
      $("#field-id").focus();
      return;
    }
    this.showMode("json");
    try {
      const r = await api("GET", appPath(id));
      if (mount !== this.mounted || !$("#app-form")) return; // navigated away meanwhile
      this.base = definition(r.body.app, { keepVersion: false });
      this.fill(this.base);
      $("#field-json").value = JSON.stringify(this.base, null, 2);
    } catch (err) {
      this.showErrors(err);
    }
  },
  fill(def) {
    for (const name of ["id", "cmd", "cpus", "mem", "instances"]) $(`#field-${name}`).value = def[name] ?? "";
    $("#field-image").value = def.container?.docker?.image ?? "";
  },
  // the definition the fields describe, laid over `base`
  fromFields() {
    const def = structuredClone(this.base);
    const text = (name) => $(`#field-${name}`).value.trim();
    def.id = text("id");
    if (text("cmd")) def.cmd = $("#field-cmd").value;
    else delete def.cmd;
    for (const name of ["cpus", "mem", "instances"]) {
      const raw = text(name);
      if (raw === "") delete def[name];
      else def[name] = Number.isFinite(Number(raw)) ? Number(raw) : raw; // Marathon reports a non-number
    }
    const image = text("image");
    if (image) {
      const container = def.container ?? { type: "DOCKER" };
      def.container = { ...container, docker: { ...(container.docker ?? {}), image } };
    } else if (def.container?.docker) {
      delete def.container;
    }
    return def;
  },
  current() {
    if (this.mode === "form") return this.fromFields();
    return JSON.parse($("#field-json").value);
  },
  switchMode(mode) {
    this.clearErrors();
    if (mode === "json" && this.mode === "form") {
      $("#field-json").value = JSON.stringify(this.fromFields(), null, 2);
    } else if (mode === "form" && this.mode === "json") {
      try {
        this.base = JSON.parse($("#field-json").value);
        this.fill(this.base);
      } catch (err) {
        $("#error-json").textContent = `Invalid JSON: ${err.message}`;
        return;
      }
    }
    this.showMode(mode);
  },
  showMode(mode) {
    this.mode = mode;
    $("#form-fields").hidden = mode !== "form";
    $("#json-editor").hidden = mode !== "json";
    $("#mode-form").setAttribute("aria-pressed", String(mode === "form"));
    $("#mode-json").setAttribute("aria-pressed", String(mode === "json"));
  },
  clearErrors() {
    $("#form-message").hidden = true;
    $("#form-message").textContent = "";
    setHTML($("#form-errors"), "");
    for (const el of document.querySelectorAll("#app-form .field-error")) el.textContent = "";
    for (const el of document.querySelectorAll("#app-form [aria-invalid]")) el.removeAttribute("aria-invalid");
  },
  // Marathon's message on top; each detail next to its field (form mode) or listed with its path
  showErrors(err) {
    this.clearErrors();
    $("#form-message").textContent = err.message;
    $("#form-message").hidden = false;
    const listed = [];
    for (const { path = "", errors: codes = [] } of err.details) {
      const errors = codes.map(explain);
      const name = this.mode === "form" && Object.keys(FORM_FIELDS).find((n) => FORM_FIELDS[n] === path);
      if (name) {
        const out = $(`#error-${name}`);
        out.textContent = [out.textContent, ...errors].filter(Boolean).join("; ");
        $(`#field-${name}`).setAttribute("aria-invalid", "true");
      } else {
        listed.push(`<li data-path="${esc(path)}"><code>${esc(path || "/")}</code> ${esc(errors.join("; "))}</li>`);
      }
    }
    setHTML($("#form-errors"), listed.join(""));
  },
  async submit(force) {
    this.clearErrors();
    let def;
    try {
      def = this.current();
    } catch (err) {
      $("#error-json").textContent = `Invalid JSON: ${err.message}`;
      $("#field-json").setAttribute("aria-invalid", "true");
      return;
    }
    const editing = this.editing;
    const submitButton = $('#app-form [type="submit"]');
    submitButton.disabled = true;
    try {
      const r = editing === null
        ? await api("POST", "v2/apps", { body: def, query: forceQuery(force) })
        : await api("PUT", appPath(editing), { body: def, query: forceQuery(force) });
      const id = editing ?? r.body?.id ?? def.id;
      notify(`${editing === null ? "Created" : "Changed"} ${id}: ${outcome(r)}`);
      location.hash = editing === null ? "#/apps" : appHref(editing);
    } catch (err) {
      this.showErrors(err);
      if (err.locked && !force) showError(err.message, () => this.submit(true));
    } finally {
      submitButton.disabled = false;
    }
  },
};
