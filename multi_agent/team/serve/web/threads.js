// The sidebar: the person's conversations (newest first, paged), rename, delete.

import { ApiError } from "./api.js";
import { $, S, api, describe, handleAuth, showRunError } from "./state.js";
import { h, when } from "./render.js";
import { closeDrawer, newConversation, openThread, setThreadTitle } from "./app.js";

export function threadTitle(t) {
  return (t && t.title) || "Untitled conversation";
}

export function renderThreads() {
  const list = $("thread-list");
  list.replaceChildren(...S.threads.map(threadItem));
  $("threads-empty").hidden = S.threads.length > 0;
  $("more-threads").hidden = !S.nextCursor;
}

function threadItem(t) {
  const current = t.threadId === S.threadId;
  const li = h("li", { class: `thread${current ? " current" : ""}`, dataset: { threadId: t.threadId } });
  const open = h("button", { type: "button", class: "thread-open", "aria-current": current ? "page" : null,
    onclick: () => { closeDrawer(); openThread(t.threadId, null); } },
  h("span", { class: "thread-name", text: threadTitle(t) }),
  h("span", { class: "thread-meta", text: `${when(t.updatedAt)} · ${t.runCount ?? 0} run${t.runCount === 1 ? "" : "s"}` }));
  const rename = h("button", { type: "button", class: "small ghost rename",
    "aria-label": `Rename "${threadTitle(t)}"`, onclick: () => startRename(li, t) }, "Rename");
  const del = h("button", { type: "button", class: "small ghost delete",
    "aria-label": `Delete "${threadTitle(t)}"`, onclick: () => confirmDelete(li, t) }, "Delete");
  li.append(open, h("span", { class: "thread-actions" }, rename, del));
  return li;
}

/** Renders the list again and puts the focus back on the thread's Rename button. */
function backToRename(t) {
  renderThreads();
  $("thread-list").querySelector(`[data-thread-id="${CSS.escape(t.threadId)}"] .rename`)?.focus();
}

function startRename(li, t) {
  const input = h("input", { type: "text", value: threadTitle(t), "aria-label": "New title", maxlength: "200" });
  const form = h("form", { class: "rename-form" }, input,
    h("button", { type: "submit", class: "small" }, "Save"),
    h("button", { type: "button", class: "small ghost", onclick: () => backToRename(t) }, "Cancel"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const title = input.value.trim();
    if (!title) return;
    try {
      const updated = await api.renameThread(t.threadId, title);
      Object.assign(t, updated || { title });
      if (S.threadId === t.threadId) setThreadTitle(t);
    } catch (error) {
      if (!handleAuth(error)) showRunError(`Could not rename: ${describe(error)}`);
    }
    backToRename(t);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();  // cancels the rename only (not the drawer around it)
      backToRename(t);
    }
  });
  li.replaceChildren(form);
  input.focus();
  input.select();
}

function confirmDelete(li, t) {
  const yes = h("button", { type: "button", class: "small danger confirm-delete", onclick: async () => {
    try {
      await api.deleteThread(t.threadId);
    } catch (error) {
      if (handleAuth(error)) return;
      if (!(error instanceof ApiError && error.status === 404)) {
        showRunError(`Could not delete: ${describe(error)}`);
        renderThreads();
        return;
      }
    }
    S.threads = S.threads.filter((x) => x.threadId !== t.threadId);
    if (S.threadId === t.threadId) newConversation();
    renderThreads();
    $("new-thread").focus();
  } }, "Delete it");
  const no = h("button", { type: "button", class: "small ghost", onclick: () => renderThreads() }, "Keep");
  li.replaceChildren(h("p", { class: "confirm", role: "alert" }, `Delete "${threadTitle(t)}" and all its runs?`),
    h("span", { class: "thread-actions" }, yes, no));
  yes.focus();
}

export async function loadThreads(more = false) {
  try {
    const page = await api.threads(more ? S.nextCursor : null);
    S.threads = more ? [...S.threads, ...page.items] : page.items;
    S.nextCursor = page.nextCursor || null;
  } catch (error) {
    if (!handleAuth(error)) showRunError(`Could not load your conversations: ${describe(error)}`);
    return;
  }
  renderThreads();
}

/** Reloads the first page, keeping as many threads as were shown. */
export async function refreshThreads() {
  const shown = Math.max(S.threads.length, 20);
  try {
    let items = [];
    let cursor = null;
    do {
      const page = await api.threads(cursor);
      items = items.concat(page.items);
      cursor = page.nextCursor || null;
    } while (cursor && items.length < shown);
    S.threads = items;
    S.nextCursor = cursor;
  } catch (error) {
    handleAuth(error);
    return;
  }
  renderThreads();
}
