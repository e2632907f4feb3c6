// The conversation as DOM: turns (a message of yours and everything the team did for it),
// bubbles labelled with the agent that wrote them, delegation steps, folded tool calls.

/** Creates an element: h("p", {class: "x", text: "hi"}, child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") el.textContent = value;
    else if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** The text of an AG-UI message's content (a string, or a list of parts). */
export function contentText(content) {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((part) => (typeof part === "string" ? part : part?.text ?? "")).join("");
  }
  return JSON.stringify(content);
}

/** Pretty JSON when the text is JSON, else the text. */
export function pretty(text) {
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function parseArgs(text) {
  try {
    return JSON.parse(text || "{}");
  } catch {
    return {};
  }
}

const TRANSFER = "transfer_to_agent";

/** One turn: your message and the team's work on it, built incrementally (stream or history). */
export class Turn {
  /** @param {HTMLElement} container  @param {{runId?: string}} opts */
  constructor(container, { runId } = {}) {
    this.el = h("section", { class: "turn", dataset: runId ? { runId } : {} });
    this.body = h("div", { class: "turn-body" });
    this.el.append(this.body);
    container.append(this.el);
    this.texts = new Map();  // messageId -> {bubble, textEl, text}
    this.tools = new Map();  // toolCallId -> {details, argsEl, resultEl, args, name}
    this.steps = new Set();
    this.agentOf = new Map();  // messageId -> agent
    this.lastAgent = "manager";
    this.status = null;
  }

  setRunId(runId) {
    if (runId) this.el.dataset.runId = runId;
  }

  /** Appends to the turn, keeping the "is working" line last. */
  add(el) {
    const working = this.workingEl && this.workingEl.parentNode === this.body ? this.workingEl : null;
    this.body.insertBefore(el, working);
    return el;
  }

  /** The group that consecutive tool calls share (one line of folded calls). */
  toolGroup() {
    const working = this.workingEl && this.workingEl.parentNode === this.body ? this.workingEl : null;
    const last = working ? working.previousElementSibling : this.body.lastElementChild;
    if (last && last.classList.contains("tools")) return last;
    return this.add(h("div", { class: "tools" }));
  }

  user(text) {
    this.add(h("div", { class: "bubble user", role: "article", "aria-label": "You said" },
      h("span", { class: "who" }, "You"),
      h("p", { class: "text", text })));
  }

  /** A delegation: "manager → stock_analyst" (once per pair and turn). */
  step(from, to) {
    if (!to) return;
    from = from || "manager";
    const key = `${from}→${to}`;
    if (this.steps.has(key)) return;
    this.steps.add(key);
    this.add(h("p", { class: "step", role: "note", dataset: { from, to } },
      h("span", { class: "visually-hidden" }, "Delegation: "),
      h("span", { class: "agent" }, from), " → ", h("span", { class: "agent" }, to)));
  }

  /** Shows who is working while the run is going. */
  working(agent) {
    this.clearWorking();
    this.workingEl = h("p", { class: "working", role: "status" },
      h("span", { class: "dots", "aria-hidden": "true" }), `${agent || "the team"} is working…`);
    this.body.append(this.workingEl);
  }

  clearWorking() {
    this.workingEl?.remove();
    this.workingEl = null;
  }

  noteAgent(messageId, agent) {
    if (messageId && agent) this.agentOf.set(messageId, agent);
  }

  textStart(messageId, agent) {
    agent = agent || this.agentOf.get(messageId) || this.lastAgent || "assistant";
    this.lastAgent = agent;
    const textEl = h("p", { class: "text" });
    const bubble = h("div", { class: "bubble assistant", role: "article",
      "aria-label": `${agent} answered`, dataset: { agent, messageId: messageId || "" } },
      h("span", { class: "who agent-name" }, agent), textEl);
    this.add(bubble);
    const entry = { bubble, textEl, text: "" };
    this.texts.set(messageId, entry);
    return entry;
  }

  textDelta(messageId, delta) {
    const entry = this.texts.get(messageId) || this.textStart(messageId);
    entry.text += delta || "";
    entry.textEl.textContent = entry.text;
  }

  textEnd(messageId) {
    const entry = this.texts.get(messageId);
    if (entry && !entry.text) entry.bubble.remove();  // an empty message is no bubble
  }

  toolStart(toolCallId, name, parentMessageId) {
    const agent = this.agentOf.get(parentMessageId) || this.lastAgent;
    const argsEl = h("pre", { class: "args" });
    const resultEl = h("pre", { class: "result" }, "…");
    const details = h("details", { class: "tool", dataset: { tool: name, toolCallId } },
      h("summary", {}, h("span", { class: "visually-hidden" }, "Tool call: "),
        h("span", { class: "agent" }, agent), " called ", h("code", {}, name)),
      h("div", { class: "tool-body" },
        h("p", { class: "label" }, "Arguments"), argsEl,
        h("p", { class: "label" }, "Result"), resultEl));
    this.toolGroup().append(details);
    const entry = { details, argsEl, resultEl, args: "", name, agent };
    this.tools.set(toolCallId, entry);
    return entry;
  }

  toolArgs(toolCallId, delta) {
    const entry = this.tools.get(toolCallId) || this.toolStart(toolCallId, "tool");
    entry.args += delta || "";
    entry.argsEl.textContent = entry.args;
  }

  toolEnd(toolCallId) {
    const entry = this.tools.get(toolCallId);
    if (!entry) return;
    entry.argsEl.textContent = pretty(entry.args || "{}");
    if (entry.name === TRANSFER) this.step(entry.agent, parseArgs(entry.args).agent_name);
  }

  toolResult(toolCallId, content) {
    const entry = this.tools.get(toolCallId) || this.toolStart(toolCallId, "tool");
    entry.resultEl.textContent = pretty(contentText(content));
  }

  error(message) {
    this.clearWorking();
    this.add(h("p", { class: "bubble failed", role: "alert" },
      h("strong", {}, "The run failed: "), message));
  }

  note(message) {
    this.add(h("p", { class: "turn-note", text: message }));
  }

  /** Ends the turn's live part. */
  finish(status) {
    this.clearWorking();
    this.status = status;
    this.el.dataset.status = status;
  }

  /** Replays AG-UI history messages (of one turn) into this turn. */
  replay(messages) {
    for (const m of messages) {
      if (m.role === "user") {
        this.user(contentText(m.content));
      } else if (m.role === "assistant") {
        const agent = m.name || this.lastAgent;
        this.lastAgent = agent;
        if (m.id) this.agentOf.set(m.id, agent);
        const text = contentText(m.content);
        if (text) {
          this.textStart(m.id, agent);
          this.textDelta(m.id, text);
        }
        for (const call of m.toolCalls || []) {
          this.toolStart(call.id, call.function?.name || "tool", m.id);
          this.toolArgs(call.id, call.function?.arguments || "");
          this.toolEnd(call.id);
        }
      } else if (m.role === "tool") {
        this.toolResult(m.toolCallId, m.error ? { error: m.error, content: m.content } : m.content);
      } else if (m.role === "system" || m.role === "developer") {
        this.note(contentText(m.content));
      }
    }
    this.finish("finished");
  }
}

/** Splits AG-UI messages into turns: each user message starts one. */
export function splitTurns(messages) {
  const turns = [];
  let current = null;
  for (const m of messages || []) {
    if (m.role === "user" || !current) {
      current = [];
      turns.push(current);
    }
    current.push(m);
  }
  return turns;
}

/** The memory panel's content from GET /api/me/memory. */
export function renderMemory(memory) {
  if (!memory) return [h("p", { class: "muted", text: "Nothing yet." })];
  const out = [];
  const row = (label, value) => out.push(h("dt", { text: label }), h("dd", {}, value));
  const none = () => h("span", { class: "muted", text: "not known" });
  const chips = (items) => (items && items.length
    ? h("ul", { class: "chips" }, items.map((x) => h("li", { text: String(x) })))
    : h("span", { class: "muted", text: "empty" }));
  row("Your name", memory.name ? memory.name : none());
  row("Favourite agent", memory.favoriteAgent ? memory.favoriteAgent : none());
  row("Watch list", chips(memory.watchlist));
  const prefs = memory.preferences || {};
  const labels = { joke_preferences: "Joke topics", jokePreferences: "Joke topics",
    nerd_topics: "Nerd topics", nerdTopics: "Nerd topics" };
  const skip = new Set(["stock_watchlist", "stockWatchlist", "favorite_agent", "favoriteAgent"]);
  for (const [key, value] of Object.entries(prefs)) {
    if (skip.has(key)) continue;
    const label = labels[key] || key.replace(/_/g, " ");
    row(label, Array.isArray(value) ? chips(value)
      : (value === null || value === undefined || value === "") ? none()
        : typeof value === "object" ? h("code", { text: JSON.stringify(value) }) : String(value));
  }
  const stats = Object.entries(memory.agentStats || {});
  const dl = h("dl", { class: "facts" }, out);
  const table = stats.length
    ? h("table", { class: "stats" },
      h("caption", { text: "Agents that helped you" }),
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Agent" }),
        h("th", { scope: "col", text: "Times" }), h("th", { scope: "col", text: "Last" }))),
      h("tbody", {}, stats.map(([agent, s]) => h("tr", { dataset: { agent } },
        h("th", { scope: "row", text: agent }),
        h("td", { text: String(s?.delegations ?? s?.count ?? (typeof s === "number" ? s : "")) }),
        h("td", { text: s?.last_used || s?.lastUsed ? when(s.last_used || s.lastUsed) : "" })))))
    : h("p", { class: "muted", text: "No agent has helped you yet." });
  return [dl, table];
}

/** A short local time for an ISO string. */
export function when(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso || "");
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString([], { month: "short", day: "numeric" });
}
