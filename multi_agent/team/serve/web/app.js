// The page: sign-in, the conversation list, the conversation (streamed), the run tree, memory.
// Talks only to the server that serves it (docs/http-api.md); nothing is fetched from elsewhere.

import { ApiError, newId } from "./api.js";
import { handleEvent } from "./events.js";
import { loadMemory, scheduleMemory, searchMemory } from "./memory.js";
import { Turn, h, splitTurns } from "./render.js";
import { readEvents } from "./sse.js";
import {
  $, S, TOKEN_KEY, api, describe, forgetSignedIn, handleAuth, hooks, showRunError, showSignin,
} from "./state.js";
import { loadThreads, refreshThreads, renderThreads, threadTitle } from "./threads.js";
import { drawTree, layout, lineage } from "./tree.js";

// ---------------------------------------------------------------- reachability, notices

let retryTimer = null;

function setReachable(ok) {
  if (ok === !S.unreachable) return;
  S.unreachable = !ok;
  $("offline-server").hidden = ok;
  document.body.classList.toggle("server-down", !ok);
  if (!ok && !retryTimer) {
    retryTimer = setInterval(async () => {
      try {
        await api.info();
      } catch {
        return;
      }
      clearInterval(retryTimer);
      retryTimer = null;
      if (S.me) refreshAll();
      else boot();
    }, 3000);
  }
}

function showModel(info) {
  const badge = $("model-badge");
  badge.textContent = `Model: ${info.model}`;
  badge.title = info.modelLabel || info.model;
  badge.classList.toggle("offline", Boolean(info.offline));
  const notice = $("model-notice");
  if (info.offline) {
    notice.textContent = `Answers come from the ${info.modelLabel || "offline rules model, not an LLM"} `
      + `(${info.model}): simple word matching, not a language model.`;
    notice.hidden = false;
  } else {
    notice.hidden = true;
  }
}

// ---------------------------------------------------------------- sign in / out

async function signIn(token) {
  S.token = token;
  try {
    S.me = await api.me();
  } catch (error) {
    S.token = null;
    S.me = null;
    if (error instanceof ApiError && error.status === 401) {
      return "That token was not accepted. Check it, or ask for a new one.";
    }
    return describe(error);
  }
  localStorage.setItem(TOKEN_KEY, token);
  return null;
}

function signOut() {
  forgetSignedIn();
  $("composer-input").value = "";
  showSignin("You are signed out.");
}

// ---------------------------------------------------------------- routing (#/t/<thread>[/r/<run>])

/** A part of the address as text; one that does not decode (a mangled link) as it stands: the
 * server then answers that there is no such conversation, which the page says. */
function decodePart(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function route() {
  const m = /^#\/t\/([^/]+)(?:\/r\/([^/]+))?$/.exec(location.hash);
  return m ? { threadId: decodePart(m[1]), runId: m[2] ? decodePart(m[2]) : null }
    : { threadId: null, runId: null };
}

function setRoute(threadId, runId) {
  const hash = threadId ? `#/t/${encodeURIComponent(threadId)}${runId ? `/r/${encodeURIComponent(runId)}` : ""}` : "";
  if (location.hash === hash) return;
  // Another conversation is a new entry (Back returns to the one before); another run of the
  // same conversation replaces it.
  const same = route().threadId === (threadId || null);
  if (same || !location.hash || !threadId) history.replaceState(null, "", hash || location.pathname);
  else history.pushState(null, "", hash || location.pathname);
}

// ---------------------------------------------------------------- the conversation

export function setThreadTitle(t) {
  $("thread-title").textContent = t ? threadTitle(t) : "New conversation";
  document.title = t ? `${threadTitle(t)} · multi-agent` : "multi-agent";
}

export function newConversation() {
  S.running?.controller.abort();
  Object.assign(S, { threadId: null, thread: null, runs: [], viewRunId: null, running: null });
  setRoute(null);
  setThreadTitle(null);
  $("messages").replaceChildren(h("p", { class: "empty muted",
    text: "Ask for a joke, a stock (\"add AAPL to my watch list\") or some history. The manager hands your message to the right agent." }));
  showRunError("");
  renderTree();
  renderThreads();
  updateComposer();
  $("composer-input").focus();
}

function headRunId() {
  return S.thread?.headRunId || null;
}

/** The run that the next message continues from when it is not the head (a new branch). */
function branchParent() {
  const v = S.viewRunId;
  return v && v !== headRunId() ? v : null;
}

function renderTree() {
  drawTree($("tree"), S.runs, {
    viewRunId: S.viewRunId,
    headRunId: headRunId(),
    onShow: (runId) => showRun(runId, false),
    onContinue: (runId) => showRun(runId, true),
  });
}

function updateComposer() {
  const parent = branchParent();
  const note = $("branch-note");
  if (parent) {
    const t = layout(S.runs);
    const n = t.row.has(parent) ? t.row.get(parent) + 1 : "?";
    const isLeaf = !(t.children.get(parent) || []).length;
    $("branch-text").textContent = isLeaf
      ? `You are looking at another branch (run #${n}). Your next message continues it.`
      : `Continuing from run #${n}: your next message starts a new branch; the later runs are kept.`;
    note.hidden = false;
  } else {
    note.hidden = true;
  }
  // A run of this conversation that this tab did not start (the page was reloaded while it
  // ran, another tab or the chat runs it, or a server that died left it): it can be stopped.
  const busy = Boolean(S.running || otherRunning());
  $("send").disabled = busy;
  $("stop").hidden = !busy;
  if (!busy) {
    $("stop").disabled = false;
    $("stop").textContent = "Stop";
  }
  $("composer").setAttribute("aria-busy", busy ? "true" : "false");
}

/** Renders AG-UI messages as turns; runs of the shown lineage give each turn its run id. */
function renderConversation(messages, leafRunId) {
  const box = $("messages");
  box.replaceChildren();
  const turns = splitTurns(messages);
  const t = layout(S.runs);
  const leaf = leafRunId || headRunId() || (t.order.length ? t.order[t.order.length - 1].runId : null);
  const runs = leaf ? lineage(t.byId, leaf) : [];
  const userTurns = turns.filter((x) => x[0]?.role === "user");
  // Each message names its run (metadata.runId); else the lineage's runs map to turns in order.
  const mapped = runs.length === userTurns.length;
  let k = 0;
  turns.forEach((msgs, i) => {
    const first = msgs[0];
    let runId = first?.metadata?.runId || null;
    if (first?.role === "user") {
      if (!runId && mapped) runId = runs[k].runId;
      k++;
    }
    const turn = new Turn(box, { runId });
    turn.replay(msgs);
    const going = i === turns.length - 1 ? otherRunning() : null;
    if (going && (runId || headRunId()) === going.runId) {
      // Still being answered (elsewhere, or before a reload): shown so, with Stop offered;
      // watchRunning reloads the conversation until it ends.
      turn.el.dataset.status = "running";
      turn.working(turn.lastAgent || "the team");
    }
    if (runId && i < turns.length - 1) {
      turn.el.append(h("button", { type: "button", class: "small ghost continue-turn",
        "aria-label": `Continue from this answer as a new branch`,
        onclick: () => showRun(runId, true) }, "↳ Continue from here"));
    }
  });
  if (!turns.length) {
    box.append(h("p", { class: "empty muted", text: "No messages yet." }));
  }
  box.scrollTop = box.scrollHeight;
}

export async function openThread(threadId, runId) {
  if (S.running && S.running.threadId === threadId) return;  // it is on the screen, streaming
  const seq = ++S.loadSeq;
  if (S.running && S.running.threadId !== threadId) S.running.controller.abort();
  showRunError("");
  S.threadId = threadId;
  S.viewRunId = runId;
  renderThreads();
  try {
    const [thread, runs] = await Promise.all([api.thread(threadId), api.runs(threadId)]);
    if (seq !== S.loadSeq) return;
    S.thread = thread;
    S.runs = runs;
    if (runId && !runs.some((r) => r.runId === runId)) S.viewRunId = runId = null;
    if (runId === thread.headRunId) S.viewRunId = runId = null;
    setThreadTitle(thread);
    setRoute(threadId, runId);
    renderTree();
    updateComposer();
    if (runId) {
      const body = await api.messages(threadId, runId);
      if (seq !== S.loadSeq) return;
      renderConversation(body.messages, runId);
    } else {
      await replay(threadId, seq);
    }
    if (seq === S.loadSeq) watchRunning();
  } catch (error) {
    if (seq !== S.loadSeq || handleAuth(error)) return;
    if (error instanceof ApiError && error.status === 404) {
      S.threads = S.threads.filter((x) => x.threadId !== threadId);
      newConversation();
      showRunError("That conversation does not exist (or is not yours).");
      return;
    }
    showRunError(`Could not load the conversation: ${describe(error)}`);
  }
}

/** The thread's head via the replay stream (GET .../connect): what a refreshed page shows. */
async function replay(threadId, seq) {
  const response = await api.connect(threadId);
  let messages = null;
  for await (const event of readEvents(response)) {
    if (seq !== S.loadSeq) return;
    if (event.type === "MESSAGES_SNAPSHOT") messages = event.messages || [];
    else if (event.type === "STATE_SNAPSHOT") scheduleMemory();
    else if (event.type === "RUN_ERROR") showRunError(`Could not replay the conversation: ${event.message}`);
  }
  if (messages === null) {
    // No snapshot in the replay: read the history as JSON instead.
    messages = (await api.messages(threadId)).messages;
  }
  if (seq === S.loadSeq) renderConversation(messages, null);
}

let watchTimer = null;

/** A run still going that this page did not start (another tab, the chat, before a refresh):
 * the thread is read again every few seconds until it has finished. */
function watchRunning() {
  clearTimeout(watchTimer);
  if (S.running || !S.threadId || !S.runs.some((r) => r.status === "running")) return;
  const threadId = S.threadId;
  watchTimer = setTimeout(() => {
    if (!S.running && S.threadId === threadId) openThread(threadId, S.viewRunId);
  }, 2500);
}

async function showRun(runId, focusComposer) {
  if (!S.threadId || S.running) return;
  await openThread(S.threadId, runId);
  if (focusComposer) $("composer-input").focus();
}

async function refreshThreadMeta() {
  if (!S.threadId) return;
  try {
    const [thread, runs] = await Promise.all([api.thread(S.threadId), api.runs(S.threadId)]);
    S.thread = thread;
    S.runs = runs;
    setThreadTitle(thread);
  } catch (error) {
    handleAuth(error);
  }
  renderTree();
  updateComposer();
}

// ---------------------------------------------------------------- a run (streamed)

async function send(text) {
  if (S.running || !text.trim()) return;
  showRunError("");
  const input = $("composer-input");
  document.body.dataset.idle = "0";  // "1" again once the run and what follows it are shown
  let made = null;  // the conversation this message made: removed again if the run is refused
  if (!S.threadId) {
    try {
      const title = Array.from(text.trim().replace(/\s+/g, " ")).slice(0, 60).join("");
      const thread = await api.createThread(title);
      made = thread.threadId;
      S.threadId = thread.threadId;
      S.thread = thread;
      S.runs = [];
      S.viewRunId = null;
      S.threads = [thread, ...S.threads.filter((x) => x.threadId !== thread.threadId)];
      setRoute(thread.threadId, null);
      setThreadTitle(thread);
      renderThreads();
      $("messages").replaceChildren();
    } catch (error) {
      if (!handleAuth(error)) {
        showRunError(`Not sent (the conversation could not be made): ${describe(error)} `
          + "Your message is still in the box.");
      }
      document.body.dataset.idle = "1";
      return;
    }
  }
  const threadId = S.threadId;
  S.loadSeq++;  // a load still under way must not replace the turn that starts now
  const parentRunId = branchParent();
  const controller = new AbortController();
  const runId = newId();
  S.running = { threadId, runId, controller };
  input.value = "";
  updateComposer();
  $("messages").querySelector(".empty")?.remove();
  $("messages").querySelectorAll(".continue-turn").forEach((b) => b.remove());
  const turn = new Turn($("messages"));
  turn.user(text);
  turn.working("manager");
  $("messages").scrollTop = $("messages").scrollHeight;

  const body = {
    threadId,
    runId,
    messages: [{ id: newId(), role: "user", content: text }],
    state: {},
    tools: [],
    context: [],
    forwardedProps: {},
  };
  if (parentRunId) body.parentRunId = parentRunId;

  let started = false;
  let ended = null;
  try {
    const response = await api.run(threadId, body, controller.signal);
    for await (const event of readEvents(response)) {
      if (event.type === "RUN_STARTED") {
        started = true;
        S.running.runId = event.runId || runId;
        turn.setRunId(S.running.runId);
      }
      const end = handleEvent(turn, event);
      if (end) ended = end;
      $("messages").scrollTop = $("messages").scrollHeight;
    }
    if (!ended) {
      turn.error("the connection closed before the run finished. Reload the conversation to see what was saved.");
      showRunError("The run's stream was cut before it finished.");
    }
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && !started && !input.value) {
      input.value = text;  // not sent: kept for after signing in again
    }
    if (error.name === "AbortError") {
      ended = "stopped";
      turn.note("Stopped listening to this run; reload the conversation to see what was saved.");
    } else if (!handleAuth(error)) {
      let text409 = null;
      if (error instanceof ApiError && error.status === 409) {
        text409 = "Another run of this conversation is still going. Wait for it to finish, or stop it.";
      }
      const message = text409 || describe(error);
      // Not an HTTP answer (no connection, or the stream broke off): is the server there?
      if (!(error instanceof ApiError)) api.info().catch(() => {});
      if (!started) {
        // The server did not take the message: no turn, and the text goes back in the box.
        turn.el.remove();
        if (!input.value) input.value = text;
        showRunError(`Not sent: ${message} Your message is back in the box.`);
        if (made) await forgetEmptyThread(made);
      } else if (!(error instanceof ApiError)) {
        const lost = "the connection to the server was lost. The run goes on there; reload the "
          + "conversation to see its answer.";
        turn.error(lost);
        showRunError(`The run's stream broke off: ${lost}`);
      } else {
        turn.error(message);
        showRunError(`The run failed: ${message}`);
      }
    }
  } finally {
    turn.finish(ended || "error");
    S.running = null;
    updateComposer();
  }
  if (!S.token || S.threadId !== threadId) {
    document.body.dataset.idle = "1";
    return;
  }
  await refreshThreadMeta();
  const newRun = turn.el.dataset.runId;
  S.viewRunId = newRun && newRun !== headRunId() ? newRun : null;
  setRoute(threadId, S.viewRunId);
  renderTree();
  updateComposer();
  // The answered turn becomes an earlier one: offer to continue from the others.
  addContinueButtons();
  await Promise.all([refreshThreads(), loadMemory()]);
  watchRunning();  // e.g. a 409: the run that is going is shown when it ends
  document.body.dataset.idle = "1";
  input.focus();
}

function addContinueButtons() {
  const turns = [...$("messages").querySelectorAll(".turn")];
  turns.forEach((el, i) => {
    const runId = el.dataset.runId;
    if (!runId || i === turns.length - 1 || el.querySelector(".continue-turn")) return;
    el.append(h("button", { type: "button", class: "small ghost continue-turn",
      "aria-label": "Continue from this answer as a new branch",
      onclick: () => showRun(runId, true) }, "↳ Continue from here"));
  });
}

/** Removes the conversation a refused first message made (it holds nothing). */
async function forgetEmptyThread(threadId) {
  try {
    await api.deleteThread(threadId);
  } catch {
    return;  // it stays, empty; the list shows it
  }
  S.threads = S.threads.filter((x) => x.threadId !== threadId);
  if (S.threadId === threadId) {
    Object.assign(S, { threadId: null, thread: null, runs: [], viewRunId: null });
    setRoute(null, null);
    setThreadTitle(null);
  }
  renderThreads();
}

/** The running run of the shown conversation when this tab is not the one streaming it. */
function otherRunning() {
  if (S.running || !S.threadId) return null;
  return S.runs.find((r) => r.status === "running" && (r.kind || "invocation") === "invocation")
    || null;
}

async function stopRun() {
  const run = S.running;
  const other = otherRunning();
  if (!run && !other) return;
  $("stop").disabled = true;
  $("stop").textContent = "Stopping…";
  if (!run) {
    try {
      await api.stop(S.threadId, other.runId);
    } catch (error) {
      if (!handleAuth(error)) showRunError(`Could not stop the run: ${describe(error)}`);
    }
    await refreshThreadMeta();  // then the tree and the composer say where it stands
    return;
  }
  try {
    await api.stop(run.threadId, run.runId);
  } catch {
    run.controller.abort();  // the server could not stop it: at least stop listening
  }
}

// ---------------------------------------------------------------- layout: the drawer at phone width

export function closeDrawer() {
  document.body.classList.remove("threads-open");
  $("toggle-threads").setAttribute("aria-expanded", "false");
}

function toggleDrawer() {
  const open = !document.body.classList.contains("threads-open");
  document.body.classList.toggle("threads-open", open);
  $("toggle-threads").setAttribute("aria-expanded", String(open));
  if (open) ($("thread-list").querySelector(".thread-open") || $("new-thread")).focus();
}

// ---------------------------------------------------------------- start

async function refreshAll() {
  document.body.dataset.ready = "0";
  const seq = S.loadSeq;
  await loadThreads();
  scheduleMemory(0);
  // Something the person did meanwhile (a message sent, a thread opened) wins.
  if (S.running || seq !== S.loadSeq) {
    document.body.dataset.ready = "1";
    return;
  }
  const { threadId, runId } = route();
  if (threadId) await openThread(threadId, runId);
  else if (S.threadId) await openThread(S.threadId, S.viewRunId);
  else if (S.threads.length) await openThread(S.threads[0].threadId, null);
  else newConversation();
  document.body.dataset.ready = "1";
}

async function showApp() {
  $("signin").hidden = true;
  $("app").hidden = false;
  $("who").textContent = S.me.userId;
  await refreshAll();
}

async function boot() {
  try {
    S.info = await api.info();
    showModel(S.info);
  } catch {
    // setReachable(false) has shown the notice and retries boot()
    if (!S.token) showSignin("");
    return;
  }
  if (!S.token) {
    showSignin("");
    return;
  }
  const problem = await signIn(S.token);
  if (problem) {
    if (S.unreachable) return;
    localStorage.removeItem(TOKEN_KEY);
    showSignin(problem);
    return;
  }
  await showApp();
}

function wire() {
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) {
      $("signin-error").textContent = "Paste your token first.";
      return;
    }
    $("signin-button").disabled = true;
    $("signin-error").textContent = "Signing in…";
    const problem = await signIn(token);
    $("signin-button").disabled = false;
    if (problem) {
      $("signin-error").textContent = problem;
      $("token-input").focus();
      return;
    }
    $("signin-error").textContent = "";
    await showApp();
    $("composer-input").focus();
  });
  $("signout").addEventListener("click", signOut);
  $("new-thread").addEventListener("click", () => { closeDrawer(); newConversation(); });
  $("more-threads").addEventListener("click", () => loadThreads(true));
  $("toggle-threads").addEventListener("click", toggleDrawer);
  $("branch-cancel").addEventListener("click", () => {
    if (S.threadId) openThread(S.threadId, null).then(() => $("composer-input").focus());
  });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    send($("composer-input").value);
  });
  $("composer-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send($("composer-input").value);
    }
  });
  $("skip").addEventListener("click", (e) => {
    e.preventDefault();  // the address keeps the thread (#/t/...), the focus moves
    $("composer-input").focus();
  });
  $("stop").addEventListener("click", stopRun);
  $("memory-search").addEventListener("submit", (e) => {
    e.preventDefault();
    searchMemory($("memory-q").value);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && document.body.classList.contains("threads-open")) {
      closeDrawer();
      $("toggle-threads").focus();
    }
  });
  const followAddress = () => {  // a link, Back or Forward
    if (!S.me) return;
    const { threadId, runId } = route();
    if (threadId && (threadId !== S.threadId || (runId || null) !== (S.viewRunId || null))) {
      openThread(threadId, runId);
    }
  };
  window.addEventListener("hashchange", followAddress);
  window.addEventListener("popstate", followAddress);
  window.addEventListener("online", () => api.info().catch(() => {}));
}

hooks.onReachable = setReachable;
wire();
boot();
