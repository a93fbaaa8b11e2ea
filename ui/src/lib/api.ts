// Typed wrappers over the Rust commands in src-tauri (see src-tauri/src/commands.rs).
// Field names mirror the serde (camelCase) output of the `catalog` crate.
import { invoke } from "@tauri-apps/api/core";

export interface Gpu {
  vendor: string | null;
  model: string | null;
  memoryBytes: number | null;
}

export interface Hardware {
  cpuModel: string;
  cpuArch: string;
  logicalCores: number;
  physicalCores: number | null;
  cpuFeatures: string[];
  totalMemoryBytes: number;
  availableMemoryBytes: number;
  os: string | null;
  gpus: Gpu[];
}

export type Source = "residency" | "ollama" | "lmStudio" | "huggingFace";

export interface GgufSummary {
  architecture: string | null;
  generalName: string | null;
  parameterCount: number;
  mainWeightType: string | null;
  contextLength: number | null;
  tensorCount: number;
}

export interface ModelEntry {
  name: string;
  path: string;
  sizeBytes: number;
  source: Source;
  gguf: GgufSummary | null;
  problem: string | null;
}

export interface LocationReport {
  source: Source;
  path: string;
  exists: boolean;
  modelCount: number;
  problems: string[];
}

export interface ModelList {
  home: string | null;
  models: ModelEntry[];
  locations: LocationReport[];
}

export const SOURCE_LABELS: Record<Source, string> = {
  residency: "Residency",
  ollama: "Ollama",
  lmStudio: "LM Studio",
  huggingFace: "Hugging Face",
};

/** True inside the Tauri window; false in a plain browser (vite dev). */
export function inTauri(): boolean {
  return typeof window !== "undefined" && "__TAURI_INTERNALS__" in window;
}

export function hardwareInfo(): Promise<Hardware> {
  return invoke<Hardware>("hardware_info");
}

export function listModels(): Promise<ModelList> {
  return invoke<ModelList>("list_models");
}

/** Errors from commands arrive as strings; anything else is stringified. */
export function errorMessage(e: unknown): string {
  if (typeof e === "string") return e;
  if (e instanceof Error) return e.message;
  return String(e);
}
