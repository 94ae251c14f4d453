// HTML fragments and formatting shared by the views: every value is escaped; status and health as
// Marathon's UI derives them (reference §9.3).

// AppInfo keys that describe the running app, not its definition (§2.1 embeds)
const RUNTIME_KEYS = [
  "tasks", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments",
  "lastTaskFailure", "taskStats", "readinessCheckResults",
];
const VERSION_KEYS = ["version", "versionInfo"];

export const $ = (selector, root = document) => root.querySelector(selector);

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);
export const fmtNum = (n) => (typeof n === "number" ? String(Math.round(n * 1000) / 1000) : "—");
export const fmtMem = (mb) => (typeof mb !== "number" ? "—" : mb >= 1024 ? `${fmtNum(mb / 1024)} GiB` : `${fmtNum(mb)} MiB`);
export const fmtTime = (ts) => (ts ? `<time datetime="${esc(ts)}">${esc(ts.replace("T", " ").replace(/\.\d+Z$/, "Z"))}</time>` : "—");
export const appHref = (id) => `#/apps/${encodeURIComponent(id)}`;

const rendered = new WeakMap();
export function setHTML(el, html) {
  if (el && rendered.get(el) !== html) {
    el.innerHTML = html;
    rendered.set(el, html);
  }
}

export function definition(app, { keepVersion = true } = {}) {
  const def = { ...app };
  for (const key of [...RUNTIME_KEYS, ...(keepVersion ? [] : VERSION_KEYS)]) delete def[key];
  return def;
}

export function appStatus(app, queue) {
  let status = "Running";
  if ((app.deployments ?? []).length > 0) status = "Deploying";
  else if (app.instances === 0 && (app.tasksRunning ?? 0) === 0) status = "Suspended";
  const entry = queue.find((e) => e.app?.id === app.id && e.delay);
  if (entry?.delay.overdue === false && entry.delay.timeLeftSeconds > 0) status = "Delayed";
  else if (entry?.delay.overdue === true) status = "Waiting";
  return status;
}

export const statusBadge = (status, testid = "app-status") =>
  `<span class="status status-${status.toLowerCase()}" data-testid="${testid}">${status}</span>`;

export function healthSummary(app, testid = "app-health") {
  const running = app.tasksRunning ?? 0;
  const healthy = app.tasksHealthy ?? 0;
  const unhealthy = app.tasksUnhealthy ?? 0;
  const staged = app.tasksStaged ?? 0;
  const unknown = Math.max(running - healthy - unhealthy, 0);
  const parts = [
    [healthy, "healthy"], [unhealthy, "unhealthy"], [unknown, "unknown"], [staged, "staged"],
    [Math.max(app.instances - running - staged, 0), "unscheduled"],
  ].filter(([n]) => n > 0);
  const badges = parts.map(([n, kind]) => `<span class="health health-${kind}">${n} ${kind}</span>`);
  return `<span class="health-summary" data-testid="${testid}">${badges.join(" ") || "—"}</span>`;
}

export function taskHealth(task) {
  const results = task.healthCheckResults ?? [];
  if (results.length === 0) return `<span class="muted" title="no health check result">—</span>`;
  const ok = results.every((r) => r.alive && r.firstSuccess);
  return ok ? `<span class="health health-healthy">Healthy</span>` : `<span class="health health-unhealthy">Unhealthy</span>`;
}

export const instancesText = (app) => `${app.tasksRunning ?? 0} / ${app.instances}`;

export function button(action, label, data, { testid, danger = false, name, disabled = false } = {}) {
  const attrs = Object.entries(data).map(([k, v]) => ` data-${k}="${esc(v)}"`).join("");
  return `<button type="button" data-action="${action}"${attrs} data-testid="${testid ?? action}"` +
    `${name ? ` aria-label="${esc(name)}"` : ""}${danger ? ' class="danger"' : ""}${disabled ? " disabled" : ""}>${esc(label)}</button>`;
}

export function appActions(app) {
  const d = { id: app.id, instances: app.instances };
  return `<div class="buttons" role="group" aria-label="Actions for ${esc(app.id)}">` +
    button("scale", "Scale", d, { testid: "scale-app", name: `Scale ${app.id}` }) +
    button("restart", "Restart", d, { testid: "restart-app", name: `Restart ${app.id}` }) +
    button("suspend", "Suspend", d, { testid: "suspend-app", name: `Suspend ${app.id}`, disabled: app.instances === 0 }) +
    button("destroy", "Destroy", d, { testid: "destroy-app", name: `Destroy ${app.id}`, danger: true }) +
    `</div>`;
}
