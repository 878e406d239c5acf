// Messages and the on-air indicator, shared by the console's views.
import { describe } from "./api.js";
import { h, $ } from "./dom.js";
import { t } from "./i18n.js";

// ---- messages ---------------------------------------------------------------------------------
let toastTimer;
/** Show a message at the top (errors stay until the next action). */
export function toast(message, kind = "info") {
  const el = $("#toast");
  el.textContent = message;
  el.className = `alert banner ${kind}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  if (kind !== "error") toastTimer = setTimeout(() => (el.hidden = true), 6000);
}
export function clearToast() {
  $("#toast").hidden = true;
}
/** An inline error box for a view: title — detail. */
export function errorBox(err) {
  return h("div", { class: "alert error", role: "alert" }, describe(err));
}

// ---- on-air indicator -------------------------------------------------------------------------
export const onAir = { live: false, playing: new Set() };
export function setLiveOnAir(live) {
  onAir.live = live;
  paintOnAir();
}
export function paintOnAir() {
  const el = $("#on-air");
  el.hidden = !onAir.live && onAir.playing.size === 0;
  $("#on-air-text").textContent = onAir.live ? t("onair.live") : t("onair.playing", { n: onAir.playing.size });
  el.classList.toggle("live", onAir.live);
}

