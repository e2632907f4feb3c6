// The client of the server's HTTP API (docs/http-api.md): one function per endpoint.

/** An error answered by the server ({"error": {"code", "message"}}) or an HTTP status. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** The server could not be reached at all (fetch itself failed). */
export class Unreachable extends Error {
  constructor(cause) {
    super("The server cannot be reached.");
    this.name = "Unreachable";
    this.cause = cause;
  }
}

async function errorOf(response) {
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText || "error"}`;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, code, message);
}

/** A random id (crypto.randomUUID needs a secure context; 127.0.0.1 is one, a LAN address is not). */
export function newId() {
  if (globalThis.crypto?.randomUUID) {
    try {
      return crypto.randomUUID();
    } catch {
      // fall through
    }
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export class Api {
  /** @param {() => string|null} token  @param {{onReachable?: (ok: boolean) => void}} hooks */
  constructor(token, hooks = {}) {
    this.token = token;
    this.hooks = hooks;
  }

  async raw(method, path, { body, accept = "application/json", signal } = {}) {
    const headers = { Accept: accept };
    const token = this.token();
    // fetch cannot send a header with other characters (it would throw, as if the server were
    // away): such a token, e.g. pasted with an invisible character, is not one.
    if (token && !/^[\x21-\x7e]+$/.test(token)) {
      throw new ApiError(401, "unauthorized", "the token holds characters no token has "
        + "(an invisible one pasted with it?)");
    }
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: "no-store",
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      this.hooks.onReachable?.(false);
      throw new Unreachable(error);
    }
    this.hooks.onReachable?.(true);
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  async json(method, path, options) {
    const response = await this.raw(method, path, options);
    if (response.status === 204) return null;
    return response.json();
  }

  info() { return this.json("GET", "/api/info"); }
  me() { return this.json("GET", "/api/me"); }
  memory() { return this.json("GET", "/api/me/memory"); }
  searchMemory(q, limit = 10) {
    return this.json("GET", `/api/me/memory/search?${new URLSearchParams({ q, limit: String(limit) })}`);
  }

  threads(cursor, limit = 20) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor) q.set("cursor", cursor);
    return this.json("GET", `/api/threads?${q}`);
  }
  createThread(title) { return this.json("POST", "/api/threads", { body: title ? { title } : {} }); }
  thread(id) { return this.json("GET", `/api/threads/${enc(id)}`); }
  renameThread(id, title) { return this.json("PATCH", `/api/threads/${enc(id)}`, { body: { title } }); }
  deleteThread(id) { return this.json("DELETE", `/api/threads/${enc(id)}`); }

  /** Every run of a thread (follows nextCursor). */
  async runs(id) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < 50; page++) {
      const q = new URLSearchParams({ limit: "200" });
      if (cursor) q.set("cursor", cursor);
      const body = await this.json("GET", `/api/threads/${enc(id)}/runs?${q}`);
      items.push(...(body.items || []));
      cursor = body.nextCursor;
      if (!cursor) break;
    }
    return items;
  }

  messages(id, runId) {
    const q = runId ? `?${new URLSearchParams({ runId })}` : "";
    return this.json("GET", `/api/threads/${enc(id)}/messages${q}`);
  }

  /** The replay stream of a thread (RUN_STARTED, MESSAGES_SNAPSHOT, STATE_SNAPSHOT, RUN_FINISHED). */
  connect(id, runId, signal) {
    const q = runId ? `?${new URLSearchParams({ runId })}` : "";
    return this.raw("GET", `/api/threads/${enc(id)}/connect${q}`, { accept: "text/event-stream", signal });
  }

  /** Starts a run: the response's body is the run's event stream. */
  run(threadId, input, signal) {
    return this.raw("POST", `/api/threads/${enc(threadId)}/runs`, {
      body: input, accept: "text/event-stream", signal,
    });
  }

  /** Asks the server to stop a running run (202; 409 when it has finished already). */
  async stop(threadId, runId) {
    await this.raw("POST", `/api/threads/${enc(threadId)}/runs/${enc(runId)}/stop`);
  }
}

function enc(s) {
  return encodeURIComponent(s);
}
