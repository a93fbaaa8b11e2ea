// Turns the catalog's model entries and hardware report into what the Model
// screen shows. Kept apart from the component so it can be unit-tested.
import { Channel, invoke } from "@tauri-apps/api/core";
import { SOURCE_LABELS, type Hardware, type LocationReport, type ModelEntry } from "./api";
import { formatBytes, formatContext, formatParams, formatWeightType, shortenPath } from "./format";

export interface ModelRow {
  key: string;
  name: string;
  /** The model's own name and family, e.g. "SmolLM2 135M Instruct · llama". */
  detail: string;
  /** Short facts shown as chips: "135M parameters", "Q4_1", "8,192 tokens". */
  facts: string[];
  size: string;
  source: string;
  path: string;
  problem: string | null;
}

export function modelRow(m: ModelEntry, home: string | null): ModelRow {
  const g = m.gguf;
  const detailParts: string[] = [];
  if (g?.generalName && g.generalName !== m.name) detailParts.push(g.generalName);
  if (g?.architecture) detailParts.push(g.architecture);
  const facts: string[] = [];
  if (g) {
    const params = formatParams(g.parameterCount);
    if (params) facts.push(`${params} parameters`);
    const wt = formatWeightType(g.mainWeightType);
    if (wt) facts.push(wt);
    const ctx = formatContext(g.contextLength);
    if (ctx) facts.push(ctx);
  }
  return {
    key: m.path,
    name: m.name,
    detail: detailParts.join(" · "),
    facts,
    size: formatBytes(m.sizeBytes),
    source: SOURCE_LABELS[m.source] ?? m.source,
    path: shortenPath(m.path, home),
    problem: m.problem,
  };
}

/** Usable models first, then by name. */
export function sortModels(models: ModelEntry[]): ModelEntry[] {
  return [...models].sort(
    (a, b) => Number(a.problem != null) - Number(b.problem != null) || a.name.localeCompare(b.name),
  );
}

export interface LocationRow {
  source: string;
  path: string;
  status: string;
  found: boolean;
  problems: string[];
}

export function locationRow(l: LocationReport, home: string | null): LocationRow {
  const status = !l.exists
    ? "Not on this computer"
    : l.modelCount === 0
      ? "No models"
      : l.modelCount === 1
        ? "1 model"
        : `${l.modelCount} models`;
  return {
    source: SOURCE_LABELS[l.source] ?? l.source,
    path: shortenPath(l.path, home),
    status,
    found: l.exists && l.modelCount > 0,
    problems: l.problems,
  };
}

/** "Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.0GHz" -> "Intel Xeon Platinum 8480+". */
export function cleanCpuName(name: string): string {
  const cleaned = name
    .replace(/\((R|TM|tm|r)\)/g, "")
    .replace(/\s+@\s+[\d.]+\s*[GM]Hz/i, "")
    .replace(/\s+(CPU|Processor)\b/gi, "")
    .replace(/\s+\d+-Core$/i, "")
    .replace(/\s+/g, " ")
    .trim();
  return cleaned || name.trim() || "Unknown processor";
}

export interface HardwareFacts {
  processor: string;
  processorDetail: string;
  cores: string;
  coresDetail: string;
  memory: string;
  memoryDetail: string;
  graphics: string;
  graphicsDetail: string;
  /** Instruction sets that speed up model maths, e.g. ["AVX2", "AVX-512"]. */
  speedups: string[];
}

export function hardwareFacts(h: Hardware): HardwareFacts {
  const threads = h.logicalCores;
  const cores =
    h.physicalCores && h.physicalCores !== threads
      ? `${h.physicalCores} cores`
      : `${threads} ${threads === 1 ? "core" : "cores"}`;
  const coresDetail =
    h.physicalCores && h.physicalCores !== threads ? `${threads} threads` : "One thread per core";
  const gpu = h.gpus[0];
  const gpuName = gpu ? [gpu.vendor, gpu.model].filter(Boolean).join(" ") || "Graphics card" : null;
  return {
    processor: cleanCpuName(h.cpuModel),
    processorDetail: h.cpuArch,
    cores,
    coresDetail,
    memory: formatBytes(h.totalMemoryBytes),
    memoryDetail: `${formatBytes(h.availableMemoryBytes)} free now`,
    graphics: gpuName ?? "None found",
    graphicsDetail: gpu
      ? [gpu.memoryBytes ? `${formatBytes(gpu.memoryBytes)} memory` : null, h.gpus.length > 1 ? `+${h.gpus.length - 1} more` : null]
          .filter(Boolean)
          .join(" · ") || "Memory not reported"
      : "Residency will train on the processor",
    speedups: h.cpuFeatures,
  };
}

// ---- Fit and time per model, and the Hugging Face download (issue 5) ----
// Commands in src-tauri/src/commands.rs (list_models' fit fields,
// download_model, cancel_download); numbers from crates/catalog/src/fit.rs and
// download.rs (camelCase).

export type FitVerdict = "fits" | "tight" | "doesNotFit";

export interface FitEstimate {
  verdict: FitVerdict;
  needBytes: number;
  availableBytes: number;
  totalBytes: number;
  tokensPerSecond: number;
  runTokens: number;
  seconds: number;
  summary: string;
}

/** A model found on disk, with the default preset's fit (or why there is none). */
export interface ModelCard extends ModelEntry {
  fit?: FitEstimate | null;
  fitProblem?: string | null;
}

export interface FitBadge {
  label: string;
  tone: "success" | "warning" | "danger";
  /** One line under the badge: memory and time, marked as an estimate. */
  line: string;
}

/** "under a minute", "45 minutes", "3 hours", "2 days": the way a person says it. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "an unknown time";
  const minutes = Math.round(seconds / 60);
  if (minutes < 1) return "under a minute";
  if (minutes < 90) return `${minutes} ${minutes === 1 ? "minute" : "minutes"}`;
  if (seconds < 48 * 3600) return `${Math.round(seconds / 3600)} hours`;
  return `${Math.round(seconds / 86400)} days`;
}

export function fitBadge(fit: FitEstimate, preset: string): FitBadge {
  const need = formatBytes(fit.needBytes);
  const time = `about ${formatDuration(fit.seconds)} to train with ${preset} (estimate)`;
  switch (fit.verdict) {
    case "fits":
      return { label: "Fits", tone: "success", line: `Needs ${need} of ${formatBytes(fit.availableBytes)} free · ${time}` };
    case "tight":
      return {
        label: "Tight",
        tone: "warning",
        line: `Needs ${need}, ${formatBytes(fit.availableBytes)} free: close other programs first · ${time}`,
      };
    default:
      return {
        label: "Does not fit",
        tone: "danger",
        line: `Needs ${need}; this computer has ${formatBytes(fit.totalBytes)}. Pick a smaller model.`,
      };
  }
}

/** Small instruction-tuned GGUF models that train quickly on an ordinary computer. */
export const SUGGESTED_MODELS: { repo: string; file: string; label: string; note: string }[] = [
  {
    repo: "bartowski/SmolLM2-135M-Instruct-GGUF",
    file: "SmolLM2-135M-Instruct-Q4_K_M.gguf",
    label: "SmolLM2 135M Instruct",
    note: "About 100 MiB · the quickest to train",
  },
  {
    repo: "bartowski/SmolLM2-360M-Instruct-GGUF",
    file: "SmolLM2-360M-Instruct-Q4_K_M.gguf",
    label: "SmolLM2 360M Instruct",
    note: "About 270 MiB · better replies, slower",
  },
  {
    repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
    file: "qwen2.5-0.5b-instruct-q4_k_m.gguf",
    label: "Qwen2.5 0.5B Instruct",
    note: "About 400 MiB · many languages",
  },
];

export interface RepoChoice {
  repo: string;
  /** Empty: let Residency pick the repository's 4-bit GGUF file. */
  file: string;
}

/**
 * What the person typed or pasted: "owner/name", or a huggingface.co link to
 * the repository or to one file ("…/owner/name/blob/main/file.gguf").
 * Null when it is neither.
 */
export function parseRepoInput(text: string, file = ""): RepoChoice | null {
  let t = text.trim();
  const url = t.match(/^(?:https?:\/\/)?(?:www\.)?(?:huggingface\.co|hf\.co)\/(.*)$/i);
  if (url) t = url[1];
  const parts = t.split(/[?#]/)[0].split("/").filter(Boolean);
  if (parts.length < 2) return null;
  const part = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
  const [owner, name] = parts;
  if (!part.test(owner) || !part.test(name) || name.includes("..")) return null;
  let f = file.trim();
  if (parts.length > 4 && (parts[2] === "blob" || parts[2] === "resolve")) f = parts.slice(4).join("/");
  else if (parts.length > 2 && parts[2] !== "tree") return null;
  return { repo: `${owner}/${name}`, file: f };
}

export interface DownloadProgress {
  done: number;
  total: number;
  resumedFrom: number;
}

export interface Downloaded {
  repo: string;
  file: string;
  path: string;
  sizeBytes: number;
  resumedFrom: number;
  alreadyThere: boolean;
}

/** "12.5 MiB of 98 MiB" and a whole percentage for the bar. */
export function progressText(p: DownloadProgress): { text: string; percent: number } {
  const percent = p.total > 0 ? Math.min(100, Math.floor((p.done / p.total) * 100)) : 0;
  const resumed = p.resumedFrom > 0 ? ` · continued from ${formatBytes(p.resumedFrom)}` : "";
  return { text: `${formatBytes(p.done)} of ${formatBytes(p.total)} (${percent}%)${resumed}`, percent };
}

/** The download stopped part-way and kept what arrived: offer "Resume". */
export function canResume(error: string): boolean {
  return /start it again to continue/i.test(error);
}

/** The hub could not be reached: the screen shows the offline help. */
export function isOffline(error: string): boolean {
  return error.startsWith("You are offline");
}

export function downloadModel(
  choice: RepoChoice,
  onProgress: (p: DownloadProgress) => void,
): Promise<Downloaded> {
  const channel = new Channel<DownloadProgress>();
  channel.onmessage = onProgress;
  return invoke<Downloaded>("download_model", {
    repo: choice.repo,
    file: choice.file || null,
    onProgress: channel,
  });
}

export function cancelDownload(): Promise<boolean> {
  return invoke<boolean>("cancel_download");
}
