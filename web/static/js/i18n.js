// Korean first, English on request. t(key) looks up the current language; keys are English-ish ids.
import { STRINGS } from "./strings.js";

const KEY = "vc_lang";

export function lang() {
  const stored = localStorage.getItem(KEY);
  return stored === "en" ? "en" : "ko";
}

export function setLang(value) {
  localStorage.setItem(KEY, value === "en" ? "en" : "ko");
  document.documentElement.lang = lang();
}

/** The text of `key` in the current language, with {name} placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const entry = STRINGS[key];
  let text = entry ? entry[lang()] ?? entry.ko : key;
  for (const [name, value] of Object.entries(vars)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

/** A region's name in the current language. */
export function regionName(region) {
  if (!region) return "";
  return (lang() === "en" ? region.name_en : region.name_ko) || region.name_ko || region.code;
}

/** Fill data-i18n (text), data-i18n-ph (placeholder) and data-i18n-aria (aria-label) under root. */
export function applyI18n(root = document) {
  document.documentElement.lang = lang();
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-ph]")) el.placeholder = t(el.dataset.i18nPh);
  for (const el of root.querySelectorAll("[data-i18n-aria]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAria));
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

const TZ = "Asia/Seoul";

/** A time shown in Korea's zone: "11월 25일 (수) 07:00". */
export function fmtTime(iso, { date = true } = {}) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const opts = { timeZone: TZ, hour: "2-digit", minute: "2-digit", hour12: false };
  if (date) Object.assign(opts, { month: "short", day: "numeric", weekday: "short" });
  return new Intl.DateTimeFormat(lang() === "en" ? "en-GB" : "ko-KR", opts).format(d);
}

export function fmtDuration(seconds) {
  if (seconds === undefined || seconds === null) return "—";
  const s = Math.round(Number(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
