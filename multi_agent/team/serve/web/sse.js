// Reads a text/event-stream body (from fetch's ReadableStream) and yields each event's JSON.
//
// The format (WHATWG HTML, "Server-sent events"): lines end in \n, \r\n or \r; an empty line ends
// an event; "data:" lines are joined with \n; lines starting with ":" are comments (keep-alives);
// "event:", "id:" and "retry:" are read and ignored (AG-UI puts everything in data).

/**
 * Parses SSE text incrementally. Feed it chunks of text; it returns the complete events so far.
 */
export class EventStreamParser {
  constructor() {
    this.buffer = "";
    this.data = [];
    this.pendingCR = false;
  }

  /** @param {string} text  @returns {string[]} the data of each event completed by this chunk */
  feed(text) {
    const out = [];
    if (this.pendingCR && text.startsWith("\n")) text = text.slice(1);
    this.pendingCR = false;
    this.buffer += text;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone \r at the very end may be the first half of \r\n split across chunks.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) {
        this.pendingCR = true;
      }
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line, out);
    }
    return out;
  }

  /** Ends the stream: an event without its closing blank line is still dispatched. */
  end() {
    const out = [];
    if (this.buffer) this.line(this.buffer, out);
    this.buffer = "";
    this.line("", out);
    return out;
  }

  line(line, out) {
    if (line === "") {
      if (this.data.length) out.push(this.data.join("\n"));
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
  }
}

/**
 * Yields the parsed JSON of every event of a fetch Response whose body is an event stream.
 * A data line that is not JSON is yielded as {type: "INVALID", raw}.
 * @param {Response} response
 */
export async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parser = new EventStreamParser();
  const parse = (raw) => {
    try {
      return JSON.parse(raw);
    } catch {
      return { type: "INVALID", raw };
    }
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const raw of parser.feed(decoder.decode(value, { stream: true }))) yield parse(raw);
    }
    for (const raw of parser.feed(decoder.decode())) yield parse(raw);
    for (const raw of parser.end()) yield parse(raw);
  } finally {
    reader.releaseLock();
  }
}
