// The AG-UI events of a run applied to the turn on the screen.

import { showRunError } from "./state.js";
import { scheduleMemory } from "./memory.js";

/** Applies one AG-UI event to the turn; returns "finished"/"error" when the run ended. */
export function handleEvent(turn, e) {
  switch (e.type) {
    case "STEP_STARTED":
      if (e.stepName) turn.working(e.stepName);
      return null;
    case "CUSTOM":
      if (e.name === "delegation" && e.value) {
        turn.step(e.value.from, e.value.to);
        if (turn.workingEl) turn.working(e.value.to);
      } else if (e.name === "agent" && e.value) {
        turn.noteAgent(e.value.messageId, e.value.agent);
      }
      return null;
    case "TEXT_MESSAGE_START":
      turn.textStart(e.messageId, e.name);
      return null;
    case "TEXT_MESSAGE_CONTENT":
      turn.textDelta(e.messageId, e.delta);
      return null;
    case "TEXT_MESSAGE_CHUNK":
      if (!turn.texts.has(e.messageId)) turn.textStart(e.messageId, e.name);
      turn.textDelta(e.messageId, e.delta);
      return null;
    case "TEXT_MESSAGE_END":
      turn.textEnd(e.messageId);
      return null;
    case "TOOL_CALL_START":
      turn.toolStart(e.toolCallId, e.toolCallName, e.parentMessageId);
      return null;
    case "TOOL_CALL_CHUNK":
      if (!turn.tools.has(e.toolCallId)) turn.toolStart(e.toolCallId, e.toolCallName || "tool", e.parentMessageId);
      turn.toolArgs(e.toolCallId, e.delta);
      return null;
    case "TOOL_CALL_ARGS":
      turn.toolArgs(e.toolCallId, e.delta);
      return null;
    case "TOOL_CALL_END":
      turn.toolEnd(e.toolCallId);
      return null;
    case "TOOL_CALL_RESULT":
      turn.toolResult(e.toolCallId, e.content);
      return null;
    case "STATE_DELTA":
    case "STATE_SNAPSHOT":
      scheduleMemory();
      return null;
    case "RUN_FINISHED":
      if (e.outcome?.type === "cancelled") {
        turn.note("Stopped. What the team had done so far is kept.");
        turn.finish("stopped");
        return "stopped";
      }
      turn.finish("finished");
      return "finished";
    case "RUN_ERROR": {
      const text = `${e.message || "unknown error"}${e.code ? ` (${e.code})` : ""}`;
      turn.error(text);
      showRunError(`The run failed: ${text}`);
      return "error";
    }
    default:
      return null;
  }
}
