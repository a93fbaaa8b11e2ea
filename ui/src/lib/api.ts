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

// ---- Projects, data and persona (src-tauri/src/session.rs, data.rs, store.rs) ----

/** The persona card as saved with a project (camelCase from store.rs). */
export interface PersonaCard {
  name: string;
  description: string;
  voice: string;
  style: string[];
  dos: string[];
  donts: string[];
  forbidden: string[];
  greeting: string;
  signoff: string;
  markers: string[];
  addresses: string[];
}

export interface BuildFixes {
  dropDuplicates: boolean;
  redact: boolean;
  dropTooLong: boolean;
  fixText: boolean;
}

export interface Project {
  id: string;
  name: string;
  created: number;
  updated: number;
  paths: string[];
  fixes: BuildFixes;
  persona: PersonaCard | null;
  model: string | null;
}

export interface ProjectSummary {
  id: string;
  name: string;
  updated: number;
  paths: number;
}

export interface Overview {
  current: Project | null;
  listing: { projects: ProjectSummary[]; problems: string[] };
  notice: string | null;
}

// The dataset crate's report serialises with snake_case fields (crates/dataset/src/report.rs).
export type Severity = "info" | "warning" | "error";

export interface Finding {
  file?: string;
  line?: number;
  record?: number;
  code: string;
  severity: Severity;
  message: string;
  suggested_fix?: string;
}

export interface FileReport {
  path: string;
  format: string;
  bytes: number;
  records: number;
  skipped?: string;
}

export interface TokenStats {
  min: number;
  mean: number;
  p50: number;
  p95: number;
  max: number;
  total: number;
}

export interface DataStats {
  records: number;
  by_kind: Record<string, number>;
  tokens: TokenStats;
  exact_duplicates: number;
  near_duplicates: number;
  too_long: number;
  empty_replies: number;
  short_replies: number;
  invalid_json_replies: number;
  with_personal_data: number;
  with_mojibake: number;
  with_forbidden_output: number;
  languages: Record<string, number>;
  user_turns: number;
  assistant_turns: number;
}

export interface Report {
  tokenizer: string;
  tokens_estimated: boolean;
  seq_len: number;
  persona?: string;
  files: FileReport[];
  findings: Finding[];
  stats: DataStats;
}

export type Role = "system" | "user" | "assistant";

export interface TrainingRecord {
  messages: { role: Role; content: string }[];
  source: { file: string; line?: number };
  group: string;
  kind: "chat" | "style" | "sql" | "replay";
}

export interface DataView {
  projectId: string;
  paths: { path: string; exists: boolean; isDir: boolean }[];
  report: Report;
  personaFound: { file: string; card: PersonaCard | null; error: string | null } | null;
  personaFromProject: boolean;
  preview: TrainingRecord[];
  /** Why the project's model could not count the tokens (the estimate was used instead). */
  tokenizerProblem: string | null;
  tookMs: number;
}

export interface Added {
  project: Project;
  view: DataView;
  refused: string[];
}

/** Events the app sends (src-tauri/src/session.rs, `events`). */
export const EVENTS = {
  dataChanged: "data-changed",
  dataUpdated: "data-updated",
  watchError: "data-watch-error",
} as const;

export const appOverview = () => invoke<Overview>("app_overview");
export const createProject = (name: string) => invoke<Overview>("create_project", { name });
export const renameProject = (id: string, name: string) => invoke<Overview>("rename_project", { id, name });
export const openProject = (id: string) => invoke<Overview>("open_project", { id });
/** The command the drop zone and the Add buttons call. */
export const addDataPaths = (paths: string[]) => invoke<Added>("add_data_paths", { paths });
export const removeDataPath = (path: string) => invoke<DataView>("remove_data_path", { path });
export const dataView = () => invoke<DataView | null>("data_view");
export const refreshData = () => invoke<DataView>("refresh_data");
export const setBuildFixes = (fixes: BuildFixes) => invoke<Project>("set_build_fixes", { fixes });
export const savePersona = (card: PersonaCard) => invoke<Project>("save_persona", { card });
export const resetPersona = () => invoke<Project>("reset_persona");
export const setProjectModel = (path: string | null) => invoke<Project>("set_project_model", { path });
