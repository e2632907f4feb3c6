// What every part of the page shares: the state, the API client, the notices, the sign-in form.

import { Api, ApiError, Unreachable } from "./api.js";

/** Filled in by app.js: what happens when the server is found (un)reachable. */
export const hooks = { onReachable: () => {} };

export const TOKEN_KEY = "multi-agent.token";
export const $ = (id) => document.getElementById(id);

export const S = {
  token: localStorage.getItem(TOKEN_KEY),
  info: null,
  me: null,
  threads: [],
  nextCursor: null,
  threadId: null,
  thread: null,
  runs: [],
  viewRunId: null,     // null: the head (latest) of the thread
  running: null,       // {threadId, runId, controller}
  unreachable: false,
  loadSeq: 0,          // guards against an older load finishing after a newer one
};

export const api = new Api(() => S.token, { onReachable: (ok) => hooks.onReachable(ok) });

/** The notice under the conversation (an empty text hides it). */
export function showRunError(text) {
  const el = $("run-error");
  el.textContent = text;
  el.hidden = !text;
}

/** A sentence for an error: what the server said, or that it cannot be reached. */
export function describe(error) {
  if (error instanceof Unreachable) return "The server cannot be reached.";
  if (error instanceof ApiError) return `${error.message} (${error.status} ${error.code})`;
  return String(error?.message || error);
}

/** The sign-in form, with a message (why it is shown). */
export function showSignin(message = "") {
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  $("token-input").value = "";
  $("token-input").focus();
}

/** Forgets the signed-in person: the token, what was loaded for them and what is shown of it
 * (the next person to sign in on this page sees nothing of theirs). An unsent message stays in
 * the box. */
export function forgetSignedIn() {
  S.running?.controller.abort();
  localStorage.removeItem(TOKEN_KEY);
  Object.assign(S, { token: null, me: null, threads: [], nextCursor: null, threadId: null,
    thread: null, runs: [], viewRunId: null, running: null });
  history.replaceState(null, "", location.pathname);
  for (const id of ["thread-list", "messages", "memory", "memory-results", "tree"]) {
    $(id).replaceChildren();
  }
  $("memory-q").value = "";
  showRunError("");
}

/** A 401 after sign-in: the token was revoked. */
export function handleAuth(error) {
  if (error instanceof ApiError && error.status === 401) {
    forgetSignedIn();
    showSignin("Your token is no longer accepted; sign in again.");
    return true;
  }
  return false;
}
