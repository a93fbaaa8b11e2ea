// The shared state against a mocked app (Tauri's IPC mocks): the commands called, and the events
// that keep the Data screen current.
import { emit } from "@tauri-apps/api/event";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DataView, Overview, Project } from "./api";
import { emptyCard } from "./persona";
import { addPaths, savePersona, session, setFix, setModel, start } from "./session.svelte";

const project: Project = {
  id: "p1",
  name: "My assistant",
  created: 1,
  updated: 1,
  paths: [],
  fixes: { dropDuplicates: false, redact: false, dropTooLong: false, fixText: false },
  persona: null,
  model: null,
};

function view(records: number): DataView {
  return {
    projectId: "p1",
    paths: [{ path: "/demo", exists: true, isDir: true }],
    report: { stats: { records } } as DataView["report"],
    personaFound: null,
    personaFromProject: false,
    preview: [],
    tokenizerProblem: null,
    tookMs: 5,
  };
}

const calls: { cmd: string; args: unknown }[] = [];
let current: Project = { ...project };

beforeAll(async () => {
  mockIPC(
    (cmd, args) => {
      calls.push({ cmd, args });
      const overview = (): Overview => ({ current, listing: { projects: [], problems: [] }, notice: null });
      switch (cmd) {
        case "app_overview":
          return overview();
        case "data_view":
          return null;
        case "add_data_paths": {
          const paths = (args as { paths: string[] }).paths;
          if (paths.includes("/missing")) throw "/missing does not exist (was it moved or deleted?).";
          current = { ...current, paths: [...current.paths, ...paths] };
          return { project: current, view: view(3), refused: ["relative is not a full path"] };
        }
        case "set_build_fixes":
          current = { ...current, fixes: (args as { fixes: Project["fixes"] }).fixes };
          return current;
        case "set_project_model":
          current = { ...current, model: (args as { path: string | null }).path };
          return current;
        case "save_persona":
          current = { ...current, persona: (args as { card: Project["persona"] }).card };
          return current;
      }
    },
    { shouldMockEvents: true },
  );
  // inTauri() looks for the IPC bridge the mocks install.
  expect("__TAURI_INTERNALS__" in window).toBe(true);
  await start();
});

afterAll(() => clearMocks());

describe("session", () => {
  it("starts with the current project", () => {
    expect(session.ready).toBe(true);
    expect(session.overview?.current?.id).toBe("p1");
    expect(session.view).toBeNull();
  });

  it("adds dropped paths through add_data_paths and shows the result and the refused paths", async () => {
    const added = await addPaths(["/demo"]);
    expect(added?.view.report.stats.records).toBe(3);
    expect(calls.find((c) => c.cmd === "add_data_paths")?.args).toEqual({ paths: ["/demo"] });
    expect(session.view?.report.stats.records).toBe(3);
    expect(session.refused).toEqual(["relative is not a full path"]);
    expect(session.overview?.current?.paths).toEqual(["/demo"]);
    expect(session.busy).toBeNull();
  });

  it("shows the app's message when nothing could be added", async () => {
    expect(await addPaths(["/missing"])).toBeNull();
    expect(session.error).toContain("does not exist");
  });

  it("takes fresh inspections and folder changes from events, for the current project only", async () => {
    await emit("data-changed", { projectId: "p1", changes: ["added /demo/more.jsonl"] });
    expect(session.changes[0]).toBe("added /demo/more.jsonl");
    await emit("data-updated", view(4));
    expect(session.view?.report.stats.records).toBe(4);
    await emit("data-updated", { ...view(99), projectId: "other" });
    expect(session.view?.report.stats.records).toBe(4);
    await emit("data-watch-error", { projectId: "p1", message: "cannot watch /demo" });
    expect(session.error).toBe("cannot watch /demo");
  });

  it("saves fixes and the persona into the current project", async () => {
    await setFix("redact", true);
    expect(session.overview?.current?.fixes.redact).toBe(true);
    expect(calls.find((c) => c.cmd === "set_build_fixes")?.args).toEqual({
      fixes: { dropDuplicates: false, redact: true, dropTooLong: false, fixText: false },
    });
    const p = await savePersona({ ...emptyCard(), name: "Maggie" });
    expect(p.persona?.name).toBe("Maggie");
    expect(session.overview?.current?.persona?.name).toBe("Maggie");
  });

  it("chooses the project's model", async () => {
    expect(await setModel("/models/smol.gguf")).toBe(true);
    expect(session.overview?.current?.model).toBe("/models/smol.gguf");
    expect(calls.find((c) => c.cmd === "set_project_model")?.args).toEqual({ path: "/models/smol.gguf" });
  });
});
