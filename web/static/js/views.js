// Schedule (list + week), reports, devices, residents, archive and audit views.
import { api, itemsOf } from "./api.js";
import { h, labelCells, mount } from "./dom.js";
import { fmtDuration, fmtTime, lang, regionName, t } from "./i18n.js";
import { allowedVillages, state } from "./state.js";
import { errorBox, toast } from "./ui.js";
import { mediaUrl } from "./compose.js";

const vname = (code) => regionName(state.villages.get(code)) || code || "";
const titleOf = (b) => b.title || b.announcement?.title || t("broadcast.n", { id: b.id });
function targetsText(b) {
  const tg = b.targets || {};
  const parts = [];
  if (tg.county) parts.push(regionName(state.tree.county) || t("picker.county", { name: "" }));
  for (const d of tg.districts || []) parts.push(regionName(state.districts.get(d)) || d);
  for (const v of tg.villages || b.villages || []) parts.push(vname(v));
  return parts.join(", ") || "—";
}
// When a broadcast plays next (after a quiet-hours deferral, or its next recurrence).
const dueOf = (b) => b.next_due_at || b.start_at;
const statusBadge = (s) => h("span", { class: `badge st-${s}` }, t(`status.${s}`));
export function table(headers, rows, attrs = {}) {
  const el = h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, t("empty")))));
  if (rows.length) labelCells(el);
  return h("div", { class: "table-wrap" }, el);
}

// ---- schedule: list + week ---------------------------------------------------------------------
export async function renderSchedule(root) {
  const items = itemsOf(await api("GET", "/api/v1/broadcasts?status=scheduled"), "broadcasts");
  items.sort((a, b) => new Date(dueOf(a)) - new Date(dueOf(b)));
  const cancel = async (b, button) => {
    if (!confirm(t("schedule.cancel.confirm", { title: titleOf(b) }))) return;
    button.disabled = true;
    try {
      await api("POST", `/api/v1/broadcasts/${b.id}/cancel`);
      toast(t("schedule.cancelled"), "ok");
      renderSchedule(root);
    } catch (err) {
      toast(errorBox(err).textContent, "error");
      button.disabled = false;
    }
  };
  const rows = items.map((b) => {
    const btn = h("button", { type: "button", class: "small danger-outline", "aria-label": `${t("schedule.cancel")}: ${titleOf(b)}` }, t("schedule.cancel"));
    btn.addEventListener("click", () => cancel(b, btn));
    return h("tr", { dataset: { id: b.id } },
      h("td", {}, fmtTime(dueOf(b))), h("th", { scope: "row" }, titleOf(b)), h("td", {}, targetsText(b)),
      h("td", {}, t(`priority.${b.priority || "normal"}`)), h("td", {}, b.recurrence ? t("schedule.recurring") : ""), h("td", {}, btn));
  });
  mount(root, h("div", { class: "view" },
    h("h1", {}, t("nav.schedule")),
    h("p", {}, h("a", { href: "#compose", class: "button primary" }, t("schedule.new"))),
    h("h2", {}, t("schedule.week")), week(items),
    h("h2", {}, t("schedule.list")),
    table([t("col.when"), t("col.title"), t("col.targets"), t("send.priority"), "", ""], rows, { id: "schedule-table" })));
  return { onEvent: (ev) => /^broadcast\./.test(ev.type) && renderSchedule(root) };
}

function seoulDay(date) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Seoul", year: "numeric", month: "2-digit", day: "2-digit" }).format(date);
}

function week(items) {
  const days = [...Array(7)].map((_, i) => new Date(Date.now() + i * 86400000));
  const fmt = new Intl.DateTimeFormat(lang() === "en" ? "en-GB" : "ko-KR", { timeZone: "Asia/Seoul", weekday: "short", month: "numeric", day: "numeric" });
  return h("div", { class: "week", role: "list" }, days.map((d) => {
    const key = seoulDay(d);
    const today = items.filter((b) => seoulDay(new Date(dueOf(b))) === key);
    return h("div", { class: "day", role: "listitem" },
      h("div", { class: "day-head" }, fmt.format(d)),
      today.map((b) => h("a", { class: `slot p-${b.priority || "normal"}`, href: `#report/${b.id}` },
        h("strong", {}, fmtTime(dueOf(b), { date: false })), " ", titleOf(b))));
  }));
}

// ---- reports -------------------------------------------------------------------------------------
export async function renderReports(root) {
  const body = await api("GET", "/api/v1/broadcasts");
  const items = itemsOf(body, "broadcasts").filter((b) => b.status !== "scheduled");
  mount(root, h("div", { class: "view" }, h("h1", {}, t("nav.reports")),
    table([t("col.when"), t("col.title"), t("col.targets"), t("col.status"), ""],
      items.map((b) => h("tr", {},
        h("td", {}, fmtTime(b.start_at || b.created_at)), h("th", { scope: "row" }, titleOf(b)),
        h("td", {}, targetsText(b)), h("td", {}, statusBadge(b.status)),
        h("td", {}, h("a", { href: `#report/${b.id}` }, t("reports.open"))))), { id: "reports-table" })));
  return { onEvent: (ev) => /^broadcast\./.test(ev.type) && renderReports(root) };
}

export async function renderReport(root, id) {
  const b = await api("GET", `/api/v1/broadcasts/${id}`);
  const report = b.report || {};
  const totals = report.totals || {};
  const villages = report.villages || [];
  const cancelBtn = ["scheduled", "playing"].includes(b.status)
    ? h("button", { type: "button", class: "danger-outline", id: "report-cancel", onclick: async (ev) => {
        if (!confirm(t("schedule.cancel.confirm", { title: titleOf(b) }))) return;
        ev.target.disabled = true;
        try {
          await api("POST", `/api/v1/broadcasts/${b.id}/cancel`);
          renderReport(root, id);
        } catch (err) {
          toast(errorBox(err).textContent, "error");
          ev.target.disabled = false;
        }
      } }, t("schedule.cancel"))
    : null;
  const cards = [
    [t("report.targeted"), totals.targeted, "rep-targeted"],
    [t("report.reached"), totals.reached, "rep-reached"],
    [t("report.missed"), totals.missed, "rep-missed"],
    [t("report.live"), totals.live, "rep-live"],
    [t("report.replays"), totals.replayed, "rep-replays"],
    [t("report.notheard"), totals.not_heard, "rep-notheard"],
  ];
  const speakerRows = villages.flatMap((v) => [
    ...(v.speakers?.reached_devices || []).map((d) => ({ ...d, village: v.village, reached: true })),
    ...(v.speakers?.missed_devices || []).map((d) => ({ ...d, village: v.village, reached: false })),
  ]);
  const residentRows = villages.flatMap((v) => [
    ...(v.listeners?.live || []).map((x) => ({ ...x, village: v.village, how: "live" })),
    ...(v.listeners?.replayed || []).map((x) => ({ ...x, village: v.village, how: "replay" })),
    ...(v.listeners?.not_heard || []).map((x) => ({ ...x, village: v.village, how: "none" })),
  ]);
  mount(root, h("div", { class: "view" },
    h("h1", {}, titleOf(b), " ", h("span", { id: "report-status" }, statusBadge(b.status))),
    h("p", {}, fmtTime(b.start_at), " · ", targetsText(b), " · ", t(`priority.${b.priority || "normal"}`),
      b.repeat > 1 ? ` · ×${b.repeat}` : "", " · ",
      h("a", { href: b.report_csv || `/api/v1/broadcasts/${b.id}/report.csv`, download: `broadcast-${b.id}.csv`, id: "report-csv" }, t("report.csv")), " ", cancelBtn),
    h("div", { class: "stats" }, cards.map(([label, value, cid]) => h("div", { class: "stat", id: cid }, h("div", { class: "num" }, String(value ?? 0)), h("div", {}, label)))),
    h("h2", {}, t("report.villages")),
    table([t("col.village"), t("col.status"), t("col.when"), t("report.reached"), t("report.missed"), t("report.live"), t("report.replays"), t("report.notheard")],
      villages.map((v) => h("tr", { dataset: { village: v.village } }, h("th", { scope: "row" }, vname(v.village) || v.name_ko),
        h("td", {}, statusBadge(v.status), v.quiet_hours === "deferred" ? h("span", { class: "badge warn" }, t("plan.deferred")) : null),
        h("td", {}, fmtTime(v.started_at || v.due_at)),
        h("td", {}, `${v.speakers?.reached ?? 0} / ${v.speakers?.targeted ?? 0}`), h("td", {}, v.speakers?.missed ?? 0),
        h("td", {}, v.listeners?.live?.length ?? 0), h("td", {}, v.listeners?.replayed?.length ?? 0),
        h("td", {}, v.listeners?.not_heard?.length ?? 0))), { id: "villages-table" }),
    h("h2", {}, t("report.speakers")),
    table([t("col.speaker"), t("col.village"), t("col.result"), t("col.lastseen")],
      speakerRows.map((d) => h("tr", { dataset: { device: d.id } },
        h("th", { scope: "row" }, d.name || `#${d.id}`), h("td", {}, vname(d.village)),
        h("td", {}, d.reached ? h("span", { class: "badge ok" }, t("report.reached1")) : h("span", { class: "badge warn" }, t("report.missed1"))),
        h("td", {}, d.reached ? "" : d.online_at_start === false ? t("report.offline.since", { time: fmtTime(d.last_seen) }) : fmtTime(d.last_seen)))), { id: "speakers-table" }),
    h("h2", {}, t("report.residents")),
    table([t("col.nickname"), t("col.village"), t("col.result")],
      residentRows.map((x) => h("tr", {}, h("th", { scope: "row" }, x.nickname || `#${x.id}`), h("td", {}, vname(x.village)),
        h("td", {}, x.how === "none" ? h("span", { class: "badge warn" }, t("report.notheard"))
          : x.how === "live" ? t("report.how.live") : `${t("report.how.replay")} ${fmtTime(x.at)}`))), { id: "residents-table" }),
    reachChart(villages),
  ));
  return { onEvent: (ev) => /^broadcast\./.test(ev.type) && String(ev.id ?? ev.broadcast_id) === String(id) && renderReport(root, id) };
}

/** Residents reached over time: live listeners at the start, then each replay when it happened. */
function reachChart(villages) {
  const events = [];
  for (const v of villages) {
    if (!v.started_at) continue;
    const start = new Date(v.started_at).getTime();
    for (let i = 0; i < (v.listeners?.live || []).length; i++) events.push(start);
    for (const x of v.listeners?.replayed || []) if (x.at) events.push(new Date(x.at).getTime());
  }
  if (!events.length) return null;
  events.sort((a, b) => a - b);
  const t0 = events[0];
  const t1 = Math.max(Date.now(), events[events.length - 1] + 60000);
  const registered = villages.reduce((n, v) => n + (v.listeners?.registered || 0), 0) || events.length;
  const w = 600, hgt = 140, pad = 24;
  const x = (ts) => pad + ((ts - t0) / (t1 - t0)) * (w - 2 * pad);
  const y = (n) => hgt - pad - (n / registered) * (hgt - 2 * pad);
  let d = `M ${x(t0)} ${y(0)}`;
  events.forEach((ts, i) => (d += ` L ${x(ts)} ${y(i)} L ${x(ts)} ${y(i + 1)}`));
  d += ` L ${x(t1)} ${y(events.length)}`;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", t("report.chart.alt", { n: events.length, total: registered }));
  svg.classList.add("chart");
  const path = document.createElementNS(ns, "path");
  Object.entries({ d, fill: "none", stroke: "#0b4f9c", "stroke-width": 3 }).forEach(([k, v]) => path.setAttribute(k, v));
  const label = (text, lx, ly, anchor = "start") => {
    const el = document.createElementNS(ns, "text");
    Object.entries({ x: lx, y: ly, "font-size": 13, fill: "#111", "text-anchor": anchor }).forEach(([k, v]) => el.setAttribute(k, v));
    el.textContent = text;
    return el;
  };
  svg.append(path, label(fmtTime(new Date(t0).toISOString()), pad, hgt - 6),
    label(fmtTime(new Date(t1).toISOString()), w - pad, hgt - 6, "end"),
    label(`${events.length} / ${registered}`, w - pad, y(events.length) - 6, "end"));
  return [h("h2", {}, t("report.chart")), svg];
}

// ---- devices -------------------------------------------------------------------------------------
export async function renderDevices(root) {
  const devices = itemsOf(await api("GET", "/api/v1/devices"), "devices");
  const villages = allowedVillages();
  const village = h("select", { id: "dev-village", required: true },
    villages.map((v) => h("option", { value: v.code }, `${regionName(v.district)} ${regionName(v)}`)));
  const name = h("input", { id: "dev-name", required: true, maxlength: 100, placeholder: t("devices.name.ph") });
  const issued = h("div", { id: "dev-issued", "aria-live": "polite" });
  const add = h("button", { type: "submit", class: "primary" }, t("devices.add"));
  const form = h("form", { class: "card", id: "dev-form" }, h("h2", {}, t("devices.add.h")),
    h("label", { for: "dev-village" }, t("col.village")), village,
    h("label", { for: "dev-name" }, t("devices.name")), name, add, issued);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!name.value.trim()) return mount(issued, errorBox({ message: t("devices.name.missing") }));
    add.disabled = true;
    try {
      const d = await api("POST", "/api/v1/devices", { kind: "speaker", village: village.value, name: name.value.trim() });
      const url = `${location.origin}/live/${d.village || village.value}.mp3?token=${encodeURIComponent(d.token)}`;
      const qr = h("div", { class: "qr", id: "dev-qr" });
      mount(issued, h("div", { class: "alert ok" },
        h("strong", {}, t("devices.token.once")),
        h("p", {}, t("devices.token"), " ", h("code", { id: "dev-token" }, d.token)),
        h("p", {}, t("devices.url"), " ", h("code", { id: "dev-url" }, url)), qr));
      try {
        const svg = await api("POST", "/api/v1/qr", { text: url, scale: 5 });
        const img = h("img", { alt: t("devices.qr.alt"), width: 220, height: 220, src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}` });
        mount(qr, img);
      } catch (err) {
        mount(qr, errorBox(err));
      }
      name.value = "";
      refreshList();
    } catch (err) {
      mount(issued, errorBox(err));
    } finally {
      add.disabled = false;
    }
  });
  const list = h("div", { id: "dev-list" });
  function paintList(rows) {
    mount(list, table([t("col.speaker"), t("col.village"), t("col.state"), t("col.lastseen"), ""],
      rows.filter((d) => !d.revoked_at && !d.revoked).map((d) => {
        const revoke = h("button", { type: "button", class: "small danger-outline", "aria-label": `${t("devices.revoke")}: ${d.name}` }, t("devices.revoke"));
        revoke.addEventListener("click", async () => {
          if (!confirm(t("devices.revoke.confirm", { name: d.name }))) return;
          try {
            await api("DELETE", `/api/v1/devices/${d.id}`);
            refreshList();
          } catch (err) {
            toast(errorBox(err).textContent, "error");
          }
        });
        return h("tr", { dataset: { device: d.id } }, h("th", { scope: "row" }, d.name),
          h("td", {}, vname(d.village || d.village_code)),
          h("td", {}, d.online ? h("span", { class: "badge ok" }, "● ", t("devices.online")) : h("span", { class: "badge off" }, "○ ", t("devices.offline"))),
          h("td", {}, fmtTime(d.last_seen)), h("td", {}, revoke));
      }), { id: "devices-table" }));
  }
  async function refreshList() {
    try {
      paintList(itemsOf(await api("GET", "/api/v1/devices"), "devices"));
    } catch (err) {
      mount(list, errorBox(err));
    }
  }
  paintList(devices);
  mount(root, h("div", { class: "view" }, h("h1", {}, t("nav.devices")), list, form));
  return { onEvent: (ev) => /^device\./.test(ev.type) && refreshList() };
}

// ---- residents pending approval ------------------------------------------------------------------
export async function renderResidents(root) {
  const all = itemsOf(await api("GET", "/api/v1/listeners"), "listeners");
  const pending = all.filter((l) => l.status === "pending");
  const row = (l, withApprove) => {
    const approve = withApprove ? h("button", { type: "button", class: "small primary", "aria-label": `${t("residents.approve")}: ${l.nickname}` }, t("residents.approve")) : null;
    approve?.addEventListener("click", async () => {
      approve.disabled = true;
      try {
        await api("POST", `/api/v1/listeners/${l.id}/approve`);
        renderResidents(root);
      } catch (err) {
        toast(errorBox(err).textContent, "error");
        approve.disabled = false;
      }
    });
    return h("tr", {}, h("th", { scope: "row" }, l.nickname), h("td", {}, vname(l.village || l.village_code)),
      h("td", {}, t(`residents.status.${l.status}`)), h("td", {}, fmtTime(l.created_at)), h("td", {}, approve));
  };
  const heads = [t("col.nickname"), t("col.village"), t("col.state"), t("residents.since"), ""];
  mount(root, h("div", { class: "view" }, h("h1", {}, t("nav.residents")),
    h("h2", {}, t("residents.pending"), ` (${pending.length})`), table(heads, pending.map((l) => row(l, true)), { id: "pending-table" }),
    h("h2", {}, t("residents.all"), ` (${all.length})`), table(heads, all.filter((l) => l.status !== "pending").map((l) => row(l, false)))));
  return { onEvent: (ev) => /^listener\./.test(ev.type) && renderResidents(root) };
}

// ---- archive -------------------------------------------------------------------------------------
export async function renderArchive(root, query = "") {
  const q = h("input", { type: "search", id: "archive-q", value: decodeURIComponent(query || ""), placeholder: t("archive.ph"), "aria-label": t("archive.search") });
  const results = h("div", { id: "archive-results" });
  async function search() {
    try {
      const body = await api("GET", `/api/v1/announcements?q=${encodeURIComponent(q.value.trim())}`);
      const items = itemsOf(body, "announcements");
      mount(results, items.length ? h("ul", { class: "archive" }, items.map((a) => h("li", { class: "card" },
        h("div", { class: "row spread" }, h("strong", {}, a.title || `#${a.id}`), h("span", { class: "muted" }, fmtTime(a.created_at), " · ", fmtDuration(a.duration_s))),
        a.text ? h("p", { class: "muted clamp" }, a.text) : null,
        a.status === "ready" ? h("audio", { controls: true, preload: "none", src: mediaUrl(a), "aria-label": `${t("archive.play")}: ${a.title}` }) : statusBadge(a.status),
        a.status === "ready" ? h("a", { href: `#compose/${a.id}`, class: "button small" }, t("archive.send")) : null))) : h("p", { class: "muted" }, t("empty")));
    } catch (err) {
      mount(results, errorBox(err));
    }
  }
  const form = h("form", { role: "search", class: "row" }, q, h("button", { type: "submit", class: "primary" }, t("archive.search")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    search();
  });
  mount(root, h("div", { class: "view" }, h("h1", {}, t("nav.archive")), form, results));
  await search();
}

function regionCell(region) {
  if (region && typeof region === "object") return regionName(region);
  return regionName(state.villages.get(region) || state.districts.get(region)) || region || "";
}

// ---- audit log and accounts (admins) -----------------------------------------------------------
export async function renderAudit(root) {
  const [audit, users] = await Promise.all([
    api("GET", "/api/v1/audit"),
    api("GET", "/api/v1/users").catch(() => []),
  ]);
  const entries = itemsOf(audit, "entries", "audit");
  const accounts = itemsOf(users, "users", "accounts");
  mount(root, h("div", { class: "view" }, h("h1", {}, t("nav.audit")),
    h("h2", {}, t("audit.accounts")),
    table([t("audit.username"), t("audit.role"), t("audit.region")], accounts.map((u) => h("tr", {},
      h("th", { scope: "row" }, u.username), h("td", {}, t(`role.${u.role}`)),
      h("td", {}, regionCell(u.region_code || u.region))))),
    h("h2", {}, t("audit.log")),
    table([t("col.when"), t("audit.actor"), t("audit.action"), t("audit.target"), t("audit.note")], entries.map((e) => h("tr", {},
      h("td", {}, fmtTime(e.at)), h("td", {}, e.actor), h("th", { scope: "row" }, e.action), h("td", {}, e.target, e.region_code ? ` · ${e.region_code}` : ""),
      h("td", {}, e.note || (e.detail && Object.keys(e.detail).length ? JSON.stringify(e.detail) : "")))), { id: "audit-table" })));
}
