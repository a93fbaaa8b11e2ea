// Turns the catalog's model entries and hardware report into what the Model
// screen shows. Kept apart from the component so it can be unit-tested.
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
