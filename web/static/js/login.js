import { api, describe } from "./api.js";
import { applyI18n, lang, setLang, t } from "./i18n.js";

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");
const langButton = document.getElementById("lang-switch");

function render() {
  applyI18n();
  langButton.textContent = lang() === "ko" ? "English" : "한국어";
  document.title = t("login.title");
}

langButton.addEventListener("click", () => {
  setLang(lang() === "ko" ? "en" : "ko");
  render();
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    error.textContent = t("login.missing");
    error.hidden = false;
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    await api("POST", "/api/v1/session", { username, password });
    location.href = "/";
  } catch (err) {
    error.textContent = describe(err);
    error.hidden = false;
    form.password.select();
  } finally {
    button.disabled = false;
  }
});

render();
