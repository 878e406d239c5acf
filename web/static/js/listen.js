// The resident page: register once, one big button to listen live, replay, notifications.
import { ApiError, api, describe, events, itemsOf, setBearer } from "./api.js";
import { h, mount, $ } from "./dom.js";
import { applyI18n, fmtDuration, fmtTime, lang, regionName, setLang, t } from "./i18n.js";
import { normalizeTree } from "./state.js";

const KEY = "vc_listener";
let reg = load();
let tree = { districts: [] };
let hls = null;
let fallbackTimer = null;
let socket = null;

function load() {
  try {
    return JSON.parse(localStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}
function save(value) {
  reg = value;
  if (value) localStorage.setItem(KEY, JSON.stringify(value));
  else localStorage.removeItem(KEY);
}
const withToken = (url) => `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(reg.token)}`;

// ---- registration --------------------------------------------------------------------------------
async function showRegister() {
  $("#register").hidden = false;
  $("#player").hidden = true;
  const district = $("#district");
  const village = $("#village");
  const error = $("#register-error");
  try {
    tree = normalizeTree(await api("GET", "/api/v1/regions"));
  } catch (err) {
    error.textContent = describe(err);
    error.hidden = false;
    return;
  }
  mount(district, h("option", { value: "" }, t("listen.choose")), tree.districts.map((d) => h("option", { value: d.code }, regionName(d))));
  district.onchange = () => {
    const d = tree.districts.find((x) => x.code === district.value);
    mount(village, h("option", { value: "" }, t("listen.choose")), (d?.villages || []).map((v) => h("option", { value: v.code }, regionName(v))));
    village.disabled = !d;
  };
  $("#register-form").onsubmit = async (event) => {
    event.preventDefault();
    error.hidden = true;
    const nickname = $("#nickname").value.trim();
    const consent = $("#consent").checked;
    let problem = "";
    if (!village.value) problem = t("listen.err.village");
    else if (!nickname) problem = t("listen.err.nickname");
    else if (!consent) problem = t("listen.err.consent");
    if (problem) {
      error.textContent = problem;
      error.hidden = false;
      return;
    }
    const button = event.target.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const r = await api("POST", "/api/v1/listeners", { village: village.value, nickname, consent });
      const d = tree.districts.find((x) => x.code === district.value);
      const v = d.villages.find((x) => x.code === village.value);
      save({ id: r.id, token: r.token, status: r.status, village: v.code, nickname,
        names: { ko: `${d.name_ko} ${v.name_ko}`, en: `${v.name_en}, ${d.name_en}` } });
      showPlayer();
    } catch (err) {
      error.textContent = describe(err);
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  };
}

// ---- player --------------------------------------------------------------------------------------
function showPlayer() {
  $("#register").hidden = true;
  $("#player").hidden = false;
  setBearer(reg.token);
  $("#where").textContent = t("listen.where", { village: reg.names?.[lang()] || reg.village, nickname: reg.nickname });
  $("#feed-link").href = `/feeds/${reg.village}.rss`;
  $("#pending").hidden = reg.status !== "pending";
  $("#listen-btn").disabled = reg.status === "pending";
  paintButton(false);
  loadRecent();
  connectEvents();
}

function paintButton(playing) {
  $("#listen-btn").setAttribute("aria-pressed", String(playing));
  $("#listen-btn").classList.toggle("on", playing);
  $("#listen-label").textContent = playing ? t("listen.stop") : t("listen.play");
  $("#listen-btn .icon").textContent = playing ? "■" : "▶";
}

function setState(text, kind = "") {
  const el = $("#listen-state");
  el.textContent = text;
  el.className = `listen-state ${kind}`;
}

function stop() {
  const audio = $("#live-audio");
  clearTimeout(fallbackTimer);
  hls?.destroy();
  hls = null;
  audio.pause();
  audio.removeAttribute("src");
  audio.load();
  paintButton(false);
  setState("");
}

// The plain MP3 stream first: every phone plays it, it starts fast, and the server counts who heard
// each broadcast from it. HLS (hls.js, or native on iPhones) is the fallback; ?via=hls forces it.
let tried = new Set();

function playMp3() {
  const audio = $("#live-audio");
  tried.add("mp3");
  hls?.destroy();
  hls = null;
  audio.src = withToken(`/live/${reg.village}.mp3`);
  audio.dataset.via = "mp3";
  audio.play().catch(() => {});
}

function playHls() {
  const audio = $("#live-audio");
  tried.add("hls");
  const url = `/hls/${reg.village}/live.m3u8`;
  if (window.Hls && window.Hls.isSupported()) {
    hls = new window.Hls({
      xhrSetup: (xhr, u) => xhr.open("GET", withToken(u), true),
      liveSyncDurationCount: 2,
      manifestLoadingMaxRetry: 1,
    });
    hls.on(window.Hls.Events.ERROR, (_e, data) => {
      if (data.fatal) fallback();
    });
    hls.loadSource(url);
    hls.attachMedia(audio);
  } else if (audio.canPlayType("application/vnd.apple.mpegurl")) {
    audio.src = withToken(url);
  } else {
    return fallback();
  }
  audio.dataset.via = "hls";
  audio.play().catch(() => {});
}

/** The current way failed: try the other one, then explain. */
function fallback() {
  clearTimeout(fallbackTimer);
  if (!tried.has("hls")) return playHls();
  if (!tried.has("mp3")) return playMp3();
  playFailed();
}

async function playFailed() {
  // Ask the server why (pending approval, revoked token, offline) and say it in Korean.
  hls?.destroy();
  hls = null;
  try {
    await api("GET", withToken(`/live/${reg.village}.m3u`));
    setState(t("listen.err.play"), "error");
  } catch (apiErr) {
    if (apiErr instanceof ApiError && apiErr.status === 403) {
      save({ ...reg, status: "pending" });
      $("#pending").hidden = false;
    }
    setState(describe(apiErr), "error");
  }
  paintButton(false);
}

function start() {
  const audio = $("#live-audio");
  setState(t("listen.connecting"));
  paintButton(true);
  tried = new Set();
  if (new URLSearchParams(location.search).get("via") === "hls") playHls();
  else playMp3();
  // If nothing plays within 10 s, try the other way.
  clearTimeout(fallbackTimer);
  fallbackTimer = setTimeout(() => {
    if (audio.paused || audio.currentTime === 0) fallback();
  }, 10000);
}

function bindAudio() {
  const audio = $("#live-audio");
  audio.addEventListener("playing", () => setState(t("listen.on"), "ok"));
  audio.addEventListener("waiting", () => setState(t("listen.buffering")));
  audio.addEventListener("error", () => {
    if (audio.getAttribute("src") && $("#listen-btn").getAttribute("aria-pressed") === "true" && !hls) fallback();
  });
  $("#listen-btn").addEventListener("click", () => {
    if ($("#listen-btn").getAttribute("aria-pressed") === "true") stop();
    else start();
  });
  $("#recheck").addEventListener("click", async () => {
    try {
      await api("GET", withToken(`/live/${reg.village}.m3u`));
      save({ ...reg, status: "active" });
      showPlayer();
    } catch (err) {
      setState(describe(err), "error");
    }
  });
  $("#forget").addEventListener("click", () => {
    if (!confirm(t("listen.forget.confirm"))) return;
    stop();
    socket?.close();
    save(null);
    setBearer("");
    showRegister();
  });
  $("#notify-btn").addEventListener("click", async () => {
    if (!("Notification" in window)) return setState(t("listen.notify.no"), "error");
    const result = await Notification.requestPermission();
    setState(result === "granted" ? t("listen.notify.ok") : t("listen.notify.denied"), result === "granted" ? "ok" : "error");
    paintNotify();
  });
}

function paintNotify() {
  const granted = "Notification" in window && Notification.permission === "granted";
  $("#notify-btn").hidden = granted;
}

// ---- replay --------------------------------------------------------------------------------------
async function loadRecent() {
  const list = $("#recent");
  const error = $("#recent-error");
  error.hidden = true;
  let items = [];
  try {
    const body = await api("GET", "/api/v1/replays");
    items = itemsOf(body, "announcements")
      .map((a) => ({ title: a.title, at: a.played_at || a.created_at, duration: a.duration_s, url: withToken(a.url || `/media/announcements/${a.id}.mp3`) }));
  } catch {
    try {
      const xml = await api("GET", `/feeds/${reg.village}.rss`);
      const doc = new DOMParser().parseFromString(xml, "application/xml");
      items = [...doc.querySelectorAll("item")].slice(0, 10).map((item) => ({
        title: item.querySelector("title")?.textContent,
        at: item.querySelector("pubDate")?.textContent,
        url: withToken(item.querySelector("enclosure")?.getAttribute("url") || ""),
      }));
    } catch (err) {
      error.textContent = describe(err);
      error.hidden = false;
    }
  }
  mount(list, items.length
    ? items.map((a, i) => h("li", {},
        h("div", { class: "recent-title" }, a.title || "—"),
        h("div", { class: "muted" }, fmtTime(a.at), a.duration ? ` · ${fmtDuration(a.duration)}` : ""),
        h("audio", { controls: true, preload: "none", src: a.url, id: `replay-${i}`, "aria-label": `${t("listen.replay")}: ${a.title || ""}` })))
    : h("li", { class: "muted" }, t("listen.recent.none")));
  for (const audio of list.querySelectorAll("audio")) {
    audio.addEventListener("play", () => {
      if ($("#listen-btn").getAttribute("aria-pressed") === "true") stop();
      for (const other of list.querySelectorAll("audio")) if (other !== audio) other.pause();
    });
  }
}

// ---- notification when a broadcast starts -------------------------------------------------------
function chime() {
  try {
    const ctx = new AudioContext();
    [[659, 0], [523, 0.35]].forEach(([freq, at]) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, ctx.currentTime + at);
      gain.gain.exponentialRampToValueAtTime(0.4, ctx.currentTime + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + at + 0.6);
      osc.connect(gain).connect(ctx.destination);
      osc.start(ctx.currentTime + at);
      osc.stop(ctx.currentTime + at + 0.65);
    });
    setTimeout(() => ctx.close(), 1500);
  } catch {
    /* no audio output */
  }
}

function mine(ev) {
  const villages = ev.villages || ev.targets?.villages;
  if (ev.village) return ev.village === reg.village;
  if (Array.isArray(villages) && villages.length) return villages.includes(reg.village);
  return true; // the server only sends a listener the events of its village
}

function connectEvents() {
  socket?.close();
  socket = events(
    (ev) => {
      if (!reg || !mine(ev)) return;
      if (ev.type === "broadcast.started" || ev.type === "live.started") {
        const title = ev.title || t("listen.now.generic");
        const box = $("#now");
        box.textContent = t("listen.now", { title });
        box.hidden = false;
        chime();
        if ("Notification" in window && Notification.permission === "granted" && document.visibilityState !== "visible") {
          try {
            new Notification(t("listen.notify.title"), { body: title, icon: "/static/icons/icon.svg", tag: "villagecast" });
          } catch {
            /* some phones only notify from a service worker */
          }
        }
      } else if (ev.type === "broadcast.ended" || ev.type === "live.ended") {
        $("#now").hidden = true;
        setTimeout(loadRecent, 1500);
      }
    },
    (up) => ($("#conn").hidden = up),
    reg.token,
  );
}

// ---- start ---------------------------------------------------------------------------------------
function paintLang() {
  applyI18n();
  $("#lang-switch").textContent = lang() === "ko" ? "English" : "한국어";
  document.title = t("listen.title");
}

$("#lang-switch").addEventListener("click", () => {
  setLang(lang() === "ko" ? "en" : "ko");
  paintLang();
  if (reg) showPlayer();
  else showRegister();
});

paintLang();
bindAudio();
paintNotify();
if (reg?.token) showPlayer();
else showRegister();
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
