// Compose (upload / record / text), preview with waveform and loudness, send with a dry-run plan,
// and go live over WebRTC.
import { ApiError, api, describe, upload } from "./api.js";
import { h, mount } from "./dom.js";
import { fmtDuration, fmtTime, lang, regionName, t } from "./i18n.js";
import { targetPicker } from "./picker.js";
import { state } from "./state.js";
import { errorBox, setLiveOnAir, toast } from "./ui.js";

// ---------------------------------------------------------------------------------------------
// Compose
export async function renderCompose(root, param) {
  const status = h("div", { class: "status", id: "ann-status", role: "status", "aria-live": "polite" });
  const preview = h("div", { class: "preview", id: "preview", hidden: true });
  const sendCard = h("section", { class: "card", id: "send-card", hidden: true });
  let announcement = null;

  const title = h("input", { id: "ann-title", name: "title", required: true, maxlength: 200, placeholder: t("compose.title.ph") });
  const tabs = ["upload", "record", "text"];
  const panels = { upload: uploadPanel(), record: recordPanel(), text: textPanel() };
  const tabButtons = tabs.map((name, i) =>
    h("button", {
      type: "button", role: "tab", id: `tab-${name}`, "aria-controls": `panel-${name}`,
      "aria-selected": i === 0 ? "true" : "false", class: "tab", onclick: () => select(name),
    }, t(`compose.tab.${name}`)),
  );
  function select(name) {
    for (const b of tabButtons) b.setAttribute("aria-selected", String(b.id === `tab-${name}`));
    for (const [key, panel] of Object.entries(panels)) panel.hidden = key !== name;
  }
  for (const [key, panel] of Object.entries(panels)) {
    panel.id = `panel-${key}`;
    panel.setAttribute("role", "tabpanel");
    panel.setAttribute("aria-labelledby", `tab-${key}`);
    panel.hidden = key !== "upload";
  }

  function needTitle() {
    if (title.value.trim()) return title.value.trim();
    title.focus();
    showError(new ApiError(422, { title_ko: "제목을 입력하세요", title_en: "Enter a title" }));
    return null;
  }
  function showError(err) {
    mount(status, errorBox(err));
  }

  // -- upload with a real progress bar
  function uploadPanel() {
    const file = h("input", { type: "file", id: "ann-file", accept: "audio/*,.mp3,.wav,.m4a,.ogg,.opus,.webm,.flac,.aac" });
    const bar = h("progress", { id: "upload-progress", max: 100, value: 0, "aria-label": t("compose.progress") });
    const pct = h("span", { class: "pct", "aria-hidden": "true" }, "");
    const go = h("button", { type: "button", class: "primary", id: "upload-btn" }, t("compose.upload.go"));
    go.addEventListener("click", async () => {
      const name = needTitle();
      if (!name) return;
      if (!file.files.length) return showError(new ApiError(422, { title_ko: "파일을 고르세요", title_en: "Choose a file" }));
      const form = new FormData();
      form.append("title", name);
      form.append("file", file.files[0]);
      await send(form, bar, pct, go);
    });
    return h("div", {}, h("label", { for: "ann-file" }, t("compose.file")), file, h("div", { class: "progress-row" }, bar, pct), go);
  }

  async function send(form, bar, pct, button) {
    button.disabled = true;
    mount(status, t("compose.uploading"));
    try {
      const created = await upload("/api/v1/announcements", form, (ratio) => {
        bar.value = Math.round(ratio * 100);
        pct.textContent = `${bar.value}%`;
      });
      bar.value = 100;
      pct.textContent = "100%";
      await follow(created.id);
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  }

  // -- record in the browser with a level meter and a preview
  function recordPanel() {
    const meter = h("meter", { id: "level", min: 0, max: 1, low: 0.15, high: 0.9, optimum: 0.5, value: 0, "aria-label": t("compose.level") });
    const hint = h("p", { class: "muted", id: "record-hint" }, t("compose.record.hint"));
    const clip = h("audio", { controls: true, id: "record-preview", hidden: true });
    const startBtn = h("button", { type: "button", class: "primary", id: "record-start" }, t("compose.record.start"));
    const stopBtn = h("button", { type: "button", id: "record-stop", disabled: true }, t("compose.record.stop"));
    const useBtn = h("button", { type: "button", class: "primary", id: "record-use", disabled: true }, t("compose.record.use"));
    const bar = h("progress", { max: 100, value: 0, "aria-label": t("compose.progress") });
    const pct = h("span", { class: "pct" });
    let recorder, stream, ctx, blob, raf, loudest = 0;
    startBtn.addEventListener("click", async () => {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: true } });
      } catch {
        return showError(new ApiError(0, { title_ko: "마이크를 쓸 수 없습니다", title_en: "No microphone", detail: t("compose.mic.detail") }));
      }
      ctx = new AudioContext();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 1024;
      ctx.createMediaStreamSource(stream).connect(analyser);
      const buf = new Float32Array(analyser.fftSize);
      loudest = 0;
      const tick = () => {
        analyser.getFloatTimeDomainData(buf);
        let sum = 0;
        for (const x of buf) sum += x * x;
        const rms = Math.sqrt(sum / buf.length);
        meter.value = Math.min(1, rms * 4);
        loudest = Math.max(loudest, meter.value);
        raf = requestAnimationFrame(tick);
      };
      tick();
      const chunks = [];
      recorder = new MediaRecorder(stream);
      recorder.addEventListener("dataavailable", (e) => e.data.size && chunks.push(e.data));
      recorder.addEventListener("stop", () => {
        blob = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
        clip.src = URL.createObjectURL(blob);
        clip.hidden = false;
        useBtn.disabled = false;
        hint.textContent = loudest < 0.15 ? t("compose.record.quiet") : t("compose.record.ok");
      });
      recorder.start(250);
      startBtn.disabled = true;
      stopBtn.disabled = false;
      hint.textContent = t("compose.record.on");
    });
    stopBtn.addEventListener("click", () => {
      recorder?.stop();
      stream?.getTracks().forEach((tr) => tr.stop());
      cancelAnimationFrame(raf);
      ctx?.close();
      meter.value = 0;
      startBtn.disabled = false;
      stopBtn.disabled = true;
    });
    useBtn.addEventListener("click", async () => {
      const name = needTitle();
      if (!name || !blob) return;
      const form = new FormData();
      form.append("title", name);
      const ext = (blob.type.includes("ogg") && "ogg") || (blob.type.includes("mp4") && "m4a") || "webm";
      form.append("file", blob, `recording.${ext}`);
      await send(form, bar, pct, useBtn);
    });
    return h("div", {}, h("div", { class: "row" }, startBtn, stopBtn),
      h("label", { for: "level" }, t("compose.level")), meter, hint, clip,
      h("div", { class: "progress-row" }, bar, pct), useBtn);
  }

  // -- text to speech
  function textPanel() {
    const text = h("textarea", { id: "ann-text", rows: 5, maxlength: 5000, placeholder: t("compose.text.ph") });
    const go = h("button", { type: "button", class: "primary", id: "tts-btn" }, t("compose.text.go"));
    go.addEventListener("click", async () => {
      const name = needTitle();
      if (!name) return;
      if (!text.value.trim()) return showError(new ApiError(422, { title_ko: "내용을 입력하세요", title_en: "Enter the text" }));
      go.disabled = true;
      try {
        const created = await api("POST", "/api/v1/announcements", { title: name, text: text.value.trim() });
        await follow(created.id);
      } catch (err) {
        showError(err);
      } finally {
        go.disabled = false;
      }
    });
    return h("div", {}, h("label", { for: "ann-text" }, t("compose.text")), text, go);
  }

  // -- processing state updates by itself
  async function follow(id) {
    mount(status, h("span", { class: "spinner", "aria-hidden": "true" }), t("compose.processing"));
    for (let i = 0; i < 600; i++) {
      let a;
      try {
        a = await api("GET", `/api/v1/announcements/${id}`);
      } catch (err) {
        if (err.status === 0) {
          mount(status, errorBox(err));
          await sleep(2000);
          continue;
        }
        throw err;
      }
      if (a.status === "ready") return showReady(a);
      if (a.status === "failed") {
        return showError(new ApiError(422, { title_ko: "변환에 실패했습니다", title_en: "Processing failed", detail: a.error || "" }));
      }
      await sleep(i < 20 ? 500 : 1500);
    }
  }

  function showReady(a) {
    announcement = a;
    mount(status, h("span", { class: "badge ok", id: "ann-ready" }, t("compose.ready")));
    mount(preview, previewOf(a));
    preview.hidden = false;
    sendCard.hidden = false;
    mount(sendCard, sendForm(() => announcement));
  }

  mount(
    root,
    h("div", { class: "view" },
      h("h1", {}, t("compose.h")),
      h("section", { class: "card" },
        h("h2", {}, t("compose.step1")),
        h("label", { for: "ann-title" }, t("compose.title")), title,
        h("div", { role: "tablist", class: "tablist", "aria-label": t("compose.how") }, tabButtons),
        Object.values(panels),
        status,
      ),
      preview,
      sendCard,
    ),
  );
  if (param) {
    try {
      const a = await api("GET", `/api/v1/announcements/${param}`);
      title.value = a.title || "";
      if (a.status === "ready") showReady(a);
      else await follow(a.id);
    } catch (err) {
      showError(err);
    }
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

export function mediaUrl(a) {
  return a.renditions?.mp3?.url || `/media/announcements/${a.id}.mp3`;
}

/** Preview player, waveform from `peaks`, measured loudness and duration. */
export function previewOf(a) {
  const canvas = h("canvas", { class: "wave", width: 800, height: 90, role: "img", "aria-label": t("compose.wave") });
  const audio = h("audio", { controls: true, preload: "metadata", src: mediaUrl(a), id: "preview-audio" });
  drawPeaks(canvas, a.peaks || []);
  audio.addEventListener("timeupdate", () => drawPeaks(canvas, a.peaks || [], audio.currentTime / (audio.duration || a.duration_s || 1)));
  const lufs = typeof a.loudness_lufs === "number" ? `${a.loudness_lufs.toFixed(1)} LUFS` : "—";
  return h("section", { class: "card" },
    h("h2", {}, t("compose.step2"), " — ", a.title || `#${a.id}`),
    canvas, audio,
    h("dl", { class: "facts" },
      h("dt", {}, t("compose.duration")), h("dd", { id: "ann-duration" }, fmtDuration(a.duration_s)),
      h("dt", {}, t("compose.loudness")), h("dd", { id: "ann-loudness" }, lufs, " ", h("span", { class: "muted" }, t("compose.loudness.note"))),
    ));
}

function drawPeaks(canvas, peaks, progress = 0) {
  const g = canvas.getContext("2d");
  const { width, height } = canvas;
  g.clearRect(0, 0, width, height);
  g.fillStyle = "#f1f4f9";
  g.fillRect(0, 0, width, height);
  const values = (Array.isArray(peaks) ? peaks : peaks?.values || []).map((p) => Math.abs(Array.isArray(p) ? Math.max(...p.map(Math.abs)) : Number(p) || 0));
  if (!values.length) return;
  const max = Math.max(...values, 1e-6);
  const step = width / values.length;
  values.forEach((v, i) => {
    const bar = Math.max(1, (v / max) * (height - 8));
    g.fillStyle = i / values.length <= progress ? "#0b4f9c" : "#6b8fc2";
    g.fillRect(i * step, (height - bar) / 2, Math.max(1, step - 1), bar);
  });
}

// ---------------------------------------------------------------------------------------------
// Send: targets, when, priority, repeat, chime — and the dry-run plan first.
function seoulIso(local) {
  // "2026-11-25T07:00" typed in Korea's zone → ISO 8601 with +09:00
  return local ? `${local.length === 16 ? `${local}:00` : local}+09:00` : undefined;
}

export function sendForm(getAnnouncement) {
  const picker = targetPicker("send");
  const when = h("fieldset", { class: "when" },
    h("legend", {}, t("send.when")),
    ["now", "later", "recurring"].map((v) =>
      h("label", { class: "check" }, h("input", { type: "radio", name: "when", value: v, checked: v === "now" }), t(`send.when.${v}`))));
  const at = h("input", { type: "datetime-local", id: "send-at", step: 1 });
  const freq = h("select", { id: "send-freq", "aria-label": t("send.freq") },
    ["daily", "weekdays", "weekly"].map((f) => h("option", { value: f }, t(`send.freq.${f}`))));
  const until = h("input", { type: "date", id: "send-until", "aria-label": t("send.until") });
  const laterRow = h("div", { class: "row", hidden: true }, h("label", { for: "send-at" }, t("send.at")), at);
  const recurRow = h("div", { class: "row", hidden: true }, h("label", { for: "send-freq" }, t("send.freq")), freq, h("label", { for: "send-until" }, t("send.until")), until);
  when.addEventListener("change", () => {
    const v = when.querySelector("input:checked").value;
    laterRow.hidden = v === "now";
    recurRow.hidden = v !== "recurring";
    invalidate();
  });
  const priority = h("select", { id: "send-priority" },
    priorities().map((p) => h("option", { value: p }, t(`priority.${p}`))));
  const repeat = h("input", { type: "number", id: "send-repeat", min: 1, max: 10, value: 1 });
  const chime = h("input", { type: "checkbox", id: "send-chime", checked: true });
  const reason = h("input", { id: "send-reason", maxlength: 300, placeholder: t("send.reason.ph") });
  const reasonRow = h("div", { hidden: true }, h("label", { for: "send-reason" }, t("send.reason")), reason);
  priority.addEventListener("change", () => {
    reasonRow.hidden = priority.value !== "emergency";
    invalidate();
  });
  const plan = h("div", { id: "plan", class: "plan", "aria-live": "polite" });
  const check = h("button", { type: "button", id: "dry-run" }, t("send.check"));
  const go = h("button", { type: "button", class: "primary big", id: "send-btn", disabled: true }, t("send.go"));
  let deferQuiet = false;
  function invalidate() {
    go.disabled = true;
    deferQuiet = false;
    mount(plan);
  }
  for (const el of [at, freq, until, repeat, chime]) el.addEventListener("change", invalidate);
  picker.onChange(invalidate);

  function body(dryRun) {
    const a = getAnnouncement();
    const mode = when.querySelector("input:checked").value;
    const out = {
      announcement_id: a.id,
      targets: picker.targets(),
      priority: priority.value,
      repeat: Number(repeat.value) || 1,
      chime: chime.checked,
    };
    if (mode !== "now") out.start_at = seoulIso(at.value);
    if (mode === "recurring") {
      const last = until.value || new Date(Date.now() + 30 * 86400000).toISOString().slice(0, 10);
      out.recurrence = freq.value === "weekdays"
        ? { freq: "weekly", weekdays: [0, 1, 2, 3, 4], until: last }
        : { freq: freq.value, until: last };
    }
    if (priority.value === "emergency" && reason.value.trim()) out.reason = reason.value.trim();
    if (deferQuiet) out.defer_quiet = true;
    if (dryRun) out.dry_run = true;
    return out;
  }
  function validate() {
    if (!picker.count()) throw new ApiError(422, { title_ko: "받을 마을을 고르세요", title_en: "Choose at least one village" });
    const mode = when.querySelector("input:checked").value;
    if (mode !== "now" && !at.value) throw new ApiError(422, { title_ko: "시각을 고르세요", title_en: "Choose a time" });
  }
  check.addEventListener("click", async () => {
    try {
      validate();
      check.disabled = true;
      const result = await api("POST", "/api/v1/broadcasts", body(true));
      showPlan(result.plan ?? result);
    } catch (err) {
      if (err.problem?.next_allowed) showQuiet(err.problem);
      else mount(plan, errorBox(err));
    } finally {
      check.disabled = false;
    }
  });
  function showQuiet(p) {
    const accept = h("button", { type: "button", class: "primary", id: "accept-next" },
      t("send.quiet.accept", { time: fmtTime(p.next_allowed) }));
    accept.addEventListener("click", () => {
      deferQuiet = true;
      go.disabled = false;
      accept.disabled = true;
      accept.textContent = t("send.quiet.accepted", { time: fmtTime(p.next_allowed) });
    });
    const title = (lang() === "en" ? p.title_en : p.title_ko) || p.title || t("send.quiet");
    // The per-village lines are in the user's language; the detail is the English fallback.
    const lines = Array.isArray(p.plan) && p.plan.length ? planLines(p.plan) : p.detail || "";
    mount(plan, h("div", { class: "alert warn", role: "alert", id: "quiet-warning" },
      h("strong", {}, title), p.quiet_hours ? ` (${p.quiet_hours})` : "", lines,
      h("p", {}, t("send.quiet.offer", { time: fmtTime(p.next_allowed) })), accept));
  }
  function showPlan(p) {
    const quiet = p?.quiet_hours || p?.refused || p?.action === "refused" || p?.outcome === "refused";
    if (quiet && p.next_allowed) return showQuiet({ ...p, title: t("send.quiet"), detail: p.detail || p.reason || "" });
    mount(plan, h("div", { class: "alert info", id: "plan-ok" }, h("strong", {}, t("send.plan")), planLines(p)));
    go.disabled = false;
  }
  go.addEventListener("click", async () => {
    go.disabled = true;
    try {
      validate();
      const created = await api("POST", "/api/v1/broadcasts", body(false));
      toast(t("send.done"), "ok");
      location.hash = `#report/${created.id}`;
    } catch (err) {
      if (err.problem?.next_allowed) showQuiet(err.problem);
      else mount(plan, errorBox(err));
      go.disabled = false;
    }
  });
  return h("div", {},
    h("h2", {}, t("send.h")),
    h("h3", {}, t("send.targets")), picker.el,
    when, laterRow, recurRow,
    h("div", { class: "grid3" },
      h("div", {}, h("label", { for: "send-priority" }, t("send.priority")), priority),
      h("div", {}, h("label", { for: "send-repeat" }, t("send.repeat")), repeat),
      h("label", { class: "check" }, chime, t("send.chime"))),
    reasonRow,
    h("div", { class: "row" }, check, go),
    plan);
}

const ACTIONS = ["plays_now", "play_now", "now", "queued", "queue", "preempts", "preempt", "scheduled", "refused", "deferred"];

/** Lines that say what will happen, from whatever shape the plan has. */
export function planLines(p) {
  if (!p || typeof p !== "object") return h("p", {}, String(p ?? ""));
  const rows = Array.isArray(p) ? p : p.villages || p.items || p.channels || null;
  const one = (x) => {
    const message = lang() === "en" ? x.message_en : x.message_ko;
    if (message) {
      const v = state.villages.get(x.village);
      return h("li", { dataset: { outcome: x.outcome || "" } }, v ? `${regionName(v)}: ` : x.name_ko ? `${x.name_ko}: ` : "", message);
    }
    const action = x.action || x.outcome || x.kind || x.result || "";
    const known = ACTIONS.includes(action) ? t(`plan.${action}`) : action;
    const v = state.villages.get(x.village || x.code);
    const extra = [];
    if (x.start_at || x.starts_at) extra.push(fmtTime(x.start_at || x.starts_at));
    if (x.preempts || x.preempted) extra.push(t("plan.preempts.what", { what: x.preempts?.title || x.preempted?.title || x.preempts || x.preempted }));
    if (x.queued_behind || x.after) extra.push(t("plan.after", { what: x.queued_behind || x.after }));
    if (x.speakers !== undefined) extra.push(t("plan.speakers", { n: x.speakers }));
    return h("li", {}, v ? `${regionName(v)}: ` : "", known, extra.length ? ` (${extra.join(", ")})` : "");
  };
  const items = rows ? rows.map(one) : [one(p)];
  const summary = p.summary || p.message || p.detail;
  return [summary ? h("p", {}, summary) : null, h("ul", {}, items)];
}

// ---------------------------------------------------------------------------------------------
// Go live: browser microphone over WebRTC to the chosen villages, with an on-air indicator.
const live = { pc: null, stream: null, started: 0, timer: null, id: null };

export async function renderLive(root) {
  const picker = targetPicker("live");
  const priority = h("select", { id: "live-priority" },
    priorities().map((p) => h("option", { value: p }, t(`priority.${p}`))));
  const chime = h("input", { type: "checkbox", id: "live-chime", checked: true });
  const meter = h("meter", { id: "live-level", min: 0, max: 1, value: 0, "aria-label": t("compose.level") });
  const status = h("div", { id: "live-status", role: "status", "aria-live": "polite" });
  const startBtn = h("button", { type: "button", class: "danger big", id: "live-start" }, t("live.start"));
  const stopBtn = h("button", { type: "button", class: "big", id: "live-stop", hidden: true }, t("live.stop"));
  const paint = () => {
    startBtn.hidden = !!live.pc;
    stopBtn.hidden = !live.pc;
    if (live.pc) mount(status, h("span", { class: "badge onair big-badge" }, "● ", t("onair.live")));
  };
  startBtn.addEventListener("click", async () => {
    if (!picker.count()) return mount(status, errorBox(new ApiError(422, { title_ko: "받을 마을을 고르세요", title_en: "Choose at least one village" })));
    startBtn.disabled = true;
    mount(status, t("live.connecting"));
    try {
      await goLive(picker.targets(), priority.value, chime.checked, meter);
      paint();
    } catch (err) {
      stopLive();
      mount(status, errorBox(err));
    } finally {
      startBtn.disabled = false;
    }
  });
  stopBtn.addEventListener("click", async () => {
    await stopLive();
    paint();
    mount(status, t("live.ended"));
  });
  mount(root, h("div", { class: "view" },
    h("h1", {}, t("live.h")),
    h("section", { class: "card" },
      h("p", {}, t("live.lead")),
      h("h2", {}, t("send.targets")), picker.el,
      h("div", { class: "grid3" },
        h("div", {}, h("label", { for: "live-priority" }, t("send.priority")), priority),
        h("label", { class: "check" }, chime, t("send.chime"))),
      h("label", { for: "live-level" }, t("compose.level")), meter,
      h("div", { class: "row" }, startBtn, stopBtn), status)));
  paint();
}

async function goLive(targets, priority, chime, meter) {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch {
    throw new ApiError(0, { title_ko: "마이크를 쓸 수 없습니다", title_en: "No microphone", detail: t("compose.mic.detail") });
  }
  const pc = new RTCPeerConnection({ iceServers: [] });
  live.pc = pc;
  live.stream = stream;
  for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const done = () => pc.iceGatheringState === "complete" && resolve();
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000); // never wait for gathering forever
  });
  const answer = await api("POST", "/api/v1/live/publish", {
    sdp: pc.localDescription.sdp, type: pc.localDescription.type, targets, priority, chime,
  });
  live.id = answer.id || answer.session_id || null;
  await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type || "answer" });
  pc.addEventListener("connectionstatechange", () => {
    if (["failed", "closed"].includes(pc.connectionState)) {
      stopLive();
      toast(t("live.lost"), "error");
    }
  });
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  ctx.createMediaStreamSource(stream).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  live.timer = setInterval(() => {
    analyser.getFloatTimeDomainData(buf);
    let s = 0;
    for (const x of buf) s += x * x;
    if (meter.isConnected) meter.value = Math.min(1, Math.sqrt(s / buf.length) * 4);
  }, 100);
  live.ctx = ctx;
  setLiveOnAir(true);
}

async function stopLive() {
  clearInterval(live.timer);
  live.ctx?.close();
  live.stream?.getTracks().forEach((tr) => tr.stop());
  live.pc?.close();
  if (live.id) {
    try {
      await api("DELETE", `/api/v1/live/publish/${live.id}`);
    } catch {
      /* closing the connection ends it too */
    }
  }
  Object.assign(live, { pc: null, stream: null, timer: null, id: null, ctx: null });
  setLiveOnAir(false);
}

/** The priorities this account may use: emergency is for the county office only. */
function priorities() {
  return state.role === "admin" ? ["normal", "urgent", "emergency"] : ["normal", "urgent"];
}
