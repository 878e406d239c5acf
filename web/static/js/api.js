// The HTTP API client: JSON in/out, CSRF header on unsafe requests, RFC 9457 problems as ApiError.
import { lang, t } from "./i18n.js";

let csrfToken = "";
let bearer = "";

export function setCsrf(token) {
  csrfToken = token || "";
}

/** Use a bearer token (a resident's listener token) instead of the session cookie. */
export function setBearer(token) {
  bearer = token || "";
}

export class ApiError extends Error {
  constructor(status, problem = {}) {
    const title =
      (lang() === "en" ? problem.title_en : problem.title_ko) || problem.title || t("error.generic");
    super(title);
    this.status = status;
    this.problem = problem;
    this.title = title;
    this.detail = problem.detail && problem.detail !== title ? problem.detail : "";
  }
}

function offline() {
  return new ApiError(0, {
    title_ko: "서버에 연결할 수 없습니다",
    title_en: "Cannot reach the server",
    detail: t("error.offline.detail"),
  });
}

function headers(method, extra = {}) {
  const out = { Accept: "application/json, application/problem+json", "Accept-Language": lang(), ...extra };
  if (bearer) out.Authorization = `Bearer ${bearer}`;
  if (csrfToken && !["GET", "HEAD"].includes(method)) out["X-CSRF-Token"] = csrfToken;
  return out;
}

async function problemOf(response) {
  let body = {};
  try {
    const text = await response.text();
    body = text ? JSON.parse(text) : {};
  } catch {
    body = {};
  }
  if (!body || typeof body !== "object") body = {};
  return new ApiError(response.status, body);
}

/** Call the API; resolves to the parsed JSON (or text), rejects with ApiError. */
export async function api(method, path, body, { raw = false } = {}) {
  const init = { method, headers: headers(method), credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw offline();
  }
  if (!response.ok) throw await problemOf(response);
  if (raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

/** POST a FormData with upload progress (XMLHttpRequest: fetch cannot report upload progress). */
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [name, value] of Object.entries(headers("POST"))) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress?.(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText || "{}");
      } catch {
        body = {};
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body));
    });
    xhr.addEventListener("error", () => reject(offline()));
    xhr.addEventListener("abort", () => reject(offline()));
    xhr.send(form);
  });
}

/** "title — detail" for a user, from any error. */
export function describe(err) {
  if (err instanceof ApiError) return err.detail ? `${err.title} — ${err.detail}` : err.title;
  return `${t("error.generic")} — ${err?.message || err}`;
}

/** Items of a list response, whatever its envelope ({items}, {results}, {<name>}, or a plain list). */
export function itemsOf(body, ...names) {
  if (Array.isArray(body)) return body;
  if (!body || typeof body !== "object") return [];
  for (const name of ["items", "results", "data", ...names]) {
    if (Array.isArray(body[name])) return body[name];
  }
  return [];
}

/** A WebSocket to the events stream that reconnects with backoff; onState(true|false). */
export function events(onEvent, onState, token = "") {
  let socket;
  let delay = 1000;
  let closed = false;
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = token ? `?token=${encodeURIComponent(token)}` : "";
    socket = new WebSocket(`${scheme}://${location.host}/api/v1/events${query}`);
    socket.addEventListener("open", () => {
      delay = 1000;
      onState?.(true);
    });
    socket.addEventListener("message", (message) => {
      try {
        onEvent(JSON.parse(message.data));
      } catch {
        /* not an event */
      }
    });
    socket.addEventListener("close", () => {
      onState?.(false);
      if (!closed) setTimeout(open, delay + Math.random() * 500);
      delay = Math.min(delay * 2, 30000);
    });
  };
  open();
  return { close: () => { closed = true; socket?.close(); } };
}
