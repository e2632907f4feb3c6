// The official AG-UI client against `multi-agent serve`, printing one JSON line per event.
//
//   BASE_URL=http://127.0.0.1:8000 TOKEN=mat_... THREAD_ID=... node agui_turns.mjs
//
// 1. run a turn with HttpAgent (POST /api/threads/{id}/runs), then a second one;
// 2. "refresh": a new agent with no messages connects (GET /api/threads/{id}/connect) and
//    receives the whole conversation;
// 3. re-run from the first run (parentRunId = the first run's id): a sibling branch.
// Every line is {"phase", "event"} or {"phase", "messages", "state"}; the last is {"done": true}.
import { HttpAgent, runHttpRequest, transformHttpEventStream } from "@ag-ui/client";

const base = process.env.BASE_URL;
const token = process.env.TOKEN;
const threadId = process.env.THREAD_ID;
const headers = { Authorization: `Bearer ${token}` };

class ThreadAgent extends HttpAgent {
  constructor({ parentRunId } = {}) {
    super({ url: `${base}/api/threads/${threadId}/runs`, headers, threadId });
    this.parentRunId = parentRunId;
  }

  // RunAgentInput has parentRunId; HttpAgent leaves it out, so it is added here.
  prepareRunAgentInput(parameters) {
    const input = super.prepareRunAgentInput(parameters);
    return this.parentRunId ? { ...input, parentRunId: this.parentRunId } : input;
  }

  // connectAgent(): the server's replay of the thread.
  connect() {
    const url = `${base}/api/threads/${threadId}/connect`;
    return transformHttpEventStream(
      runHttpRequest(() => fetch(url, { method: "GET", headers: { ...headers, Accept: "text/event-stream" } })),
    );
  }
}

const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const subscriber = (phase) => ({ onEvent: ({ event }) => print({ phase, event }) });
let counter = 0;
const say = (agent, text) =>
  agent.addMessage({ id: `client-${++counter}`, role: "user", content: text });

const first = new ThreadAgent();
say(first, "add NVDA to my watchlist");
await first.runAgent({ runId: "agui-run-1" }, subscriber("run1"));
say(first, "tell me a joke about python");
await first.runAgent({ runId: "agui-run-2" }, subscriber("run2"));
print({ phase: "after-runs", messages: first.messages, state: first.state });

const refreshed = new ThreadAgent();
await refreshed.connectAgent({}, subscriber("connect"));
print({ phase: "after-connect", messages: refreshed.messages, state: refreshed.state });

const branch = new ThreadAgent({ parentRunId: "agui-run-1" });
say(branch, "show my watchlist");
await branch.runAgent({ runId: "agui-run-3" }, subscriber("branch"));
print({ phase: "after-branch", messages: branch.messages });
print({ done: true });
