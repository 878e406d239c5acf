// 스마트 이장넷: the village head's inbox and notice (confirm, reply with a photo, air it), the
// sender's compose form and receipts page (rates per district, chart, CSV, remind).
import { api, describe, itemsOf, upload } from "./api.js";
import { h, mount } from "./dom.js";
import { fmtTime, lang, regionName, t } from "./i18n.js";
import { targetPicker } from "./picker.js";
import { state } from "./state.js";
import { errorBox, toast } from "./ui.js";
import { table } from "./views.js";

const vname = (code) => regionName(state.villages.get(code)) || code || "";
const dname = (code) => regionName(state.districts.get(code)) || code || "";
const pct = (x) => `${Math.round((x || 0) * 100)}%`;
const isHead = () => state.role === "village";

// ---- the unread badge ----------------------------------------------------------------------------
/** Refresh the unread count on the 이장넷 tab (village heads). */
export async function refreshBadge() {
  const badge = document.querySelector("#notice-badge");
  if (!badge) return;
  if (!isHead()) return (badge.hidden = true);
  try {
    const body = await api("GET", "/api/v1/notices?limit=1");
    const n = body.unread || 0;
    badge.textContent = String(n);
    badge.hidden = n === 0;
    badge.setAttribute("aria-label", t("notices.unread.n", { n }));
  } catch {
    badge.hidden = true;
  }
}

function statusBadges(n) {
  const mine = n.mine || {};
  const out = [];
  if (!mine.read_at) out.push(h("span", { class: "badge unread" }, t("notices.new")));
  if (n.requires_ack && !mine.acknowledged_at) out.push(h("span", { class: "badge warn" }, t("notices.ack.asked")));
  if (mine.acknowledged_at) out.push(h("span", { class: "badge ok" }, t("notices.acked")));
  if (mine.overdue) out.push(h("span", { class: "badge overdue" }, t("notices.overdue")));
  if (mine.aired_at) out.push(h("span", { class: "badge" }, t("notices.aired")));
  return out;
}

// ---- list: inbox (village heads) or followed notices (staff) ------------------------------------
export async function renderNotices(root) {
  const body = await api("GET", "/api/v1/notices?limit=100");
  const items = itemsOf(body, "notices");
  if (isHead()) {
    mount(root, h("div", { class: "view" },
      h("h1", {}, t("notices.inbox"), " ", body.unread ? h("span", { class: "badge unread", id: "inbox-unread" }, t("notices.unread.n", { n: body.unread })) : null),
      items.length
        ? h("ul", { class: "inbox", id: "inbox" }, items.map((n) => h("li", { class: `card notice-item${n.mine?.read_at ? "" : " unread"}`, dataset: { id: n.id } },
            h("a", { href: `#notice/${n.id}`, class: "notice-link" }, h("strong", {}, n.title)),
            h("div", { class: "muted" }, n.sender?.name || "", " · ", fmtTime(n.created_at),
              n.due_at ? ` · ${t("notices.due", { time: fmtTime(n.due_at) })}` : ""),
            h("div", {}, statusBadges(n)))))
        : h("p", { class: "muted", id: "inbox" }, t("notices.none"))));
    refreshBadge();
    return { onEvent: (ev) => /^notice\./.test(ev.type) && renderNotices(root) };
  }
  const rows = items.map((n) => {
    const c = n.counts || {};
    return h("tr", { dataset: { id: n.id } },
      h("td", {}, fmtTime(n.created_at)),
      h("th", { scope: "row" }, h("a", { href: `#notice-receipts/${n.id}` }, n.title)),
      h("td", {}, n.sender?.name || ""),
      h("td", {}, `${c.read ?? 0} / ${c.recipients ?? 0}`),
      h("td", {}, n.requires_ack ? `${c.acknowledged ?? 0} / ${c.recipients ?? 0}` : "—"),
      h("td", {}, c.overdue ? h("span", { class: "badge overdue" }, t("notices.overdue.n", { n: c.overdue })) : ""));
  });
  mount(root, h("div", { class: "view" },
    h("h1", {}, t("notices.sent")),
    h("p", {}, h("a", { href: "#notice-new", class: "button primary", id: "notice-new-btn" }, t("notices.compose"))),
    table([t("col.when"), t("col.title"), t("notices.sender"), t("notices.read"), t("notices.acked.col"), ""], rows, { id: "notices-table" })));
  return { onEvent: (ev) => /^notice\./.test(ev.type) && renderNotices(root) };
}

// ---- one notice --------------------------------------------------------------------------------
function attachmentsBlock(list) {
  if (!list?.length) return null;
  return h("ul", { class: "attachments", id: "notice-files" }, list.map((a) => h("li", {},
    a.kind === "image"
      ? h("a", { href: a.url }, h("img", { src: a.url, alt: a.name || t("notices.photo"), class: "thumb" }))
      : a.kind === "audio"
        ? h("audio", { controls: true, preload: "none", src: a.url, "aria-label": a.name || t("notices.audio") })
        : h("a", { href: a.url, class: "button small", download: a.name || "notice.pdf" }, `PDF · ${a.name || "notice.pdf"}`))));
}

function repliesBlock(replies, id = "my-replies") {
  if (!replies?.length) return null;
  return h("ul", { class: "replies", id }, replies.map((r) => h("li", { class: "card" },
    h("div", { class: "muted" }, r.village ? `${vname(r.village)} · ` : "", fmtTime(r.created_at)),
    r.body ? h("p", { class: "pre" }, r.body) : null,
    (r.photos || []).map((p) => h("a", { href: p.url }, h("img", { src: p.url, alt: t("notices.photo.of", { name: vname(r.village) }), class: "thumb" }))))));
}

export async function renderNotice(root, id) {
  const n = await api("GET", `/api/v1/notices/${id}`);
  refreshBadge();
  const mine = n.mine;
  const view = h("div", { class: "view notice" },
    h("p", {}, h("a", { href: "#notices" }, `← ${t("notices.back")}`)),
    h("h1", {}, n.title),
    h("p", { class: "muted" }, n.sender?.name || "", " · ", fmtTime(n.created_at),
      n.due_at ? h("strong", {}, ` · ${t("notices.due", { time: fmtTime(n.due_at) })}`) : ""),
    mine ? h("div", { id: "notice-status" }, statusBadges(n)) : null,
    n.body ? h("div", { class: "card pre", id: "notice-body" }, n.body) : null,
    attachmentsBlock(n.attachments),
    n.broadcast_text ? h("div", { class: "alert info" }, h("strong", {}, t("notices.broadcast_text")), h("p", { class: "pre" }, n.broadcast_text)) : null);
  if (!mine) {
    view.append(h("p", {}, h("a", { href: `#notice-receipts/${n.id}`, class: "button primary" }, t("notices.receipts"))));
    mount(root, view);
    return;
  }
  // Confirm
  const ackBox = h("div", { id: "ack-box" });
  const paintAck = (at) => mount(ackBox, at
    ? h("p", { class: "alert ok", id: "ack-done" }, t("notices.acked.at", { time: fmtTime(at) }))
    : h("button", { type: "button", class: "huge primary", id: "notice-ack", onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          const res = await api("POST", `/api/v1/notices/${n.id}/ack`);
          paintAck(res.acknowledged_at);
        } catch (err) {
          ev.target.disabled = false;
          toast(describe(err), "error");
        }
      } }, `✔ ${t("notices.ack")}`));
  paintAck(mine.acknowledged_at);
  // Reply with text and photos
  const text = h("textarea", { id: "reply-body", maxlength: 2000, rows: 3 });
  const photo = h("input", { type: "file", id: "reply-photo", accept: "image/*", multiple: true });
  const replyStatus = h("div", { "aria-live": "polite" });
  const earlier = h("div", {}, repliesBlock(n.replies));
  const form = h("form", { class: "card", id: "reply-form" },
    h("h2", {}, t("notices.reply")),
    h("label", { for: "reply-body" }, t("notices.reply.text")), text,
    h("label", { for: "reply-photo" }, t("notices.reply.photo")), photo,
    h("button", { type: "submit", class: "primary big", id: "reply-send" }, t("notices.reply.send")), replyStatus, earlier);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const fd = new FormData();
    fd.append("body", text.value.trim());
    for (const f of photo.files) fd.append("photos", f, f.name);
    if (!text.value.trim() && !photo.files.length) return mount(replyStatus, errorBox({ message: t("notices.reply.empty") }));
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await upload(`/api/v1/notices/${n.id}/replies`, fd);
      text.value = "";
      photo.value = "";
      mount(replyStatus, h("p", { class: "alert ok", id: "reply-done" }, t("notices.reply.done")));
      const again = await api("GET", `/api/v1/notices/${n.id}`);
      mount(earlier, repliesBlock(again.replies));
    } catch (err) {
      mount(replyStatus, errorBox(err));
    } finally {
      button.disabled = false;
    }
  });
  view.append(ackBox, form);
  if (n.can_air) view.append(airBlock(n));
  mount(root, view);
  return { onEvent: (ev) => ev.type === "notice.reminder" && refreshBadge() };
}

function airBlock(n) {
  const box = h("div", { id: "air-plan", "aria-live": "polite" });
  const start = h("button", { type: "button", class: "huge", id: "notice-air" }, t("notices.air"));
  const done = (res) => mount(box, h("p", { class: "alert ok", id: "air-done" }, t("notices.air.done"), " ",
    h("a", { href: `#report/${res.id}` }, t("reports.open"))));
  if (n.mine?.aired_at) done({ id: n.mine.broadcast_id });
  // The plan first; during quiet hours, the offer to play when they end (defer_quiet).
  async function plan(deferQuiet = false) {
    start.disabled = true;
    mount(box, h("p", {}, h("span", { class: "spinner", "aria-hidden": "true" }), " ", t("notices.air.preparing")));
    const flags = deferQuiet ? { defer_quiet: true } : {};
    try {
      const res = await api("POST", `/api/v1/notices/${n.id}/air`, { dry_run: true, ...flags });
      const send = h("button", { type: "button", class: "huge primary", id: "air-send" }, t("notices.air.send"));
      send.addEventListener("click", async () => {
        send.disabled = true;
        try {
          done(await api("POST", `/api/v1/notices/${n.id}/air`, flags));
        } catch (err) {
          send.disabled = false;
          mount(box, errorBox(err));
        }
      });
      mount(box, h("div", { class: "alert info" },
        h("strong", {}, t("notices.air.plan")),
        h("ul", {}, (res.plan || []).map((p) => h("li", {}, `${p.name_ko || vname(p.village)} · ${(lang() === "en" ? p.message_en : p.message_ko) || fmtTime(p.at || res.start_at)}`))),
        send));
    } catch (err) {
      const later = err?.problem?.next_allowed;
      mount(box, errorBox(err), later && !deferQuiet
        ? h("button", { type: "button", class: "big", id: "air-defer", onclick: () => plan(true) }, t("notices.air.defer", { time: fmtTime(later) }))
        : null);
    } finally {
      start.disabled = false;
    }
  }
  start.addEventListener("click", () => plan(false));
  return h("section", { class: "card", "aria-labelledby": "air-h" }, h("h2", { id: "air-h" }, t("notices.air.h")), start, box);
}

// ---- compose (county and district staff) --------------------------------------------------------
export async function renderNoticeCompose(root) {
  const picker = targetPicker("notice");
  picker.el.querySelector(".picker-groups")?.remove(); // notices go to village heads, not speakers
  const title = h("input", { id: "notice-title", required: true, maxlength: 200 });
  const body = h("textarea", { id: "notice-text", maxlength: 10000, rows: 6 });
  const files = h("input", { type: "file", id: "notice-files-input", multiple: true, accept: "application/pdf,image/*,audio/*" });
  const ack = h("input", { type: "checkbox", id: "notice-ack-required" });
  const due = h("input", { type: "datetime-local", id: "notice-due" });
  const say = h("textarea", { id: "notice-say", maxlength: 2000, rows: 2 });
  const result = h("div", { id: "notice-result", "aria-live": "polite" });
  const form = h("form", { class: "card", id: "notice-form" },
    h("label", { for: "notice-title" }, t("notices.title")), title,
    h("label", { for: "notice-text" }, t("notices.body")), body,
    h("label", { for: "notice-files-input" }, t("notices.files")), files,
    h("label", { class: "check" }, ack, t("notices.ack.require")),
    h("label", { for: "notice-due" }, t("notices.due.label")), due,
    h("label", { for: "notice-say" }, t("notices.broadcast_text.label")), say,
    h("h2", {}, t("notices.to")), picker.el,
    h("button", { type: "submit", class: "primary big", id: "notice-send" }, t("notices.send")), result);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!title.value.trim()) return mount(result, errorBox({ message: t("notices.title.missing") }));
    if (!picker.count()) return mount(result, errorBox({ message: t("notices.to.missing") }));
    const fd = new FormData();
    fd.append("title", title.value.trim());
    fd.append("body", body.value);
    fd.append("targets", JSON.stringify(picker.targets()));
    fd.append("requires_ack", ack.checked || due.value ? "true" : "false");
    if (due.value) fd.append("due_at", due.value);
    if (say.value.trim()) fd.append("broadcast_text", say.value.trim());
    for (const f of files.files) fd.append("attachments", f, f.name);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const res = await upload("/api/v1/notices", fd);
      mount(result, h("div", { class: "alert ok", id: "notice-sent" },
        h("p", {}, t("notices.sent.n", { n: res.recipients })),
        res.headless_villages?.length
          ? h("div", { id: "notice-headless" }, h("strong", {}, t("notices.headless")),
              h("p", {}, res.headless_villages.map(vname).join(", ")))
          : null,
        h("a", { href: `#notice-receipts/${res.id}`, class: "button", id: "notice-receipts-link" }, t("notices.receipts"))));
    } catch (err) {
      mount(result, errorBox(err));
    } finally {
      button.disabled = false;
    }
  });
  mount(root, h("div", { class: "view" }, h("h1", {}, t("notices.compose")), form));
}

// ---- receipts (the sender's follow-up) ----------------------------------------------------------
export async function renderReceipts(root, id) {
  const r = await api("GET", `/api/v1/notices/${id}/receipts`);
  const n = r.notice;
  const tot = r.totals;
  const card = (label, value, cid) => h("div", { class: "stat", id: cid }, h("div", { class: "num" }, value), h("div", {}, label));
  const remindBox = h("span", { "aria-live": "polite", id: "remind-result" });
  const remind = h("button", { type: "button", id: "rc-remind", disabled: tot.read === tot.recipients, onclick: async (ev) => {
    ev.target.disabled = true;
    try {
      const res = await api("POST", `/api/v1/notices/${id}/remind`);
      mount(remindBox, t("notices.reminded", { n: res.reminded }));
      renderReceipts(root, id);
    } catch (err) {
      ev.target.disabled = false;
      toast(describe(err), "error");
    }
  } }, t("notices.remind"));
  const when = (x) => (x ? fmtTime(x) : "—");
  const rows = r.recipients.map((x) => h("tr", { dataset: { village: x.village } },
    h("th", { scope: "row" }, vname(x.village)),
    h("td", {}, dname(x.district)),
    h("td", {}, x.village_head),
    h("td", {}, when(x.read_at)),
    h("td", {}, x.acknowledged_at ? when(x.acknowledged_at) : x.overdue ? h("span", { class: "badge overdue" }, t("notices.overdue")) : "—"),
    h("td", {}, x.replied_at ? `${when(x.replied_at)} (${x.replies.length})` : "—"),
    h("td", {}, x.aired_at ? h("a", { href: `#report/${x.broadcast_id}` }, when(x.aired_at)) : "—"),
    h("td", {}, x.reminders ? String(x.reminders) : "")));
  const replies = r.recipients.flatMap((x) => x.replies);
  mount(root, h("div", { class: "view" },
    h("p", {}, h("a", { href: "#notices" }, `← ${t("notices.sent")}`)),
    h("h1", {}, n.title),
    h("p", { class: "muted" }, n.sender?.name || "", " · ", fmtTime(n.created_at),
      n.due_at ? ` · ${t("notices.due", { time: fmtTime(n.due_at) })}` : "", " · ",
      h("a", { href: r.csv, download: `notice-${id}.csv`, id: "rc-csv" }, t("report.csv")), " ", remind, " ", remindBox),
    h("div", { class: "stats" },
      card(t("notices.read"), `${tot.read}/${tot.recipients}`, "rc-read"),
      card(t("notices.acked.col"), String(tot.acknowledged), "rc-acked"),
      card(t("notices.replied"), String(tot.replied), "rc-replied"),
      card(t("notices.aired.col"), String(tot.aired), "rc-aired"),
      card(t("notices.overdue"), String(tot.overdue), "rc-overdue")),
    h("h2", {}, t("notices.rates")),
    table([t("notices.district"), t("notices.recipients"), t("notices.read"), t("notices.read_rate"), t("notices.acked.col"), t("notices.ack_rate"), t("notices.overdue")],
      r.districts.map((d) => h("tr", { dataset: { district: d.district } },
        h("th", { scope: "row" }, dname(d.district)), h("td", {}, d.recipients), h("td", {}, d.read),
        h("td", {}, h("meter", { min: 0, max: 1, value: d.read_rate, "aria-label": `${dname(d.district)} ${t("notices.read_rate")}` }), ` ${pct(d.read_rate)}`),
        h("td", {}, d.acknowledged), h("td", {}, pct(d.ack_rate)),
        h("td", {}, d.overdue ? h("span", { class: "badge overdue" }, String(d.overdue)) : "0"))), { id: "rc-districts" }),
    chart(r.timeline, tot.recipients),
    h("h2", {}, t("notices.recipients")),
    table([t("col.village"), t("notices.district"), t("notices.head"), t("notices.read"), t("notices.acked.col"), t("notices.replied"), t("notices.aired.col"), t("notices.reminders")], rows, { id: "rc-table" }),
    r.headless_villages.length ? [h("h2", {}, t("notices.headless")), h("p", { id: "rc-headless" }, r.headless_villages.map(vname).join(", "))] : null,
    h("h2", {}, t("notices.replies")),
    replies.length ? repliesBlock(replies, "rc-replies") : h("p", { class: "muted" }, t("empty"))));
  return { onEvent: (ev) => /^notice\./.test(ev.type) && String(ev.notice_id) === String(id) && renderReceipts(root, id) };
}

/** Reads and confirmations over time: two step lines on one SVG. */
function chart(points, total) {
  if (!points?.length || !total) return null;
  const times = points.map((p) => new Date(p.at).getTime());
  const t0 = times[0];
  const t1 = Math.max(times[times.length - 1], t0 + 60000);
  const w = 600, hgt = 160, pad = 26;
  const x = (ts) => pad + ((ts - t0) / (t1 - t0)) * (w - 2 * pad);
  const y = (n) => hgt - pad - (n / total) * (hgt - 2 * pad);
  const line = (key) => {
    let d = `M ${x(t0)} ${y(0)}`;
    let prev = 0;
    points.forEach((p, i) => {
      d += ` L ${x(times[i])} ${y(prev)} L ${x(times[i])} ${y(p[key])}`;
      prev = p[key];
    });
    return d + ` L ${x(t1)} ${y(prev)}`;
  };
  const ns = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const last = points[points.length - 1];
  const svg = el("svg", { viewBox: `0 0 ${w} ${hgt}`, role: "img", class: "chart", id: "rc-chart",
    "aria-label": t("notices.chart.alt", { read: last.read, acked: last.acknowledged, total }) });
  svg.append(
    el("path", { d: line("read"), fill: "none", stroke: "#0b4f9c", "stroke-width": 3 }),
    el("path", { d: line("acknowledged"), fill: "none", stroke: "#0a6b2d", "stroke-width": 3, "stroke-dasharray": "6 4" }),
    el("text", { x: pad, y: hgt - 6, "font-size": 13, fill: "#111" }, fmtTime(new Date(t0).toISOString())),
    el("text", { x: w - pad, y: hgt - 6, "font-size": 13, fill: "#111", "text-anchor": "end" }, fmtTime(new Date(t1).toISOString())),
    el("text", { x: w - pad, y: 16, "font-size": 13, fill: "#111", "text-anchor": "end" },
      `${t("notices.read")} ${last.read}/${total} · ${t("notices.acked.col")} ${last.acknowledged}/${total}`),
  );
  return [h("h2", {}, t("notices.chart")), svg];
}
