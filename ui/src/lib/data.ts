// What the Data screen shows, computed from the dataset report (pure functions, tested in
// data.test.ts). Wording is for the business owner, not for a programmer.
import type { BuildFixes, DataStats, FileReport, Finding, Report, Severity, TrainingRecord } from "./api";

export const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };
export const SEVERITY_LABEL: Record<Severity, string> = { error: "Error", warning: "Warning", info: "Note" };

export type FixKey = keyof BuildFixes;

export interface FixOption {
  key: FixKey;
  title: string;
  /** What it does, with the numbers from this report. */
  detail: string;
  /** How many records it concerns (0: nothing to fix). */
  count: number;
}

/** The finding codes each one-click fix takes care of when the training set is built. */
export const FIX_FOR_CODE: Record<string, FixKey> = {
  "exact-duplicate": "dropDuplicates",
  "near-duplicate": "dropDuplicates",
  "personal-data": "redact",
  "personal-data-summary": "redact",
  "too-long": "dropTooLong",
  mojibake: "fixText",
};

export const FIX_TITLES: Record<FixKey, string> = {
  dropDuplicates: "Drop duplicates",
  redact: "Redact personal data",
  dropTooLong: "Drop too-long examples",
  fixText: "Repair garbled text",
};

const plural = (n: number, one: string, many = one + "s") => `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;

export function fixOptions(stats: DataStats, seqLen: number): FixOption[] {
  const dups = stats.exact_duplicates + stats.near_duplicates;
  return [
    {
      key: "dropDuplicates",
      title: FIX_TITLES.dropDuplicates,
      count: dups,
      detail: dups
        ? `Keep only the first of ${plural(stats.exact_duplicates, "exact copy", "exact copies")} and ${plural(stats.near_duplicates, "near-identical example")}.`
        : "No duplicates found.",
    },
    {
      key: "redact",
      title: FIX_TITLES.redact,
      count: stats.with_personal_data,
      detail: stats.with_personal_data
        ? `Replace email addresses, phone, card and bank numbers in ${plural(stats.with_personal_data, "example")} with placeholders.`
        : "No personal data found.",
    },
    {
      key: "dropTooLong",
      title: FIX_TITLES.dropTooLong,
      count: stats.too_long,
      detail: stats.too_long
        ? `Leave out ${plural(stats.too_long, "example")} longer than ${seqLen.toLocaleString("en-US")} tokens instead of cutting them.`
        : `Every example fits in ${seqLen.toLocaleString("en-US")} tokens.`,
    },
    {
      key: "fixText",
      title: FIX_TITLES.fixText,
      count: stats.with_mojibake,
      detail: stats.with_mojibake
        ? `Repair garbled characters (like "cafÃ©") in ${plural(stats.with_mojibake, "example")}.`
        : "No garbled text found.",
    },
  ];
}

/** The suggested fix in the app's words: the command-line flags become the buttons above. */
export function suggestion(f: Finding): string | null {
  if (!f.suggested_fix) return null;
  return f.suggested_fix
    .replace(/build with --drop-duplicates/g, `turn on "${FIX_TITLES.dropDuplicates}"`)
    .replace(/build with --redact/g, `turn on "${FIX_TITLES.redact}"`)
    .replace(/build with --drop-too-long/g, `turn on "${FIX_TITLES.dropTooLong}"`)
    .replace(/build with --fix-text/g, `turn on "${FIX_TITLES.fixText}"`)
    .replace(/pass the one you want with --persona/g, "edit the persona on the Persona screen");
}

export interface FindingGroup {
  /** The file, or "" for findings about the whole dataset. */
  file: string;
  title: string;
  /** What the file was read as and how many records it gave ("json-lines · 120 records"). */
  subtitle: string;
  counts: Record<Severity, number>;
  findings: Finding[];
}

/** Findings grouped by file: files with the most serious findings first, the whole-dataset
 * findings last; inside a group, errors first, then by line. */
export function groupFindings(report: Report): FindingGroup[] {
  const files = new Map<string, FileReport>(report.files.map((f) => [f.path, f]));
  const groups = new Map<string, FindingGroup>();
  for (const f of report.findings) {
    const key = f.file ?? "";
    let g = groups.get(key);
    if (!g) {
      const fr = files.get(key);
      g = {
        file: key,
        title: key || "Whole dataset",
        subtitle: fr ? fileSubtitle(fr) : key ? "" : "About all the files together",
        counts: { error: 0, warning: 0, info: 0 },
        findings: [],
      };
      groups.set(key, g);
    }
    g.counts[f.severity]++;
    g.findings.push(f);
  }
  for (const g of groups.values()) {
    g.findings.sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || (a.line ?? 0) - (b.line ?? 0));
  }
  const rank = (g: FindingGroup) => [g.file === "" ? 1 : 0, -g.counts.error, -g.counts.warning, -g.counts.info];
  return [...groups.values()].sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i] - rb[i];
    return a.title.localeCompare(b.title);
  });
}

export function fileSubtitle(f: FileReport): string {
  if (f.skipped) return `Not read: ${f.skipped}`;
  return `${formatName(f.format)} · ${plural(f.records, "example")}`;
}

const FORMAT_NAMES: Record<string, string> = {
  "json-lines": "JSON Lines",
  json: "JSON",
  csv: "CSV",
  tsv: "TSV",
  mbox: "Mailbox",
  email: "Email",
  document: "Document",
  html: "Web page",
  "chat-yaml": "Chat YAML",
  persona: "Persona card",
  "sql-schema": "Database schema",
  sqlite: "SQLite database",
  skipped: "Skipped",
};

export function formatName(format: string): string {
  return FORMAT_NAMES[format] ?? format;
}

/** Shows at most `perCode` findings of one kind in a group; returns what is shown and how many
 * are hidden. */
export function visibleFindings(findings: Finding[], perCode: number): { shown: Finding[]; hidden: number } {
  const seen = new Map<string, number>();
  const shown: Finding[] = [];
  let hidden = 0;
  for (const f of findings) {
    const n = seen.get(f.code) ?? 0;
    if (n < perCode) {
      shown.push(f);
      seen.set(f.code, n + 1);
    } else hidden++;
  }
  return { shown, hidden };
}

export function severityTotals(report: Report): Record<Severity, number> {
  const t = { error: 0, warning: 0, info: 0 };
  for (const f of report.findings) t[f.severity]++;
  return t;
}

const KIND_LABELS: Record<string, string> = {
  chat: "Conversations",
  style: "Writing samples",
  sql: "Questions with SQL",
  replay: "General conversation",
};

export function kindRows(stats: DataStats): { kind: string; label: string; count: number; share: number }[] {
  const total = Object.values(stats.by_kind).reduce((a, b) => a + b, 0);
  return Object.entries(stats.by_kind)
    .sort((a, b) => b[1] - a[1])
    .map(([kind, count]) => ({ kind, label: KIND_LABELS[kind] ?? kind, count, share: total ? count / total : 0 }));
}

/** The token-length numbers, each with a label, and whether they are an estimate. */
export function tokenFacts(report: Report): { label: string; value: string }[] {
  const t = report.stats.tokens;
  const n = (x: number) => Math.round(x).toLocaleString("en-US");
  if (report.stats.records === 0) return [];
  return [
    { label: "Shortest", value: n(t.min) },
    { label: "Median", value: n(t.p50) },
    { label: "95% are under", value: n(t.p95) },
    { label: "Longest", value: n(t.max) },
    { label: "All together", value: n(t.total) },
  ];
}

export interface FileRow {
  path: string;
  read: boolean;
  format: string;
  detail: string;
}

/** The files read, then the files skipped, each with its reason. */
export function fileRows(report: Report): FileRow[] {
  const rows = report.files.map((f) => ({
    path: f.path,
    read: !f.skipped,
    format: formatName(f.format),
    detail: f.skipped ? f.skipped : plural(f.records, "example"),
  }));
  return [...rows.filter((r) => r.read), ...rows.filter((r) => !r.read)];
}

/** A record as chat bubbles: the system turn (persona or schema) apart, long turns cut. */
export function bubbles(r: TrainingRecord, maxChars = 300): { system: string | null; turns: { role: "user" | "assistant"; text: string }[] } {
  const cut = (s: string) => (s.length > maxChars ? s.slice(0, maxChars).trimEnd() + "…" : s);
  const sys = r.messages.find((m) => m.role === "system");
  return {
    system: sys ? cut(sys.content) : null,
    turns: r.messages.filter((m) => m.role !== "system").map((m) => ({ role: m.role as "user" | "assistant", text: cut(m.content) })),
  };
}

export function where(f: { file?: string; line?: number }): string {
  if (!f.file) return "";
  return f.line ? `${f.file}, line ${f.line}` : f.file;
}

/** Paths from a drop event: only real, absolute paths, once each. */
export function droppedPaths(paths: readonly string[] | null | undefined): string[] {
  const out: string[] = [];
  for (const p of paths ?? []) {
    if (typeof p !== "string") continue;
    const t = p.trim();
    if (!t || !(t.startsWith("/") || /^[A-Za-z]:[\\/]/.test(t) || t.startsWith("\\\\"))) continue;
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

/** Paths inside the added folders, written from the folder's name on: with the folder
 * /home/a/demo/coffee-roaster added, "/home/a/demo/coffee-roaster/chats.jsonl line 3" reads
 * "coffee-roaster/chats.jsonl line 3". Works on whole messages that mention paths. */
export function shortenPaths(text: string, roots: readonly string[]): string {
  let out = text;
  for (const root of [...roots].sort((a, b) => b.length - a.length)) {
    const r = root.replace(/[\\/]+$/, "");
    if (!r) continue;
    const name = baseName(r);
    if (out === r) return name;
    for (const sep of ["/", "\\"]) out = out.split(r + sep).join(name + sep);
  }
  return out;
}

/** The last part of a path ("coffee-roaster"), for titles. */
export function baseName(path: string): string {
  const parts = path.replace(/[\\/]+$/, "").split(/[\\/]/);
  return parts[parts.length - 1] || path;
}
