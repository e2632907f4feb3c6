// The memory panel: what the assistant remembers (GET /api/me/memory) and the long-memory search.

import { $, S, api, describe, handleAuth } from "./state.js";
import { h, renderMemory, when } from "./render.js";

let memoryTimer = null;

export function scheduleMemory(delay = 300) {
  clearTimeout(memoryTimer);
  memoryTimer = setTimeout(loadMemory, delay);
}

export async function loadMemory() {
  if (!S.token) return;
  try {
    const memory = await api.memory();
    $("memory").replaceChildren(...renderMemory(memory));
    $("memory").dataset.loaded = String(Date.now());
  } catch (error) {
    if (!handleAuth(error)) $("memory").replaceChildren(h("p", { class: "error", text: `Could not load: ${describe(error)}` }));
  }
}

/** One search hit: who said it, when, and what. */
function memoryItem(m) {
  const who = m.author === "user" ? "you" : m.author || "?";
  const stamp = typeof m.timestamp === "number" ? m.timestamp * 1000 : m.timestamp;
  return h("li", {},
    h("span", { class: "who", text: stamp ? `${who} · ${when(stamp)}` : who }),
    h("span", { class: "found", text: m.text }));
}

export async function searchMemory(q) {
  const out = $("memory-results");
  if (!q.trim()) {
    out.replaceChildren();
    return;
  }
  out.replaceChildren(h("li", { class: "muted", text: "Searching…" }));
  try {
    const { memories } = await api.searchMemory(q.trim());
    out.replaceChildren(...(memories.length ? memories.map(memoryItem)
      : [h("li", { class: "muted", text: "Nothing found." })]));
  } catch (error) {
    if (!handleAuth(error)) {
      out.replaceChildren(h("li", { class: "error", text: `Could not search: ${describe(error)}` }));
    }
  }
}
