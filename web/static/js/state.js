// What the console knows about the signed-in account and the region tree it may act on.
import { api, itemsOf, setCsrf } from "./api.js";

export const state = {
  session: null,
  username: "",
  role: "",
  region: "",
  tree: { county: null, districts: [] },
  villages: new Map(), // code → village (with .district)
  districts: new Map(), // code → district
  groups: [], // speaker groups the account can see
};

function pickRegionCode(value) {
  if (!value) return "";
  if (typeof value === "string") return value;
  return value.code || value.region_code || "";
}

/** Load GET /api/v1/session: account, role, region, csrf_token. */
export async function loadSession() {
  const s = await api("GET", "/api/v1/session");
  const account = s.account && typeof s.account === "object" ? s.account : {};
  state.session = s;
  state.username =
    account.display_name || account.username || (typeof s.account === "string" ? s.account : "") || s.username || "";
  state.role = s.role || account.role || "";
  state.region = pickRegionCode(s.region) || pickRegionCode(account.region) || account.region_code || "";
  setCsrf(s.csrf_token || s.csrf || "");
  return s;
}

/** The region tree as {county, districts: [{..., villages: [...]}]}, from any reasonable shape. */
export function normalizeTree(body) {
  const out = { county: null, districts: [] };
  if (!body) return out;
  const kids = (node) => node.villages || node.children || node.districts || [];
  if (!Array.isArray(body) && body.county && Array.isArray(body.county.districts)) {
    out.county = body.county;
    out.districts = body.county.districts.map((d) => ({ ...d, villages: kids(d) }));
    return out;
  }
  if (!Array.isArray(body) && Array.isArray(body.districts)) {
    out.county = body.county || null;
    out.districts = body.districts.map((d) => ({ ...d, villages: kids(d) }));
    return out;
  }
  const root = !Array.isArray(body) && body.tree ? body.tree : body;
  if (!Array.isArray(root) && (root.kind === "county" || root.children)) {
    out.county = root;
    out.districts = kids(root).map((d) => ({ ...d, villages: kids(d) }));
    return out;
  }
  const flat = itemsOf(root, "regions");
  const byParent = new Map();
  for (const r of flat) {
    if (r.kind === "county") out.county = r;
    const list = byParent.get(r.parent_code || r.parent) || [];
    list.push(r);
    byParent.set(r.parent_code || r.parent, list);
  }
  out.districts = flat
    .filter((r) => r.kind === "district")
    .map((d) => ({ ...d, villages: (byParent.get(d.code) || []).filter((v) => v.kind === "village") }));
  return out;
}

export async function loadRegions() {
  const body = await api("GET", "/api/v1/regions");
  setTree(normalizeTree(body));
}

export function setTree(tree) {
  state.tree = tree;
  state.villages.clear();
  state.districts.clear();
  for (const d of tree.districts) {
    state.districts.set(d.code, d);
    for (const v of d.villages) state.villages.set(v.code, { ...v, district: d });
  }
}

/** The part of the tree this account may target: all (admin), its district, or its village. */
export function allowedTree() {
  const { role, region } = state;
  const districts = state.tree.districts;
  if (role === "admin") return districts;
  if (role === "district") return districts.filter((d) => d.code === region);
  if (role === "village") {
    return districts
      .map((d) => ({ ...d, villages: d.villages.filter((v) => v.code === region) }))
      .filter((d) => d.villages.length);
  }
  return [];
}

export function allowedVillages() {
  return allowedTree().flatMap((d) => d.villages);
}

/** Speaker groups (targets too); none when the API refuses. */
export async function loadGroups() {
  try {
    state.groups = itemsOf(await api("GET", "/api/v1/groups"), "groups");
  } catch {
    state.groups = [];
  }
}
