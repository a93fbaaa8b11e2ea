import { describe, expect, it } from "vitest";
import type { DataStats, Finding, Report, TrainingRecord } from "./api";
import {
  baseName,
  bubbles,
  droppedPaths,
  fileRows,
  fixOptions,
  shortenPaths,
  groupFindings,
  kindRows,
  severityTotals,
  suggestion,
  tokenFacts,
  visibleFindings,
} from "./data";

function stats(over: Partial<DataStats> = {}): DataStats {
  return {
    records: 10,
    by_kind: { chat: 8, style: 2 },
    tokens: { min: 12, mean: 80.5, p50: 70, p95: 190, max: 2300, total: 805 },
    exact_duplicates: 0,
    near_duplicates: 0,
    too_long: 0,
    empty_replies: 0,
    short_replies: 0,
    invalid_json_replies: 0,
    with_personal_data: 0,
    with_mojibake: 0,
    with_forbidden_output: 0,
    languages: { en: 10 },
    user_turns: 8,
    assistant_turns: 10,
    ...over,
  };
}

const f = (file: string | undefined, severity: Finding["severity"], code: string, line?: number, fix?: string): Finding => ({
  file,
  line,
  code,
  severity,
  message: `${code} here`,
  suggested_fix: fix,
});

function report(findings: Finding[], over: Partial<Report> = {}): Report {
  return {
    tokenizer: "estimate",
    tokens_estimated: true,
    seq_len: 2048,
    persona: "Maggie (from persona.toml)",
    files: [
      { path: "chats.jsonl", format: "json-lines", bytes: 100, records: 7 },
      { path: "notes/a.md", format: "document", bytes: 50, records: 2 },
      { path: "logo.png", format: "skipped", bytes: 9, records: 0, skipped: "it is an image" },
      { path: "mail.mbox", format: "mbox", bytes: 9, records: 1 },
    ],
    findings,
    stats: stats(),
    ...over,
  };
}

describe("groupFindings", () => {
  it("groups by file, most serious file first, whole-dataset findings last, errors before notes by line", () => {
    const r = report([
      f("notes/a.md", "info", "blank-lines", 3),
      f(undefined, "warning", "mixed-languages"),
      f("chats.jsonl", "warning", "short-reply", 90),
      f("chats.jsonl", "error", "invalid-json-line", 67),
      f("chats.jsonl", "warning", "short-reply", 12),
      f("mail.mbox", "warning", "mbox-preamble", 1),
    ]);
    const g = groupFindings(r);
    expect(g.map((x) => x.title)).toEqual(["chats.jsonl", "mail.mbox", "notes/a.md", "Whole dataset"]);
    expect(g[0].findings.map((x) => x.line)).toEqual([67, 12, 90]);
    expect(g[0].counts).toEqual({ error: 1, warning: 2, info: 0 });
    expect(g[0].subtitle).toBe("JSON Lines · 7 examples");
    expect(g[3].file).toBe("");
  });

  it("names files the report does not list, and says why skipped files were not read", () => {
    const g = groupFindings(report([f("gone.csv", "error", "not-found"), f("logo.png", "info", "skipped")]));
    expect(g.find((x) => x.file === "gone.csv")!.subtitle).toBe("");
    expect(g.find((x) => x.file === "logo.png")!.subtitle).toBe("Not read: it is an image");
  });
});

describe("visibleFindings", () => {
  it("shows a few of each kind and counts the rest", () => {
    const list = [1, 2, 3, 4, 5, 6].map((i) => f("x", "info", "near-duplicate", i)).concat([f("x", "error", "invalid-json-line", 9)]);
    const { shown, hidden } = visibleFindings(list, 4);
    expect(shown.length).toBe(5);
    expect(hidden).toBe(2);
    expect(shown.some((s) => s.code === "invalid-json-line")).toBe(true);
  });
});

describe("fixOptions and suggestion", () => {
  it("counts what each fix concerns", () => {
    const opts = fixOptions(stats({ exact_duplicates: 2, near_duplicates: 1, with_personal_data: 4, too_long: 1 }), 2048);
    const by = Object.fromEntries(opts.map((o) => [o.key, o]));
    expect(by.dropDuplicates.count).toBe(3);
    expect(by.dropDuplicates.detail).toContain("2 exact copies");
    expect(by.dropDuplicates.detail).toContain("1 near-identical example");
    expect(by.redact.count).toBe(4);
    expect(by.dropTooLong.detail).toContain("2,048 tokens");
    expect(by.fixText.count).toBe(0);
    expect(by.fixText.detail).toBe("No garbled text found.");
  });

  it("turns command-line flags into the app's buttons", () => {
    expect(suggestion(f("x", "warning", "exact-duplicate", 1, "build with --drop-duplicates to keep only the first copy"))).toBe(
      'turn on "Drop duplicates" to keep only the first copy',
    );
    expect(suggestion(f("x", "warning", "personal-data", 1, "build with --redact to replace them"))).toContain('"Redact personal data"');
    expect(suggestion(f("x", "error", "invalid-json-line", 1, "add the missing comma"))).toBe("add the missing comma");
    expect(suggestion(f("x", "error", "invalid-json-line", 1))).toBeNull();
  });
});

describe("summary numbers", () => {
  it("lists kinds by size with their share", () => {
    const k = kindRows(stats());
    expect(k.map((x) => x.label)).toEqual(["Conversations", "Writing samples"]);
    expect(k[0].share).toBeCloseTo(0.8);
  });

  it("formats token lengths, and has none for an empty dataset", () => {
    const t = tokenFacts(report([]));
    expect(t.find((x) => x.label === "Longest")!.value).toBe("2,300");
    expect(t.find((x) => x.label === "Median")!.value).toBe("70");
    expect(tokenFacts(report([], { stats: stats({ records: 0 }) }))).toEqual([]);
  });

  it("counts findings by severity and lists read files before skipped ones", () => {
    expect(severityTotals(report([f("a", "error", "x"), f("a", "info", "y"), f("b", "info", "z")]))).toEqual({ error: 1, warning: 0, info: 2 });
    const rows = fileRows(report([]));
    expect(rows.map((r) => r.read)).toEqual([true, true, true, false]);
    expect(rows[3].detail).toBe("it is an image");
    expect(rows[0].detail).toBe("7 examples");
    expect(rows[2].format).toBe("Mailbox");
  });
});

describe("bubbles", () => {
  const rec: TrainingRecord = {
    messages: [
      { role: "system", content: "You are Maggie." },
      { role: "user", content: "Do you ship?" },
      { role: "assistant", content: "x".repeat(500) },
    ],
    source: { file: "chats.jsonl", line: 3 },
    group: "g",
    kind: "chat",
  };
  it("keeps the system turn apart and cuts long turns", () => {
    const b = bubbles(rec, 100);
    expect(b.system).toBe("You are Maggie.");
    expect(b.turns.map((t) => t.role)).toEqual(["user", "assistant"]);
    expect(b.turns[1].text.length).toBe(101);
    expect(b.turns[1].text.endsWith("…")).toBe(true);
  });
});

describe("droppedPaths", () => {
  it("keeps absolute paths once, on Linux, macOS and Windows", () => {
    expect(droppedPaths(["/home/a/demo", "/home/a/demo", " C:\\Users\\a\\demo ", "relative/x", "", "\\\\server\\share"])).toEqual([
      "/home/a/demo",
      "C:\\Users\\a\\demo",
      "\\\\server\\share",
    ]);
    expect(droppedPaths(null)).toEqual([]);
  });

  it("takes the last part of a path as its name", () => {
    expect(baseName("/work/demo/coffee-roaster/")).toBe("coffee-roaster");
    expect(baseName("C:\\data\\shop")).toBe("shop");
  });
});

describe("shortenPaths", () => {
  it("writes paths inside the added folders from the folder's name on, in whole messages", () => {
    const roots = ["/home/a/demo/coffee-roaster", "/home/a/demo/coffee-roaster/notes", "C:\\shop\\data\\"];
    expect(shortenPaths("same text as /home/a/demo/coffee-roaster/chats.jsonl line 19", roots)).toBe("same text as coffee-roaster/chats.jsonl line 19");
    // The longest root wins.
    expect(shortenPaths("/home/a/demo/coffee-roaster/notes/faq.md", roots)).toBe("notes/faq.md");
    expect(shortenPaths("C:\\shop\\data\\mail.mbox", roots)).toBe("data\\mail.mbox");
    expect(shortenPaths("/home/a/demo/coffee-roaster", roots)).toBe("coffee-roaster");
    expect(shortenPaths("/elsewhere/x.csv", roots)).toBe("/elsewhere/x.csv");
    // A folder whose name starts like a root is not cut.
    expect(shortenPaths("/home/a/demo/coffee-roaster-old/x", roots)).toBe("/home/a/demo/coffee-roaster-old/x");
  });
});
