// The REST API v2 as the UI calls it (reference §1.3-§1.5, §2): JSON in and out, Marathon's error body
// kept on the ApiError.

export const API = new URL("../", document.baseURI); // served at /ui/; the API is at ../ as for Marathon's UI
export const appPath = (id) => "v2/apps/" + id.replace(/^\/+/, "").split("/").map(encodeURIComponent).join("/");
export const forceQuery = (force) => (force ? { force: "true" } : {});

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? (typeof body === "string" && body ? body : `HTTP ${status}`));
    this.status = status;
    this.body = body;
  }

  // [{path, errors}] of a 400/422 (§1.5); a JSON syntax error has a string instead
  get details() {
    const d = this.body?.details;
    return Array.isArray(d) ? d : typeof d === "string" ? [{ path: "", errors: [d] }] : [];
  }

  // 409 AppLockedException lists the deployments; force=true overrides them (§1.3, §7.4)
  get locked() {
    return this.status === 409 && Array.isArray(this.body?.deployments);
  }
}

export async function api(method, path, { body, query } = {}) {
  const url = new URL(path, API);
  for (const [name, value] of Object.entries(query ?? {})) {
    for (const one of [].concat(value)) url.searchParams.append(name, String(one));
  }
  const headers = { Accept: "application/json" };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, { message: `Marathon is unreachable (${err.message})` });
  }
  const text = await resp.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!resp.ok) throw new ApiError(resp.status, parsed);
  return { status: resp.status, body: parsed, deploymentId: resp.headers.get("Marathon-Deployment-Id") };
}

export const loadQueue = () => api("GET", "v2/queue").then((r) => r.body?.queue ?? [], () => []);

// what a deployable call answered: its deployment (header, or DeploymentResult body), if any
export const outcome = (r) => {
  const id = r.deploymentId ?? r.body?.deploymentId;
  return id ? `deployment ${id}` : "done";
};
