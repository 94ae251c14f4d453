// marathon_py web UI: one page over Marathon's REST API v2 on the same origin (reference §2, §3, §9.3).
// No build step and no dependency. Views are HTML strings (every value escaped) rendered from fresh API
// data; a region is rewritten only when its HTML changed, so focus and selection survive idle refreshes.
// Buttons carry data-action attributes served by one delegated click listener. The event stream
// (/v2/events) is used as Marathon recommends, only to invalidate: any relevant event schedules a
// coalesced refresh of the current view; a slow timer refreshes anyway (faster while the stream is down).
// This module holds the actions, the routing and the refreshing; api.js the REST calls, render.js the
// shared HTML, notices.js the dialog and banners, views.js the pages, form.js create/edit.

import { API, api, appPath, forceQuery, outcome } from "./api.js";
import { FormView } from "./form.js";
import { ask, hideError, notify, showError, showLoadError } from "./notices.js";
import { $, setHTML } from "./render.js";
import { AppView, AppsView, DeploymentsView } from "./views.js";

const LIVE_REFRESH_MS = 30000;
const POLL_REFRESH_MS = 5000;
const COALESCE_MS = 300;
const RECONNECT_MS = 5000;
const EVENT_TYPES = [
  "api_post_event", "status_update_event", "instance_changed_event", "instance_health_changed_event",
  "health_status_changed_event", "unknown_instance_terminated_event", "unhealthy_instance_kill_event",
  "failed_health_check_event", "deployment_info", "deployment_step_success", "deployment_step_failure",
  "deployment_success", "deployment_failed", "group_change_success", "group_change_failed",
  "app_terminated_event",
];

// ---------------------------------------------------------------- actions

// run `call(force)`; a 409 "locked" offers the same call with force=true
async function perform(label, call, force = false) {
  try {
    const r = await call(force);
    notify(`${label}${force ? " (forced)" : ""}: ${outcome(r)}`);
    refreshSoon();
    return true;
  } catch (err) {
    showError(`${label} failed: ${err.message}`, err.locked && !force ? () => perform(label, call, true) : null);
    return false;
  }
}

const ACTIONS = {
  async scale({ id, instances }) {
    const value = await ask({
      title: `Scale ${id}`, text: "How many instances should run?", confirm: "Scale",
      input: { label: "Instances", type: "number", min: "0", step: "1", value: instances },
    });
    if (value === null) return;
    const n = Number(value);
    await perform(`Scaling ${id} to ${n}`, (force) =>
      api("PUT", appPath(id), { body: { instances: n }, query: forceQuery(force) }));
  },
  async restart({ id }) {
    if (!(await ask({ title: `Restart ${id}?`, text: "Its tasks are replaced as its upgrade strategy says.", confirm: "Restart" }))) return;
    await perform(`Restarting ${id}`, (force) => api("POST", `${appPath(id)}/restart`, { query: forceQuery(force) }));
  },
  async suspend({ id }) {
    if (!(await ask({ title: `Suspend ${id}?`, text: "It is scaled to 0 instances; its definition stays.", confirm: "Suspend" }))) return;
    await perform(`Suspending ${id}`, (force) =>
      api("PUT", appPath(id), { body: { instances: 0 }, query: forceQuery(force) }));
  },
  async destroy({ id }) {
    const sure = await ask({
      title: `Destroy ${id}?`, text: "All its tasks are killed and the app is removed. This cannot be undone.",
      confirm: "Destroy", danger: true,
    });
    if (!sure) return;
    const done = await perform(`Destroying ${id}`, (force) => api("DELETE", appPath(id), { query: forceQuery(force) }));
    if (done && route.view === AppView && route.arg === id) location.hash = "#/apps";
  },
  async kill({ id }) {
    if (!(await ask({ title: "Kill task?", text: `${id} is killed and replaced.`, confirm: "Kill", danger: true }))) return;
    await perform(`Killing ${id}`, (force) => api("POST", "v2/tasks/delete", { body: { ids: [id] }, query: forceQuery(force) }));
  },
  async "kill-scale"({ id }) {
    if (!(await ask({ title: "Kill and scale down?", text: `${id} is killed and its app scaled down by one.`, confirm: "Kill & scale", danger: true }))) return;
    await perform(`Killing ${id} and scaling down`, (force) =>
      api("POST", "v2/tasks/delete", { body: { ids: [id] }, query: { scale: "true", ...forceQuery(force) } }));
  },
  async "show-version"({ id, version }) {
    try {
      const r = await api("GET", `${appPath(id)}/versions/${encodeURIComponent(version)}`);
      AppView.shown = { id, version, config: r.body };
      AppView.renderVersion();
    } catch (err) {
      showError(`Loading version ${version} of ${id} failed: ${err.message}`);
    }
  },
  async "apply-version"({ id, version }) {
    if (!(await ask({ title: `Apply version ${version}?`, text: `${id} is deployed with that configuration.`, confirm: "Apply" }))) return;
    await perform(`Applying version ${version} to ${id}`, (force) =>
      api("PUT", appPath(id), { body: { version }, query: forceQuery(force) }));
  },
  async rollback({ id }) {
    if (!(await ask({ title: "Roll back deployment?", text: `A new deployment reverts ${id}.`, confirm: "Rollback" }))) return;
    await perform(`Rolling back ${id}`, () => api("DELETE", `v2/deployments/${encodeURIComponent(id)}`));
  },
  async "stop-deployment"({ id }) {
    if (!(await ask({ title: "Stop deployment?", text: `${id} stops where it is; nothing is rolled back.`, confirm: "Stop", danger: true }))) return;
    await perform(`Stopping ${id}`, () => api("DELETE", `v2/deployments/${encodeURIComponent(id)}`, { query: { force: "true" } }));
  },
};

document.addEventListener("click", async (event) => {
  const target = event.target.closest("button[data-action]");
  const action = target && ACTIONS[target.dataset.action];
  if (!action) return;
  event.preventDefault();
  target.disabled = true;
  try {
    await action({ ...target.dataset });
  } finally {
    target.disabled = false;
  }
});

// ---------------------------------------------------------------- routing and refreshing

let route = null;

function currentRoute() {
  const [head = "", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : null;
  if (head === "apps" && arg) return { view: AppView, arg, nav: "apps" };
  if (head === "edit" && arg) return { view: FormView, arg, nav: "apps" };
  if (head === "create") return { view: FormView, arg: null, nav: "create" };
  if (head === "deployments") return { view: DeploymentsView, arg: null, nav: "deployments" };
  return { view: AppsView, arg: null, nav: "apps" };
}

function navigate() {
  route = currentRoute();
  hideError();
  showLoadError(null);
  const main = $("#view");
  setHTML(main, route.view.mount(route.arg));
  for (const link of document.querySelectorAll("nav [data-route]")) {
    if (link.dataset.route === route.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  route.view.init?.(route.arg);
  refresh();
}

let inflight = null;
let again = false;
let nextTimer = null;
let soonTimer = null;
let live = false;

// fetch and render the current view (and the deployment count); one at a time, re-run if asked meanwhile
function refresh() {
  if (inflight) {
    again = true;
    return inflight;
  }
  inflight = (async () => {
    do {
      again = false;
      const r = route;
      const counting = api("GET", "v2/deployments").then((d) => {
        $("#deployments-count").textContent = d.body?.length ? `(${d.body.length})` : "";
      }, () => {});
      try {
        if (r.view.fetch) {
          const data = await r.view.fetch(r.arg);
          if (route === r) r.view.render(data);
        }
        showLoadError(null);
      } catch (err) {
        if (route === r) showLoadError(err);
      }
      await counting;
    } while (again);
  })().finally(() => {
    inflight = null;
    clearTimeout(nextTimer);
    nextTimer = setTimeout(refresh, live ? LIVE_REFRESH_MS : POLL_REFRESH_MS);
  });
  return inflight;
}

// coalesce bursts of events into one refresh at most COALESCE_MS later
function refreshSoon() {
  soonTimer ??= setTimeout(() => {
    soonTimer = null;
    refresh();
  }, COALESCE_MS);
}

function setLive(on) {
  if (live && !on) {
    clearTimeout(nextTimer); // the stream dropped: poll at the faster pace from now on
    nextTimer = setTimeout(refresh, POLL_REFRESH_MS);
  }
  live = on;
  const el = $("#live");
  el.textContent = on ? "live" : "polling";
  el.classList.toggle("on", on);
  el.classList.toggle("off", !on);
}

function connectEvents() {
  if (typeof EventSource === "undefined") return setLive(false);
  const url = new URL("v2/events", API);
  url.searchParams.set("plan-format", "light");
  for (const type of EVENT_TYPES) url.searchParams.append("event_type", type);
  const source = new EventSource(url);
  source.addEventListener("open", () => {
    setLive(true);
    refreshSoon(); // whatever happened while we were not listening
    showInfo(); // the leader may have changed meanwhile
  });
  source.addEventListener("error", () => {
    setLive(false);
    if (source.readyState === EventSource.CLOSED) setTimeout(connectEvents, RECONNECT_MS);
  });
  for (const type of EVENT_TYPES) source.addEventListener(type, refreshSoon);
}

async function showInfo() {
  try {
    const { body } = await api("GET", "v2/info");
    $("#info").textContent = `${body.name} ${body.version}${body.leader ? ` · leader ${body.leader}` : ""}`;
  } catch {
    $("#info").textContent = "";
  }
}

window.addEventListener("hashchange", navigate);
setLive(false);
navigate();
connectEvents();
