// The Chat screen's data and the pure helpers it draws with. The types mirror the chat crate's
// serde output (crates/chat, src-tauri/src/cmd_chat.rs); the helpers are tested in chat.test.ts.
import { Channel, invoke } from "@tauri-apps/api/core";

export type Side = "adapter" | "prompted";
export type Ending = "finished" | "length" | "stopped" | "contextFull";

export interface Score {
  score: number;
  rulesPassed: number;
  rulesChecked: number;
}

export interface SideReply {
  side: Side;
  text: string;
  ending: Ending;
  promptTokens: number;
  prefilledTokens: number;
  prefillSecs: number;
  generatedTokens: number;
  decodeSecs: number;
  tokensPerSec: number;
  adherence: Score | null;
  droppedExchanges: number;
  adapter: string | null;
}

export interface Turn {
  user: string;
  at: number;
  replies: SideReply[];
  error: string | null;
}

export interface ChatSettings {
  temperature: number;
  topP: number;
  maxTokens: number;
  seed: number;
  sideBySide: boolean;
}

export interface Conversation {
  id: string;
  title: string;
  created: number;
  updated: number;
  settings: ChatSettings;
  systemPrompt: string | null;
  turns: Turn[];
}

export interface ConversationSummary {
  id: string;
  title: string;
  updated: number;
  turns: number;
}

export interface ChatView {
  model: string;
  modelName: string;
  adapter: string | null;
  personaName: string | null;
  sides: Side[];
  systemPromptTokens: number;
  fallbackTemplate: boolean;
  voice: { ready: boolean; note: string };
  conversation: Conversation;
  listing: { conversations: ConversationSummary[]; problems: string[] };
}

export interface ChatOpened {
  view: ChatView;
  adapterError: string | null;
}

export type ChatEvent = { kind: "token"; side: Side; text: string } | { kind: "reply"; reply: SideReply };

/** The fields of a training run the Chat screen needs (list_runs, src-tauri/src/cmd_train.rs). */
export interface RunInfo {
  id: string;
  status: string;
  model?: string;
  adapterDir: string | null;
  startedAt: number;
  finishedAt: number | null;
}

export const openChat = (model: string | null, adapter: string | null) => invoke<ChatOpened>("open_chat", { model, adapter });
export const newChat = () => invoke<ChatView>("new_chat");
export const loadChat = (id: string) => invoke<ChatView>("load_chat", { id });
export const stopChat = () => invoke<void>("stop_chat");
export const setChatSettings = (settings: ChatSettings) => invoke<ChatView>("set_chat_settings", { settings });

/** Sends a message; `onEvent` sees every streamed piece and every finished reply. */
export function sendChatMessage(text: string, onEvent: (e: ChatEvent) => void): Promise<Turn> {
  const channel = new Channel<ChatEvent>();
  channel.onmessage = onEvent;
  return invoke<Turn>("send_chat_message", { text, onEvent: channel });
}

/** The project's runs; an app without the Train screen's command yet gives none. */
export async function projectRuns(): Promise<RunInfo[]> {
  try {
    return await invoke<RunInfo[]>("list_runs", { projectId: null });
  } catch {
    return [];
  }
}

export const SIDE_LABELS: Record<Side, string> = {
  adapter: "Your model (adapter)",
  prompted: "Base model + persona prompt",
};

/** The label of the side that answers alone (no adapter: the prompted base model). */
export function sideLabel(side: Side, hasAdapter: boolean): string {
  if (side === "prompted" && !hasAdapter) return "Base model + persona prompt";
  return SIDE_LABELS[side];
}

/** Finished runs that wrote an adapter, newest first: the adapters to choose from. */
export function adapterChoices(runs: RunInfo[]): { id: string; dir: string; model: string | null; label: string }[] {
  return runs
    .filter((r) => r.adapterDir && (r.status === "finished" || r.status === "earlyStopped"))
    .sort((a, b) => (b.finishedAt ?? b.startedAt) - (a.finishedAt ?? a.startedAt))
    .map((r) => ({ id: r.id, dir: r.adapterDir!, model: r.model ?? null, label: `Run of ${formatWhen(r.finishedAt ?? r.startedAt)}` }));
}

/** "12 Mar, 14:05" for a time in seconds since 1970. */
export function formatWhen(secs: number): string {
  const d = new Date(secs * 1000);
  return `${d.toLocaleDateString([], { day: "numeric", month: "short" })}, ${d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
}

/** "0.42 s", "12 s", "1 min 5 s". */
export function formatSecs(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "–";
  if (s < 10) return `${s.toFixed(2)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** The tone of an adherence badge. */
export function adherenceTone(score: number): "success" | "warning" | "error" {
  if (score >= 60) return "success";
  if (score >= 35) return "warning";
  return "error";
}

/** Why a reply ended, in words (null when it simply finished). */
export function endingNote(r: SideReply): string | null {
  switch (r.ending) {
    case "stopped":
      return "Stopped";
    case "length":
      return "Reached the reply length";
    case "contextFull":
      return "The conversation filled the model's memory";
    default:
      return null;
  }
}

/** Extra prompt tokens the persona prompt cost on this turn (null unless both sides answered). */
export function tokenTax(t: Turn): number | null {
  const a = t.replies.find((r) => r.side === "adapter");
  const p = t.replies.find((r) => r.side === "prompted");
  return a && p ? p.promptTokens - a.promptTokens : null;
}

/** Adherence per turn for a side (null where it did not answer or was not scored). */
export function adherenceSeries(turns: Turn[], side: Side): (number | null)[] {
  return turns.map((t) => t.replies.find((r) => r.side === side)?.adherence?.score ?? null);
}

/** The mean of the scored turns (null when none). */
export function mean(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

/**
 * An SVG path of a 0–100 series in a `w` x `h` box: one point per turn, a gap where a turn has
 * no score. A lone first turn is a short flat stroke, any other isolated score a dot.
 */
export function sparklinePath(series: (number | null)[], w: number, h: number, pad = 2): string {
  if (series.length === 0) return "";
  const step = series.length > 1 ? (w - 2 * pad) / (series.length - 1) : 0;
  const y = (v: number) => pad + (h - 2 * pad) * (1 - Math.min(100, Math.max(0, v)) / 100);
  const r = (n: number) => Math.round(n * 10) / 10;
  if (series.length === 1 && series[0] !== null) {
    return `M${r(pad)},${r(y(series[0]))}L${r(w - pad)},${r(y(series[0]))}`;
  }
  let d = "";
  series.forEach((v, i) => {
    if (v === null) return;
    const at = `${r(pad + i * step)},${r(y(v))}`;
    const joined = i > 0 && series[i - 1] !== null;
    const alone = !joined && (i === series.length - 1 || series[i + 1] === null);
    // An isolated score is a zero-length stroke: a dot, thanks to the round line caps.
    d += joined ? `L${at}` : alone ? `M${at}L${at}` : `M${at}`;
  });
  return d;
}

/** Problems with the sampling fields, in words (empty when they are fine). */
export function settingsProblems(s: ChatSettings): string[] {
  const out: string[] = [];
  if (!Number.isFinite(s.temperature) || s.temperature < 0 || s.temperature > 5) out.push("Temperature must be between 0 and 5 (0 always picks the likeliest word).");
  if (!Number.isFinite(s.topP) || s.topP <= 0 || s.topP > 1) out.push("Top-p must be above 0 and at most 1.");
  if (!Number.isInteger(s.maxTokens) || s.maxTokens < 1 || s.maxTokens > 4096) out.push("Reply length must be a whole number of tokens from 1 to 4096.");
  if (!Number.isInteger(s.seed) || s.seed < 0) out.push("The seed must be a whole number, 0 or more.");
  return out;
}

/** Replies being written, per side, as the streamed pieces arrive. */
export type Pending = Partial<Record<Side, string>>;

export function applyToken(p: Pending, e: ChatEvent): Pending {
  if (e.kind !== "token") return p;
  return { ...p, [e.side]: (p[e.side] ?? "") + e.text };
}
