// The run tree of a thread as a picture: one dot per run, oldest at the top. A linear history
// is one straight line; a run continued from an earlier one starts a new lane (a fork).
// Beside the picture, one row per run with its buttons (the accessible form of the picture).

import { h } from "./render.js";

const SVG = "http://www.w3.org/2000/svg";
const ROW = 52;   // px per run; rows beside the picture have the same height (style.css --tree-row)
const LANE = 18;  // px between lanes
const PAD = 12;

function s(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/**
 * Lays the runs out: rows in start order, lanes so that a first child stays in its parent's lane
 * and every further child opens a lane of its own.
 * @param {Array<object>} runs  top-level runs ({runId, parentRunId, startedAt, ...})
 */
export function layout(runs) {
  const order = [...runs].sort((a, b) => String(a.startedAt).localeCompare(String(b.startedAt)));
  const byId = new Map(order.map((r) => [r.runId, r]));
  const children = new Map();
  for (const r of order) {
    const p = byId.has(r.parentRunId) ? r.parentRunId : null;
    if (!children.has(p)) children.set(p, []);
    children.get(p).push(r.runId);
  }
  const row = new Map(order.map((r, i) => [r.runId, i]));
  const lane = new Map();
  let lanes = 0;
  for (const r of order) {
    const p = byId.has(r.parentRunId) ? r.parentRunId : null;
    const siblings = children.get(p);
    if (p !== null && siblings[0] === r.runId) lane.set(r.runId, lane.get(p));
    else if (p === null && lanes === 0) lane.set(r.runId, lanes++);
    else lane.set(r.runId, lanes++);
  }
  const leaves = order.filter((r) => !(children.get(r.runId) || []).length).map((r) => r.runId);
  return { order, byId, children, row, lane, lanes: Math.max(lanes, 1), leaves };
}

/** The runs from the root to runId (inclusive). */
export function lineage(byId, runId) {
  const out = [];
  const seen = new Set();
  let id = runId;
  while (id && byId.has(id) && !seen.has(id)) {
    seen.add(id);
    out.unshift(byId.get(id));
    id = byId.get(id).parentRunId;
  }
  return out;
}

/**
 * Draws the tree into container.
 * @param {HTMLElement} container
 * @param {Array<object>} runs
 * @param {{viewRunId: string|null, headRunId: string|null, onShow: Function, onContinue: Function}} opts
 */
export function drawTree(container, runs, { viewRunId, headRunId, onShow, onContinue }) {
  container.replaceChildren();
  if (!runs.length) {
    container.append(h("p", { class: "muted", text: "No runs yet: send a message." }));
    container.dataset.runs = "0";
    container.dataset.branches = "0";
    return;
  }
  const t = layout(runs);
  const current = viewRunId && t.byId.has(viewRunId) ? viewRunId
    : (headRunId && t.byId.has(headRunId) ? headRunId : t.order[t.order.length - 1].runId);
  const path = new Set(lineage(t.byId, current).map((r) => r.runId));
  const width = PAD * 2 + (t.lanes - 1) * LANE;
  const height = t.order.length * ROW;
  const x = (id) => PAD + t.lane.get(id) * LANE;
  const y = (id) => t.row.get(id) * ROW + ROW / 2;

  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "tree-svg",
    role: "img", "aria-label": `Run tree: ${t.order.length} runs, ${t.leaves.length} branch${t.leaves.length === 1 ? "" : "es"}` });
  svg.dataset.lanes = String(t.lanes);
  const edges = s("g", { class: "edges" });
  const dots = s("g", { class: "dots" });
  svg.append(edges, dots);
  for (const r of t.order) {
    const id = r.runId;
    if (t.byId.has(r.parentRunId)) {
      const p = r.parentRunId;
      const [px, py, cx, cy] = [x(p), y(p), x(id), y(id)];
      const d = px === cx ? `M${px},${py} L${cx},${cy}`
        : `M${px},${py} C${px},${py + ROW * 0.6} ${cx},${py + ROW * 0.4} ${cx},${py + ROW} L${cx},${cy}`;
      edges.append(s("path", { d, class: path.has(id) ? "edge on" : "edge",
        "data-from": p, "data-to": id }));
    }
  }
  for (const r of t.order) {
    const id = r.runId;
    const cls = ["dot", path.has(id) ? "on" : "", id === current ? "current" : "", r.status || ""]
      .filter(Boolean).join(" ");
    dots.append(s("circle", { cx: x(id), cy: y(id), r: id === current ? 7 : 5, class: cls, "data-run-id": id }));
  }

  const list = h("ol", { class: "tree-rows", style: `--tree-indent:${width}px` });
  t.order.forEach((r, i) => {
    const id = r.runId;
    const isLeaf = !(t.children.get(id) || []).length;
    const agents = [...new Set((r.subRuns || []).map((sr) => sr.agent).filter(Boolean))];
    const label = r.userText ? String(r.userText) : "(no message)";
    const status = r.status && r.status !== "finished" ? r.status : "";
    const isCurrent = id === current;
    const rowEl = h("li", {
      class: `tree-row${path.has(id) ? " on" : ""}${isCurrent ? " current" : ""}`,
      dataset: { runId: id, lane: String(t.lane.get(id)), leaf: isLeaf ? "1" : "0" },
      "aria-current": isCurrent ? "step" : null,
    },
    h("span", { class: "run-text", title: label },
      h("span", { class: "run-n", text: `#${i + 1}` }), " ", label),
    h("span", { class: "run-meta" },
      agents.length ? `→ ${agents.join(", ")}` : (r.agent || ""),
      status ? h("span", { class: `run-status ${status}`, text: ` ${status}` }) : null,
      id === headRunId ? h("span", { class: "run-head", text: " latest" }) : null),
    h("span", { class: "run-actions" },
      h("button", { type: "button", class: "small show-run", disabled: isCurrent,
        "aria-label": `Show the conversation up to run ${i + 1}: ${label}`,
        onclick: () => onShow(id) }, isCurrent ? "Shown" : "Show"),
      isLeaf ? null : h("button", { type: "button", class: "small continue-run",
        "aria-label": `Continue from run ${i + 1} (${label}) as a new branch`,
        onclick: () => onContinue(id) }, "Continue from here")));
    list.append(rowEl);
  });
  container.dataset.runs = String(t.order.length);
  container.dataset.branches = String(t.leaves.length);
  container.append(h("div", { class: "tree-wrap", style: `--tree-rows:${t.order.length}` }, svg, list));
}

export const TREE_ROW = ROW;
