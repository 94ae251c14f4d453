// The pages that show state: the application list, one application, the deployments. Each has
// mount(arg) → skeleton HTML, optionally init(arg), fetch(arg) → data and render(data).

import { api, appPath, loadQueue } from "./api.js";
import {
  $, appActions, appHref, appStatus, button, definition, esc, fmtMem, fmtNum, fmtTime, healthSummary,
  instancesText, setHTML, statusBadge, taskHealth,
} from "./render.js";

export const AppsView = {
  last: null,
  mount: () => `
    <section aria-labelledby="apps-title">
      <div class="toolbar">
        <h1 id="apps-title">Applications</h1>
        <label class="filter">Filter <input type="search" id="apps-filter" data-testid="apps-filter"
          placeholder="id contains" autocomplete="off"></label>
      </div>
      <div id="apps-list" data-testid="apps-list"><p class="muted">Loading…</p></div>
    </section>`,
  init() {
    $("#apps-filter").addEventListener("input", () => this.last && this.render(this.last));
  },
  async fetch() {
    const query = { embed: ["apps.counts", "apps.deployments", "apps.lastTaskFailure"] };
    const [apps, queue] = await Promise.all([api("GET", "v2/apps", { query }), loadQueue()]);
    return { apps: apps.body?.apps ?? [], queue };
  },
  render(data) {
    this.last = data;
    const needle = ($("#apps-filter")?.value ?? "").trim().toLowerCase();
    const apps = data.apps.filter((a) => a.id.toLowerCase().includes(needle)).sort((a, b) => a.id.localeCompare(b.id));
    const html = apps.length === 0
      ? `<p data-testid="no-apps">No applications${needle ? " match" : ""}. <a href="#/create">Create one</a>.</p>`
      : `<table class="grid" data-testid="apps-table">
          <thead><tr><th scope="col">ID</th><th scope="col">CPUs</th><th scope="col">Memory</th>
            <th scope="col">Status</th><th scope="col">Running / target</th><th scope="col">Health</th>
            <th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>${apps.map((app) => appRow(app, data.queue)).join("")}</tbody></table>`;
    setHTML($("#apps-list"), html);
  },
};

const appRow = (app, queue) => `
  <tr data-testid="app-row" data-app-id="${esc(app.id)}">
    <th scope="row"><a href="${appHref(app.id)}" data-testid="app-link">${esc(app.id)}</a></th>
    <td data-testid="app-cpus">${fmtNum(app.cpus)}</td>
    <td data-testid="app-mem">${fmtMem(app.mem)}</td>
    <td>${statusBadge(appStatus(app, queue))}</td>
    <td data-testid="app-instances">${instancesText(app)}</td>
    <td>${healthSummary(app)}</td>
    <td class="actions">${appActions(app)}</td>
  </tr>`;

export const AppView = {
  shown: null, // {id, version, config} of the version being looked at; kept across refreshes
  mount: (id) => `
    <nav class="crumbs" aria-label="Breadcrumb"><a href="#/apps">Applications</a> › <span>${esc(id)}</span></nav>
    <div id="app-detail" data-testid="app-detail" data-app-id="${esc(id)}"><p class="muted">Loading…</p></div>
    <section id="version-view" data-testid="version-view" aria-live="polite"></section>`,
  init(id) {
    if (this.shown?.id !== id) this.shown = null;
    this.renderVersion();
  },
  async fetch(id) {
    const query = { embed: ["app.tasks", "app.counts", "app.deployments", "app.lastTaskFailure", "app.taskStats"] };
    const [app, versions, queue] = await Promise.all([
      api("GET", appPath(id), { query }).catch((err) => {
        if (err.status === 404) return null;
        throw err;
      }),
      api("GET", `${appPath(id)}/versions`).then((r) => r.body?.versions ?? [], () => []),
      loadQueue(),
    ]);
    return { id, app: app?.body?.app ?? null, versions, queue };
  },
  render({ id, app, versions, queue }) {
    if (app === null) {
      setHTML($("#app-detail"), `<p data-testid="app-missing">App '${esc(id)}' does not exist.
        <a href="#/apps">Back to the applications</a>.</p>`);
      return;
    }
    const tasks = app.tasks ?? [];
    const html = `
      <div class="detail-head">
        <h1>${esc(app.id)}</h1> ${statusBadge(appStatus(app, queue), "detail-status")}
        <span class="counts">running / target <strong data-testid="detail-instances">${instancesText(app)}</strong></span>
        ${healthSummary(app, "detail-health")}
      </div>
      <div class="toolbar">${appActions(app)}
        <a class="button" role="button" href="#/edit/${encodeURIComponent(app.id)}" data-testid="edit-app">Edit</a></div>
      <dl class="facts"><dt>CPUs</dt><dd>${fmtNum(app.cpus)}</dd><dt>Memory</dt><dd>${fmtMem(app.mem)}</dd>
        <dt>Version</dt><dd>${fmtTime(app.version)}</dd>
        <dt>Deployments</dt><dd data-testid="detail-deployments">${(app.deployments ?? []).map((d) => esc(d.id)).join(", ") || "none"}</dd></dl>
      <section aria-labelledby="tasks-title"><h2 id="tasks-title">Tasks (<span data-testid="task-count">${tasks.length}</span>)</h2>
        ${tasks.length === 0 ? `<p class="muted" data-testid="no-tasks">No tasks.</p>` : `
        <table class="grid" data-testid="tasks-table">
          <thead><tr><th scope="col">Task</th><th scope="col">Host:ports</th><th scope="col">State</th>
            <th scope="col">Health</th><th scope="col">Updated</th><th scope="col">Version</th>
            <th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>${tasks.map((t) => taskRow(t, app.id)).join("")}</tbody></table>`}
      </section>
      ${failureSection(app.lastTaskFailure)}
      <section aria-labelledby="config-title"><h2 id="config-title">Configuration</h2>
        <pre class="json" data-testid="app-config">${esc(JSON.stringify(definition(app), null, 2))}</pre></section>
      <section aria-labelledby="versions-title"><h2 id="versions-title">Versions</h2>
        <ol class="versions" data-testid="versions-list">${versions.map((v) => versionItem(app, v)).join("")}</ol></section>`;
    setHTML($("#app-detail"), html);
  },
  renderVersion() {
    const s = this.shown;
    setHTML($("#version-view"), s === null ? "" : `
      <h2>Version ${fmtTime(s.version)} of ${esc(s.id)}</h2>
      <pre class="json" data-testid="version-config">${esc(JSON.stringify(s.config, null, 2))}</pre>`);
  },
};

function taskRow(task, appId) {
  const ports = task.ports ?? [];
  const endpoint = ports.length ? ports.map((p) => `${task.host}:${p}`).join(", ") : task.host;
  const d = { id: task.id, app: appId };
  return `
    <tr data-testid="task-row" data-task-id="${esc(task.id)}">
      <td class="mono" data-testid="task-id">${esc(task.id)}</td>
      <td data-testid="task-endpoint">${esc(endpoint)}</td>
      <td data-testid="task-state">${esc(task.state)}</td>
      <td data-testid="task-health">${taskHealth(task)}</td>
      <td>${fmtTime(task.startedAt ?? task.stagedAt)}</td>
      <td>${fmtTime(task.version)}</td>
      <td class="actions"><div class="buttons">
        ${button("kill", "Kill", d, { testid: "kill-task", name: `Kill ${task.id}` })}
        ${button("kill-scale", "Kill & scale", d, { testid: "kill-scale-task", name: `Kill and scale down ${task.id}` })}
      </div></td>
    </tr>`;
}

function failureSection(f) {
  if (!f) return "";
  return `<section aria-labelledby="failure-title"><h2 id="failure-title">Last task failure</h2>
    <dl class="facts" data-testid="last-task-failure"><dt>Task</dt><dd class="mono">${esc(f.taskId)}</dd>
      <dt>State</dt><dd>${esc(f.state)}</dd><dt>Message</dt><dd>${esc(f.message)}</dd>
      <dt>Host</dt><dd>${esc(f.host)}</dd><dt>At</dt><dd>${fmtTime(f.timestamp)}</dd>
      <dt>Version</dt><dd>${fmtTime(f.version)}</dd></dl></section>`;
}

function versionItem(app, version) {
  const current = version === app.version;
  const d = { id: app.id, version };
  return `<li data-testid="version-item" data-version="${esc(version)}">${fmtTime(version)}
    ${current ? `<span class="tag">current</span>` : ""}
    ${button("show-version", "Show", d, { testid: "show-version", name: `Show version ${version}` })}
    ${current ? "" : button("apply-version", "Apply", d, { testid: "apply-version", name: `Apply version ${version}` })}</li>`;
}

export const DeploymentsView = {
  mount: () => `
    <section aria-labelledby="deployments-title">
      <div class="toolbar"><h1 id="deployments-title">Deployments</h1></div>
      <div id="deployments-list" data-testid="deployments-list"><p class="muted">Loading…</p></div>
    </section>`,
  fetch: () => api("GET", "v2/deployments").then((r) => r.body ?? []),
  render(deployments) {
    const html = deployments.length === 0
      ? `<p data-testid="no-deployments">No deployments in progress.</p>`
      : `<table class="grid" data-testid="deployments-table">
          <thead><tr><th scope="col">Deployment</th><th scope="col">Affected apps</th>
            <th scope="col">Current actions</th><th scope="col">Step</th><th scope="col">Started</th>
            <th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>${deployments.map(deploymentRow).join("")}</tbody></table>`;
    setHTML($("#deployments-list"), html);
  },
};

function deploymentRow(dep) {
  const apps = (dep.affectedApps ?? []).map((id) => `<a href="${appHref(id)}">${esc(id)}</a>`).join(", ");
  const actions = (dep.currentActions ?? []).map((a) => `${esc(a.action)} ${esc(a.app ?? a.pod ?? "")}`).join("<br>");
  const d = { id: dep.id };
  return `
    <tr data-testid="deployment-row" data-deployment-id="${esc(dep.id)}">
      <td class="mono">${esc(dep.id)}</td><td data-testid="deployment-apps">${apps}</td>
      <td data-testid="deployment-actions">${actions || "—"}</td>
      <td data-testid="deployment-step">${esc(dep.currentStep)} / ${esc(dep.totalSteps)}</td>
      <td>${fmtTime(dep.version)}</td>
      <td class="actions"><div class="buttons">
        ${button("rollback", "Rollback", d, { testid: "rollback-deployment", name: `Roll back deployment ${dep.id}` })}
        ${button("stop-deployment", "Stop", d, { testid: "stop-deployment", name: `Stop deployment ${dep.id}`, danger: true })}
      </div></td>
    </tr>`;
}
