// The Train screen's data: typed wrappers over src-tauri/src/cmd_train.rs, the run updates it
// sends (`train-update`), and the pure functions the screen and the loss chart use (kept apart
// from the components so they can be unit-tested).
import { invoke } from "@tauri-apps/api/core";

export type PresetId = "personaAndStyle" | "domainExpert" | "textToSql";

/** The advanced panel (crates/runs/src/preset.rs `Settings`, camelCase). */
export interface Settings {
  rank: number;
  alpha: number;
  lr: number;
  epochs: number;
  steps: number | null;
  seqLen: number;
  batch: number;
  gradAccum: number;
  quant: "nf4" | "q8" | "gguf" | "none";
  seed: number;
  evalEvery: number;
  samples: number;
}

export interface PresetCard {
  id: PresetId;
  label: string;
  settings: Settings;
}

export type RunStatus =
  | "preparing"
  | "running"
  | "paused"
  | "finished"
  | "earlyStopped"
  | "cancelled"
  | "failed"
  | "interrupted";

/** One optimizer step (crates/trainer/src/progress.rs, snake_case). */
export interface StepMetrics {
  step: number;
  total_steps: number;
  epoch: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens: number;
  tokens_per_s: number;
  elapsed_s: number;
  eta_s: number;
  rss_bytes: number | null;
  peak_rss_bytes: number | null;
  gpu_bytes: number | null;
}

export interface EvalRecord {
  step: number;
  holdout_loss: number;
  best: boolean;
}

export interface SampleSet {
  step: number;
  samples: { prompt: string; reply: string }[];
}

export interface RunRecord {
  id: string;
  projectId: string;
  preset: PresetId;
  settings: Settings;
  status: RunStatus;
  startedAt: number;
  finishedAt: number | null;
  model: string;
  trainExamples: number | null;
  holdoutExamples: number | null;
  totalSteps: number | null;
  last: StepMetrics | null;
  lastHoldoutLoss: number | null;
  adapterDir: string | null;
  error: string | null;
}

export interface RunDetail {
  record: RunRecord;
  steps: StepMetrics[];
  evals: EvalRecord[];
  samples: SampleSet[];
}

export interface Fit {
  needBytes: number;
  freeBytes: number | null;
  fits: boolean;
  advice: string | null;
}

/** The trainer's events (tagged by `event`, snake_case). */
export type TrainEvent =
  | { event: "started"; total_steps: number; resumed_from: number | null; examples: number; holdout_examples: number }
  | ({ event: "step" } & StepMetrics)
  | ({ event: "eval" } & EvalRecord)
  | ({ event: "samples" } & SampleSet)
  | { event: "checkpoint"; step: number; path: string }
  | { event: "finished"; status: string; adapter: string };

/** What `train-update` carries (crates/runs/src/jobs.rs `Update`). */
export type Update =
  | { runId: string; projectId: string; kind: "train"; event: TrainEvent }
  | { runId: string; projectId: string; kind: "status"; record: RunRecord };

export const TRAIN_UPDATE = "train-update";

export const trainPresets = () => invoke<PresetCard[]>("train_presets");
export const trainEstimate = (settings: Settings) => invoke<Fit>("train_estimate", { settings });
export const startRun = (preset: PresetId, settings: Settings) => invoke<RunRecord>("start_run", { preset, settings });
export const pauseRun = (id: string) => invoke<void>("pause_run", { id });
export const resumeRun = (id: string) => invoke<RunRecord>("resume_run", { id });
export const cancelRun = (id: string) => invoke<void>("cancel_run", { id });
export const discardRun = (id: string) => invoke<void>("discard_run", { id });
export const listRuns = (projectId: string | null = null) => invoke<RunRecord[]>("list_runs", { projectId });
export const runDetail = (id: string) => invoke<RunDetail>("run_detail", { id });

/** One sentence per preset card: what it is for. */
export const PRESET_BLURBS: Record<PresetId, string> = {
  personaAndStyle: "Sound like you: tone, greetings, sign-offs and what you never say.",
  domainExpert: "Answer questions about your products, prices and procedures.",
  textToSql: "Turn plain questions into SQL for your own database.",
};

export const STATUS_LABELS: Record<RunStatus, string> = {
  preparing: "Preparing",
  running: "Training",
  paused: "Paused",
  finished: "Finished",
  earlyStopped: "Finished early",
  cancelled: "Cancelled",
  failed: "Failed",
  interrupted: "Interrupted",
};

/** The badge colour of a status. */
export function statusTone(s: RunStatus): "success" | "info" | "warning" | "error" | "" {
  switch (s) {
    case "finished":
    case "earlyStopped":
      return "success";
    case "preparing":
    case "running":
      return "info";
    case "paused":
    case "interrupted":
      return "warning";
    case "failed":
      return "error";
    default:
      return "";
  }
}

export const isLive = (s: RunStatus) => s === "preparing" || s === "running";
export const isResumable = (s: RunStatus) => s === "paused" || s === "interrupted";

/** A run's history, kept current by the updates. */
export interface Live {
  detail: RunDetail;
}

/** Applies one update to a run's detail; returns a new object (never mutates). */
export function applyUpdate(d: RunDetail, u: Update): RunDetail {
  if (u.runId !== d.record.id) return d;
  if (u.kind === "status") return { ...d, record: u.record };
  const e = u.event;
  switch (e.event) {
    case "started":
      // A resumed run starts again from its checkpoint: later steps are recomputed.
      return {
        ...d,
        record: { ...d.record, totalSteps: e.total_steps },
        steps: d.steps.filter((s) => s.step <= (e.resumed_from ?? 0)),
        evals: d.evals.filter((s) => s.step <= (e.resumed_from ?? 0)),
        samples: d.samples.filter((s) => s.step <= (e.resumed_from ?? 0)),
      };
    case "step": {
      const { event: _, ...m } = e;
      return { ...d, record: { ...d.record, last: m }, steps: [...d.steps.filter((s) => s.step < m.step), m] };
    }
    case "eval": {
      const { event: _, ...ev } = e;
      return { ...d, record: { ...d.record, lastHoldoutLoss: ev.holdout_loss }, evals: [...d.evals.filter((s) => s.step !== ev.step), ev] };
    }
    case "samples": {
      const { event: _, ...set } = e;
      return { ...d, samples: [...d.samples.filter((s) => s.step !== set.step), set] };
    }
    default:
      return d;
  }
}

/** "45 s", "3 min", "1 h 20 min". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  const min = Math.round(seconds / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  const rest = min % 60;
  return rest ? `${h} h ${rest} min` : `${h} h`;
}

/** "1,234 tokens/s" or "12.5 tokens/s". */
export function formatRate(t: number | null | undefined): string {
  if (t == null || !Number.isFinite(t)) return "—";
  return `${t >= 100 ? Math.round(t).toLocaleString("en-US") : t.toFixed(1)} tokens/s`;
}

/** "2 Sept, 14:05" in the person's locale; "—" for none. */
export function formatWhen(secs: number | null | undefined): string {
  if (!secs) return "—";
  return new Date(secs * 1000).toLocaleString(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

/** "Step 12 of 40". */
export function progressText(r: RunRecord): string {
  const done = r.last?.step ?? 0;
  return r.totalSteps ? `Step ${done} of ${r.totalSteps}` : done ? `Step ${done}` : "Not started";
}

/** The share of the run done, 0 to 1. */
export function progressShare(r: RunRecord): number {
  if (!r.totalSteps) return 0;
  return Math.min(1, Math.max(0, (r.last?.step ?? 0) / r.totalSteps));
}

// ---- The loss chart ----

export interface Point {
  x: number;
  y: number;
}

export interface Scale {
  xMax: number;
  yMin: number;
  yMax: number;
  yTicks: number[];
  xTicks: number[];
}

/** "Nice" round tick values covering [lo, hi], about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 4): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi <= lo) hi = lo + 1;
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toFixed(10)));
  return ticks;
}

/** Ticks of the step axis: steps are whole numbers, so a short run gets no 0.5 or 1.5. */
export function stepTicks(xMax: number): number[] {
  return niceTicks(0, xMax, Math.min(5, Math.max(1, Math.floor(xMax)))).filter((t) => t <= xMax && Number.isInteger(t));
}

/** The axes' ranges for the train and holdout series; the x axis runs to the run's total steps. */
export function chartScale(train: Point[], holdout: Point[], totalSteps: number | null): Scale {
  const all = [...train, ...holdout].filter((p) => Number.isFinite(p.y));
  const xMax = Math.max(1, totalSteps ?? 0, ...all.map((p) => p.x));
  if (all.length === 0) return { xMax, yMin: 0, yMax: 1, yTicks: [0, 0.5, 1], xTicks: niceTicks(0, xMax, 5) };
  let lo = Math.min(...all.map((p) => p.y));
  let hi = Math.max(...all.map((p) => p.y));
  const pad = Math.max((hi - lo) * 0.1, 0.05);
  lo = Math.max(0, lo - pad);
  hi = hi + pad;
  const yTicks = niceTicks(lo, hi, 4);
  return {
    xMax,
    yMin: Math.min(lo, yTicks[0] ?? lo),
    yMax: Math.max(hi, yTicks[yTicks.length - 1] ?? hi),
    yTicks,
    xTicks: stepTicks(xMax),
  };
}

/** An SVG path through the points, in a `w` x `h` plot area. */
export function linePath(points: Point[], s: Scale, w: number, h: number): string {
  return points
    .filter((p) => Number.isFinite(p.y))
    .map((p, i) => {
      const x = (p.x / s.xMax) * w;
      const y = h - ((p.y - s.yMin) / (s.yMax - s.yMin || 1)) * h;
      return `${i === 0 ? "M" : "L"}${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
}

/** Settings a person typed, checked before they reach the app (the app checks them again). */
export function settingsProblem(s: Settings): string | null {
  const whole = (v: number, min: number) => Number.isInteger(v) && v >= min;
  if (!whole(s.rank, 1) || s.rank > 1024) return "The rank must be a whole number from 1 to 1024.";
  if (!(s.alpha > 0)) return "Alpha must be more than 0.";
  if (!(s.lr > 0 && s.lr < 1)) return "The learning rate must be between 0 and 1.";
  if (s.steps != null && !whole(s.steps, 1)) return "Steps must be a whole number, at least 1.";
  if (s.steps == null && !(s.epochs > 0)) return "Epochs must be more than 0.";
  if (!whole(s.seqLen, 16)) return "The sequence length must be at least 16 tokens.";
  if (!whole(s.batch, 1) || !whole(s.gradAccum, 1)) return "Batch and accumulation must be at least 1.";
  if (!whole(s.evalEvery, 0)) return "Evaluate every N steps: a whole number (0 for only at the end).";
  if (!whole(s.samples, 0) || s.samples > 5) return "Sample replies: 0 to 5.";
  return null;
}
