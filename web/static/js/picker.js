// The target picker over the region tree: only what the account may target.
import { h } from "./dom.js";
import { regionName, t } from "./i18n.js";
import { allowedTree, state } from "./state.js";

/** Build a picker; returns {el, targets(), count(), onChange(fn)}. */
export function targetPicker(name = "t", { allowWhole = true } = {}) {
  const tree = allowedTree();
  const listeners = [];
  const changed = () => listeners.forEach((fn) => fn());
  const single = tree.length === 1 && tree[0].villages.length === 1;
  const county =
    allowWhole && state.role === "admin"
      ? h("input", { type: "checkbox", id: `${name}-county`, value: state.tree.county?.code || "county" })
      : null;
  const fieldsets = tree.map((d) => {
    const whole =
      allowWhole && state.role !== "village"
        ? h("input", { type: "checkbox", id: `${name}-d-${d.code}`, class: "district-all", value: d.code })
        : null;
    const boxes = d.villages.map((v) =>
      h("input", { type: "checkbox", id: `${name}-v-${v.code}`, class: "village", value: v.code, checked: single }),
    );
    whole?.addEventListener("change", () => {
      for (const box of boxes) {
        box.checked = whole.checked;
        box.disabled = whole.checked;
      }
    });
    return h(
      "fieldset",
      { class: "picker-district", dataset: { district: d.code } },
      h("legend", {}, regionName(d)),
      whole ? h("label", { class: "check strong" }, whole, t("picker.all", { name: regionName(d) })) : null,
      h("div", { class: "village-grid" }, d.villages.map((v, i) => h("label", { class: "check" }, boxes[i], regionName(v)))),
    );
  });
  const groupBoxes = allowWhole
    ? state.groups.map((g) => h("input", { type: "checkbox", id: `${name}-g-${g.id}`, class: "group", value: g.id }))
    : [];
  const groupSet = groupBoxes.length
    ? h("fieldset", { class: "picker-groups" }, h("legend", {}, t("picker.groups")),
        h("div", { class: "village-grid" }, state.groups.map((g, i) =>
          h("label", { class: "check" }, groupBoxes[i], g.name, h("span", { class: "muted" }, ` (${(g.devices || []).length})`)))))
    : null;
  const el = h(
    "div",
    { class: "picker", role: "group", "aria-label": t("picker.label") },
    county ? h("label", { class: "check strong county" }, county, t("picker.county", { name: regionName(state.tree.county) || "" })) : null,
    tree.length > 3 ? h("input", {
      type: "search", class: "picker-filter", "aria-label": t("picker.filter"), placeholder: t("picker.filter"),
      oninput: (ev) => {
        const q = ev.target.value.trim();
        for (const fs of el.querySelectorAll("fieldset.picker-district")) {
          const hit = !q || fs.textContent.includes(q) || fs.dataset.district.includes(q.toLowerCase());
          fs.hidden = !hit;
        }
      },
    }) : null,
    groupSet,
    h("div", { class: "picker-tree" }, fieldsets),
  );
  el.addEventListener("change", changed);
  county?.addEventListener("change", () => {
    for (const box of el.querySelectorAll(".picker-tree input")) box.disabled = county.checked;
  });
  function targets() {
    if (county?.checked) return { county: true };
    const districts = [...el.querySelectorAll(".district-all:checked")].map((b) => b.value);
    const villages = [...el.querySelectorAll(".village:checked")]
      .filter((b) => !b.disabled)
      .map((b) => b.value);
    const groups = groupBoxes.filter((b) => b.checked).map((b) => Number(b.value));
    const out = {};
    if (groups.length) out.groups = groups;
    if (districts.length) out.districts = districts;
    if (villages.length) out.villages = villages;
    return out;
  }
  function count() {
    const tg = targets();
    if (tg.county) return state.villages.size;
    let n = (tg.villages || []).length + (tg.groups || []).length;
    for (const d of tg.districts || []) n += state.districts.get(d)?.villages.length || 0;
    return n;
  }
  return { el, targets, count, onChange: (fn) => listeners.push(fn) };
}
