// The staff console: shell, hash router, live events, and the dashboard view.
import { api, describe, events, itemsOf } from "./api.js";
import { clearToast, errorBox, onAir, paintOnAir, toast } from "./ui.js";
import { h, labelCells, mount, $, $$ } from "./dom.js";
import { applyI18n, fmtTime, lang, regionName, setLang, t } from "./i18n.js";
import { loadGroups, loadRegions, loadSession, state } from "./state.js";
import { renderCompose, renderLive } from "./compose.js";
import {
  renderArchive, renderAudit, renderDevices, renderReport, renderReports, renderResidents, renderSchedule,
} from "./views.js";
import { refreshBadge, renderNotice, renderNoticeCompose, renderNotices, renderReceipts } from "./notices.js";

const main = $("#main");
let current = { name: "", onEvent: null };

// ---- router -----------------------------------------------------------------------------------
const VIEWS = {
  dashboard: renderDashboard,
  compose: renderCompose,
  schedule: renderSchedule,
  reports: renderReports,
  report: renderReport,
  devices: renderDevices,
  residents: renderResidents,
  archive: renderArchive,
  audit: renderAudit,
  live: renderLive,
  notices: renderNotices,
  notice: renderNotice,
  "notice-new": renderNoticeCompose,
  "notice-receipts": renderReceipts,
};

// A village head on a phone starts at the notice inbox (이장넷); everyone else at the dashboard.
const firstPage = () => (state.role === "village" && matchMedia("(max-width: 720px)").matches ? "notices" : "dashboard");

async function route() {
  const [name, ...rest] = (location.hash.slice(1) || firstPage()).split("/");
  const view = VIEWS[name] || renderDashboard;
  const navName = name === "report" ? "reports" : name.startsWith("notice") ? "notices" : name;
  for (const a of $$("nav.tabs a")) {
    if (a.dataset.view === navName) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  clearToast();
  const route_ = { name, onEvent: null };
  current = route_;
  // Each route renders into its own element: a slower earlier view that finishes late mounts into
  // its detached element and never over the view the user went to since.
  const root = h("div", {});
  mount(main, root);
  mount(root, h("p", { class: "muted" }, t("loading")));
  try {
    const handle = await view(root, rest.join("/"));
    if (current !== route_) return;
    if (handle && typeof handle.onEvent === "function") current.onEvent = handle.onEvent;
  } catch (err) {
    if (current !== route_) return;
    if (err?.status === 401) return (location.href = "/login");
    mount(root, errorBox(err));
  }
  applyI18n(root);
}

// ---- dashboard --------------------------------------------------------------------------------
function villagesOf(item) {
  const targets = item.targets || {};
  const codes = new Set([...(item.villages || []), ...(targets.villages || [])]);
  for (const d of targets.districts || []) for (const v of state.districts.get(d)?.villages || []) codes.add(v.code);
  if (targets.county) for (const v of state.villages.keys()) codes.add(v);
  return codes;
}

async function optional(path) {
  try {
    return itemsOf(await api("GET", path), "broadcasts");
  } catch {
    return [];
  }
}

const openDistricts = new Set();

async function renderDashboard(root) {
  const [dash, scheduled, playing] = await Promise.all([
    api("GET", "/api/v1/dashboard"),
    optional("/api/v1/broadcasts?status=scheduled"),
    optional("/api/v1/broadcasts?status=playing"),
  ]);
  const next = new Map();
  for (const b of scheduled) {
    for (const code of villagesOf(b)) {
      const known = next.get(code);
      const due = (x) => new Date(x.next_due_at || x.start_at);
      if (!known || due(b) < due(known)) next.set(code, b);
    }
  }
  const nowPlaying = new Map();
  onAir.playing = new Set(playing.map((b) => b.id));
  paintOnAir();
  for (const b of playing) for (const code of villagesOf(b)) nowPlaying.set(code, b);
  const titleOf = (b) => b?.title || b?.announcement?.title || (b ? `#${b.id}` : "");

  const totals = dash.totals || {};
  const card = (label, value, id) => h("div", { class: "stat", id }, h("div", { class: "num" }, value), h("div", {}, label));
  const single = dash.districts.length === 1;
  const body = h(
    "div",
    { class: "view" },
    h("h1", {}, t("dash.title")),
    h(
      "div",
      { class: "stats" },
      card(t("dash.speakers"), `${totals.speakers_online ?? 0} / ${totals.speakers_total ?? 0}`, "stat-speakers"),
      card(t("dash.live"), dash.streaming ? String(totals.live_listeners ?? 0) : "—", "stat-live"),
      card(t("dash.residents"), String(totals.residents ?? 0), "stat-residents"),
      card(t("dash.scheduled"), String(scheduled.length), "stat-scheduled"),
    ),
    dash.districts.map((d) => {
      const anyPlaying = d.villages.some((v) => v.now_playing || nowPlaying.has(v.code));
      return h(
        "details",
        {
          class: "district card",
          open: single || anyPlaying || openDistricts.has(d.code),
          dataset: { code: d.code },
          ontoggle: (ev) => (ev.target.open ? openDistricts.add(d.code) : openDistricts.delete(d.code)),
        },
        h(
          "summary",
          {},
          h("strong", {}, regionName(d)),
          h("span", { class: d.speakers_online < d.speakers_total ? "badge warn" : "badge ok" },
            t("dash.speakers.short", { on: d.speakers_online, total: d.speakers_total })),
          dash.streaming ? h("span", { class: "badge" }, t("dash.live.short", { n: d.live_listeners })) : null,
          anyPlaying ? h("span", { class: "badge onair" }, t("dash.playing")) : null,
        ),
        h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            {},
            h("thead", {}, h("tr", {},
              h("th", { scope: "col" }, t("col.village")),
              h("th", { scope: "col" }, t("col.speakers")),
              h("th", { scope: "col" }, t("col.nowplaying")),
              h("th", { scope: "col" }, t("col.listeners")),
              h("th", { scope: "col" }, t("col.next")))),
            h(
              "tbody",
              {},
              d.villages.map((v) => {
                const playingNow = v.now_playing || titleOf(nowPlaying.get(v.code));
                const nextB = next.get(v.code);
                return h(
                  "tr",
                  { dataset: { village: v.code } },
                  h("th", { scope: "row" }, regionName(v)),
                  h("td", { class: v.speakers_total && v.speakers_online < v.speakers_total ? "warn-text" : "" },
                    `${v.speakers_online} / ${v.speakers_total}`),
                  h("td", {}, playingNow ? h("span", { class: "badge onair" }, `▶ ${playingNow}`) : "—"),
                  h("td", {}, v.live_listeners ?? "—", " ", h("span", { class: "muted" }, t("dash.residents.n", { n: v.residents }))),
                  h("td", {}, nextB ? `${fmtTime(nextB.next_due_at || nextB.start_at)} · ${titleOf(nextB)}` : "—"),
                );
              }),
            ),
          ),
        ),
      );
    }),
  );
  for (const table of body.querySelectorAll("table")) labelCells(table);
  mount(root, body);
  let timer;
  return {
    onEvent(ev) {
      if (!/^(device|broadcast|listener|live)\./.test(ev.type || "")) return;
      clearTimeout(timer);
      timer = setTimeout(() => current.name === "dashboard" && route(), 500);
    },
  };
}

// ---- start ------------------------------------------------------------------------------------
function paintChrome() {
  applyI18n();
  $("#lang-switch").textContent = lang() === "ko" ? "English" : "한국어";
  const roleText = t(`role.${state.role}`);
  const region = state.villages.get(state.region) || state.districts.get(state.region) || state.tree.county;
  $("#who").textContent = `${state.username} · ${roleText}${region ? ` · ${regionName(region)}` : ""}`;
  for (const el of $$("[data-admin]")) el.hidden = state.role !== "admin";
  paintOnAir();
}

async function start() {
  try {
    await loadSession();
  } catch (err) {
    if (err.status === 401) return (location.href = "/login");
    mount(main, errorBox(err));
    return;
  }
  try {
    await Promise.all([loadRegions(), loadGroups()]);
  } catch (err) {
    toast(describe(err), "error");
  }
  paintChrome();
  $("#lang-switch").addEventListener("click", () => {
    setLang(lang() === "ko" ? "en" : "ko");
    paintChrome();
    route();
  });
  $("#logout").addEventListener("click", async () => {
    try {
      await api("DELETE", "/api/v1/session");
    } catch {
      /* logged out anyway */
    }
    location.href = "/login";
  });
  window.addEventListener("hashchange", route);
  events(
    (ev) => {
      if (ev.type === "broadcast.started") onAir.playing.add(ev.id ?? ev.broadcast_id);
      if (ev.type === "broadcast.ended") onAir.playing.delete(ev.id ?? ev.broadcast_id);
      paintOnAir();
      if (/^notice\.(created|reminder)$/.test(ev.type || "")) {
        refreshBadge();
        toast(t(ev.type === "notice.created" ? "notices.created.toast" : "notices.reminder.toast", { title: ev.title || "" }), "info");
      }
      current.onEvent?.(ev);
    },
    (up) => {
      $("#conn").hidden = up;
      // Events sent while the socket was down are lost: refresh what the view shows.
      if (up) current.onEvent?.({ type: "device.resync" });
    },
  );
  refreshBadge();
  await route();
}

start();
