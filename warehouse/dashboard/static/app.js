// The dashboard application: one page, state in the URL (?page=&region=&date=&lang=&view=), data
// from the server's named endpoints only (/api/<name>?region=&date=), never SQL.
"use strict";

const PAGES = ["overview", "series", "alerts", "health", "household"];
const CENSUS_SECTIONS = {
  status: ["households_total", "persons_total", "registered_households", "registered_persons", "poor_households", "poor_persons",
    "exited_households", "exited_persons", "returned_households", "returned_persons", "non_registered_households",
    "non_registered_persons", "monitoring_open_households", "monitoring_eliminated_households"],
  guarantees: ["guarantee_income_met_rate", "guarantee_education_met_rate", "guarantee_medical_met_rate", "guarantee_housing_met_rate",
    "guarantee_water_met_rate", "guarantee_all_met_rate", "guarantee_all_unverified_households", "guarantee_medical_unverified_households"],
  income: ["income_mean_per_capita", "income_median_per_capita", "income_above_line_rate", "income_change_mean_per_capita"],
  policy: ["dibao_registered_rate", "insurance_rate", "compulsory_dropouts_persons", "unsafe_house_households", "unsafe_water_households"],
};
const ASSESSMENT_FIGS = ["poverty_incidence_rate", "comprehensive_incidence_rate", "wrong_exit_rate", "missed_rate",
  "identification_accuracy_rate", "exit_accuracy_rate", "satisfaction_rate", "support_coverage_rate", "cadres_active",
  "households_per_cadre", "cadres_over_limit", "visit_compliance_rate", "return_rate", "alerts_raised", "alerts_open",
  "alert_response_median_days", "county_exit_ready", "village_exit_ready"];
const ACCURACY = new Set(["identification_accuracy_rate", "exit_accuracy_rate"]);
const CHARTS = {
  poverty_incidence_rate: ["poverty_incidence_rate"],
  status: ["poor_households", "exited_households", "returned_households", "non_registered_households"],
  monitoring: ["monitoring_open_households", "monitoring_eliminated_households"],
  alerts: ["alerts_raised", "alerts_resolved", "alerts_open"],
  returns: ["returned_in_period_households"],
};

const state = { me: null, charts: [], timer: null, sort: {} };
const $ = (sel, root = document) => root.querySelector(sel);
const params = () => new URLSearchParams(location.search);
const lang = () => params().get("lang") || "zh";
const t = (key) => (LABELS[lang()] && LABELS[lang()][key]) || LABELS.zh[key] || key;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") node.addEventListener("click", v);
    else if (k === "text") node.textContent = v;
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function navigate(changes, replace = false) {
  const p = params();
  for (const [k, v] of Object.entries(changes)) (v === null || v === "" ? p.delete(k) : p.set(k, v));
  history[replace ? "replaceState" : "pushState"](null, "", "?" + p.toString());
  render();
}

async function api(name, extra = {}) {
  const p = params();
  const q = new URLSearchParams();
  for (const k of ["region", "date", "view"]) if (p.get(k)) q.set(k, p.get(k));
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  const resp = await fetch(`/api/${name}?${q}`, { credentials: "same-origin" });
  const doc = await resp.json();
  if (!resp.ok) throw new Error(doc.error || resp.statusText);
  return doc;
}

// -- formatting ------------------------------------------------------------------------------------
function fmt(col, v) {
  if (v === null || v === undefined) return "—";
  if (col.endsWith("_rate")) return (v * 100).toFixed(2) + "%";
  if (col.endsWith("_ready") || col.endsWith("_passed")) return v ? t("yes") : t("no");
  if (typeof v === "number" && !Number.isInteger(v)) return v.toLocaleString(undefined, { maximumFractionDigits: 2 });
  if (typeof v === "number") return v.toLocaleString();
  return String(v);
}

function suppressedCell(row, col) {
  return row && row._suppressed && row._suppressed.includes(col);
}

function rateTip(row, col, rates) {
  const parts = rates && rates[col];
  if (!parts || !row) return null;
  const [num, den] = parts;
  const a = row[num], b = row[den];
  const lhs = ACCURACY.has(col) ? `1 − ${fmt(num, a)} / ${fmt(den, b)}` : `${fmt(num, a)} / ${fmt(den, b)}`;
  return `${t(col)} = ${lhs}  (${t("numerator")} ${num}, ${t("denominator")} ${den})`;
}

function missed(row, col, rates, flags) {
  const th = (rates && rates[col] && rates[col][2]) || (flags && flags[col]);
  if (col === "county_exit_ready" || col === "village_exit_ready") return row && row[col] === 0;
  return Boolean(th && row && row[th] === 0);
}

function figure(row, col, rates, flags) {
  const value = row ? row[col] : null;
  const sup = suppressedCell(row, col);
  const bad = missed(row, col, rates, flags);
  const node = el("div", { class: "fig" + (bad ? " bad" : ""), "data-col": col, "data-value": value === null || value === undefined ? "" : String(value) },
    el("span", { class: "label", text: t(col) }),
    el("span", { class: "value" + (sup ? " suppressed" : ""), text: sup ? t("suppressed").replace("{k}", state.me.public_min_households) : fmt(col, value) }));
  const tip = rateTip(row, col, rates);
  if (tip) node.setAttribute("title", tip + (bad ? ` · ${t("threshold_missed")}` : ""));
  else if (bad) node.setAttribute("title", t("threshold_missed"));
  return node;
}

// -- export ----------------------------------------------------------------------------------------
function download(name, type, data) {
  const a = el("a", { href: URL.createObjectURL(new Blob([data], { type })), download: name });
  document.body.append(a); a.click(); a.remove();
}
function csvOf(columns, rows) {
  const cell = (v) => (v === null || v === undefined ? "" : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  return "\ufeff" + [columns.join(","), ...rows.map((r) => columns.map((c) => cell(r[c])).join(","))].join("\n") + "\n";
}
function exportButtons(name, columns, rows) {
  const base = `${name}-${params().get("region") || ""}-${params().get("date") || ""}`;
  return el("span", { class: "export" },
    el("button", { type: "button", "data-export": "csv", onclick: () => download(base + ".csv", "text/csv", csvOf(columns, rows)), text: t("export_csv") }),
    el("button", { type: "button", "data-export": "json", onclick: () => download(base + ".json", "application/json", JSON.stringify(rows, null, 1)), text: t("export_json") }));
}

// -- tables ----------------------------------------------------------------------------------------
function table(id, columns, rows, opts = {}) {
  const sort = state.sort[id] || {};
  const sorted = rows.slice();
  if (sort.col) {
    sorted.sort((a, b) => {
      const x = a[sort.col], y = b[sort.col];
      const c = x === y ? 0 : x === null || x === undefined ? -1 : y === null || y === undefined ? 1 : x < y ? -1 : 1;
      return sort.dir === "desc" ? -c : c;
    });
  }
  const head = el("tr", {}, ...columns.map((c) => el("th", {
    "data-col": c, class: sort.col === c ? `sorted-${sort.dir}` : null,
    onclick: () => { state.sort[id] = { col: c, dir: sort.col === c && sort.dir === "asc" ? "desc" : "asc" }; opts.rerender(); },
    text: t(c),
  })));
  const body = sorted.map((r) => {
    const tr = el("tr", { "data-region": r.region_code || null, class: opts.drill ? "drill" : null },
      ...columns.map((c) => {
        const sup = suppressedCell(r, c);
        const td = el("td", { "data-col": c, "data-value": r[c] === null || r[c] === undefined ? "" : String(r[c]),
          class: (typeof r[c] === "string" ? "text " : "") + (missed(r, c, opts.rates) ? "bad" : "") + (sup ? " suppressed" : ""),
          text: sup ? t("suppressed").replace("{k}", state.me.public_min_households) : fmt(c, r[c]) });
        const tip = rateTip(r, c, opts.rates);
        if (tip) td.setAttribute("title", tip);
        return td;
      }));
    if (opts.drill) tr.addEventListener("click", () => opts.drill(r));
    return tr;
  });
  return el("table", { id }, el("thead", {}, head), el("tbody", {}, ...body));
}

function section(title, node, exportNode) {
  return el("section", {}, el("h2", {}, el("span", { text: title }), exportNode), node);
}

// -- pages -----------------------------------------------------------------------------------------
async function renderBreadcrumb(region) {
  const bc = $("#breadcrumb");
  bc.replaceChildren();
  region.breadcrumb.forEach((c, i) => {
    if (i) bc.append(el("span", { class: "sep", text: "›" }));
    bc.append(i === region.breadcrumb.length - 1
      ? el("strong", { "data-region": c.region_code, text: c.name })
      : el("a", { "data-region": c.region_code, onclick: () => navigate({ region: c.region_code }), text: c.name }));
  });
}

async function pageOverview(main) {
  const [region, ov, kids] = await Promise.all([api("region"), api("overview"), api("children")]);
  await renderBreadcrumb(region);
  const c = ov.census, a = ov.assessment;
  const nodes = [];
  for (const [name, cols] of Object.entries(CENSUS_SECTIONS)) {
    const figs = el("div", { class: "figs", id: `census-${name}` }, ...cols.map((col) => figure(c, col, ov.rates, ov.flags)));
    nodes.push(section(`${t("census")} · ${t(name)}`, figs, exportButtons(`census-${name}`, cols, c ? [pick(c, cols)] : [])));
  }
  const afigs = el("div", { class: "figs", id: "assessment" }, ...ASSESSMENT_FIGS
    .filter((col) => !(col === "county_exit_ready" && region.level !== "county") && !(col === "village_exit_ready" && region.level !== "village"))
    .map((col) => figure(a, col, ov.rates, ov.flags)));
  nodes.push(section(t("assessment"), afigs, exportButtons("assessment", ASSESSMENT_FIGS, a ? [pick(a, ASSESSMENT_FIGS)] : [])));
  if (kids.level) {
    const rerender = () => { $("#children").replaceWith(table("children", kids.columns, kids.rows, opts)); };
    const opts = { rates: kids.rates, drill: (r) => navigate({ region: r.region_code }), rerender };
    nodes.push(section(`${t("children")} (${t(kids.level) || kids.level})`, table("children", kids.columns, kids.rows, opts),
      exportButtons("children", kids.columns, kids.rows)));
  }
  main.replaceChildren(el("h2", { id: "region-name", "data-region": region.region_code, text: `${region.name} · ${region.date}` }), ...nodes);
}

function pick(row, cols) {
  const out = { region_code: row.region_code, reference_date: row.reference_date };
  for (const c of cols) out[c] = row[c];
  return out;
}

async function pageSeries(main) {
  const [region, s] = await Promise.all([api("region"), api("series")]);
  await renderBreadcrumb(region);
  const grid = el("div", { class: "charts" });
  main.replaceChildren(section(`${region.name} · ${t("series")}`, grid, exportButtons("series", s.columns, s.rows)));
  for (const [name, cols] of Object.entries(CHARTS)) {
    const box = el("div", { class: "chart", id: `chart-${name}` });
    const holder = el("section", {}, el("h2", {}, el("span", { text: cols.map(t).join(" / ") }),
      el("span", { class: "export" }, el("button", { type: "button", "data-export": "png", text: t("export_png"),
        onclick: () => { const ch = echarts.getInstanceByDom(box); download(`${name}.png`, "image/png", dataUrlBytes(ch.getDataURL({ type: "png", backgroundColor: "#fff" }))); } }))), box);
    grid.append(holder);
    const chart = echarts.init(box);
    state.charts.push(chart);
    const pct = name === "poverty_incidence_rate";
    chart.setOption({
      animation: false, tooltip: { trigger: "axis" }, legend: { data: cols.map(t) },
      xAxis: { type: "category", data: s.rows.map((r) => r.month) },
      yAxis: { type: "value", axisLabel: pct ? { formatter: (v) => (v * 100).toFixed(1) + "%" } : {} },
      series: cols.map((col) => ({ name: t(col), type: "line", data: s.rows.map((r) => r[col]) })),
    });
  }
}

function dataUrlBytes(url) {
  const bin = atob(url.split(",")[1]);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

async function pageAlerts(main) {
  const region = await api("region");
  await renderBreadcrumb(region);
  const box = el("div", { id: "alerts-box" });
  main.replaceChildren(box);
  const refresh = async () => {
    const doc = await api("alerts");
    const opts = { rerender: () => $("#alerts").replaceWith(table("alerts", doc.columns, doc.rows, opts)) };
    box.replaceChildren(section(`${t("open_alerts")}: `, table("alerts", doc.columns, doc.rows, opts), exportButtons("alerts", doc.columns, doc.rows)));
    $("h2 span", box).append(el("strong", { id: "alerts-total", "data-value": String(doc.total), text: String(doc.total) }));
  };
  await refresh();
  state.timer = setInterval(() => refresh().catch(showError), 2000);
}

async function pageHealth(main) {
  const [region, feeds, dead, cons0, cp] = await Promise.all([api("region"), api("feeds"), api("dead_letters"), api("consistency"), api("checkpoint")]);
  const h = { feeds, dead_letters: dead, consistency: cons0.consistency };
  await renderBreadcrumb(region);
  const cpNode = el("div", { class: "figs" },
    el("div", { class: "fig" + (cp.success === false ? " bad" : ""), id: "checkpoint-result" }, el("span", { class: "label", text: t("checkpoint") }),
      el("span", { class: "value", text: cp.success === null || cp.success === undefined ? t("none") : cp.success ? t("passed") : t("failed") })),
    el("div", { class: "fig" }, el("span", { class: "label", text: cp.finished_at || "" }),
      cp.data_docs ? el("a", { href: cp.data_docs, target: "_blank", id: "data-docs", text: t("data_docs") }) : el("span", { text: t("none") })));
  const cons = h.consistency;
  const consCols = ["dibao_households", "dibao_households_not_registered", "registered_households_on_dibao", "missed_candidate_households",
    "live_status_mismatch_households", "invalid_transitions", "totals_check_passed"];
  const flags = { totals_check_passed: "totals_check_passed" };
  const consNode = el("div", { class: "figs", id: "consistency" }, ...consCols.map((c) => figure(cons, c, {}, flags)));
  const feedsOpts = { rerender: () => $("#feeds").replaceWith(table("feeds", h.feeds.columns, h.feeds.rows, feedsOpts)) };
  const dlOpts = { rerender: () => $("#dead-letters").replaceWith(table("dead-letters", h.dead_letters.columns, h.dead_letters.rows, dlOpts)) };
  main.replaceChildren(
    section(t("checkpoint"), cpNode),
    section(t("feeds"), table("feeds", h.feeds.columns, h.feeds.rows, feedsOpts), exportButtons("feeds", h.feeds.columns, h.feeds.rows)),
    section(t("dead_letters"), table("dead-letters", h.dead_letters.columns, h.dead_letters.rows, dlOpts), exportButtons("dead-letters", h.dead_letters.columns, h.dead_letters.rows)),
    section(`${t("consistency")} · ${region.name}`, consNode, exportButtons("consistency", consCols, cons ? [pick(cons, consCols)] : [])));
}

async function pageHousehold(main) {
  $("#breadcrumb").replaceChildren();
  const input = el("input", { id: "household-id", value: params().get("household") || "" });
  const form = el("form", {}, el("label", {}, t("household_id") + " ", input), " ", el("button", { text: t("show") }));
  form.addEventListener("submit", (e) => { e.preventDefault(); navigate({ household: input.value.trim() }); });
  const out = el("div", { id: "household-out" });
  main.replaceChildren(section(t("household"), form), out);
  const hid = params().get("household");
  if (!hid) return;
  const doc = await api("household", { id: hid });
  const opts = { rerender: () => $("#events").replaceWith(table("events", doc.events.columns, doc.events.rows, opts)) };
  out.replaceChildren(
    section(t("live"), doc.live ? el("pre", { text: JSON.stringify(doc.live, null, 2) }) : el("p", { class: "note", text: doc.note || "" })),
    section(t("events"), table("events", doc.events.columns, doc.events.rows, opts), exportButtons(`events-${hid}`, doc.events.columns, doc.events.rows)));
}

// -- frame -----------------------------------------------------------------------------------------
function showError(err) {
  $("#main").replaceChildren(el("p", { class: "error", id: "error", text: String(err.message || err) }));
}

function renderFrame() {
  document.documentElement.lang = lang() === "en" ? "en" : "zh";
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  $("#lang").textContent = lang() === "en" ? "中文" : "English";
  $("#public").checked = params().get("view") === "public";
  const page = params().get("page") || "overview";
  const nav = $("#nav");
  nav.replaceChildren(...PAGES.filter((p) => p !== "household" || ["analyst", "operator"].includes(state.me.role))
    .map((p) => el("a", { href: "#", "data-page": p, class: p === page ? "active" : null,
      onclick: (e) => { e.preventDefault(); navigate({ page: p }); }, text: t(p) })));
}

async function render() {
  clearInterval(state.timer);
  state.charts.forEach((c) => c.dispose());
  state.charts = [];
  renderFrame();
  const main = $("#main");
  const page = params().get("page") || "overview";
  const fn = { overview: pageOverview, series: pageSeries, alerts: pageAlerts, health: pageHealth, household: pageHousehold }[page] || pageOverview;
  document.body.dataset.ready = "0";
  try {
    await fn(main);
  } catch (err) {
    showError(err);
  }
  document.body.dataset.ready = "1";
  document.body.dataset.page = page;
}

async function start() {
  state.me = await (await fetch("/api/me")).json();
  const dates = await api("meta");
  const sel = $("#date");
  sel.replaceChildren(...dates.dates.map((d) => el("option", { value: d, text: d })));
  if (!params().get("date") && dates.latest) {
    const p = params();
    p.set("date", dates.latest);
    history.replaceState(null, "", "?" + p.toString());
  }
  sel.value = params().get("date") || "";
  sel.addEventListener("change", () => navigate({ date: sel.value }));
  $("#lang").addEventListener("click", () => navigate({ lang: lang() === "en" ? "zh" : "en" }));
  $("#public").addEventListener("change", (e) => navigate({ view: e.target.checked ? "public" : null }));
  window.addEventListener("popstate", render);
  await render();
}

start().catch(showError);
