// The app-wide state the screens share: the current project, the project list and the last
// data inspection, kept current by the app's events (folder changes arrive as `data-updated`).
import { listen } from "@tauri-apps/api/event";
import * as api from "./api";
import type { Added, BuildFixes, DataView, Overview, PersonaCard, Project } from "./api";

export const session = $state({
  ready: false,
  overview: null as Overview | null,
  view: null as DataView | null,
  /** "Reading 2 folders…" while an inspection runs. */
  busy: null as string | null,
  /** The last error, in the app's words. */
  error: null as string | null,
  /** Paths the last drop or pick could not use, each with the reason. */
  refused: [] as string[],
  /** The last folder changes seen ("changed chats.jsonl"), newest first. */
  changes: [] as string[],
  changedAt: null as Date | null,
});

export function currentProject(): Project | null {
  return session.overview?.current ?? null;
}

function fail(e: unknown) {
  session.error = api.errorMessage(e);
}

function setProject(p: Project) {
  if (session.overview) session.overview.current = p;
}

let started = false;

/** Loads the current project and starts listening to the app's events (once). */
export async function start(): Promise<void> {
  if (started || !api.inTauri()) return;
  started = true;
  await listen<DataView>(api.EVENTS.dataUpdated, (e) => {
    if (e.payload.projectId === currentProject()?.id) session.view = e.payload;
  });
  await listen<{ projectId: string; changes: string[] }>(api.EVENTS.dataChanged, (e) => {
    if (e.payload.projectId !== currentProject()?.id) return;
    session.changes = [...e.payload.changes, ...session.changes].slice(0, 8);
    session.changedAt = new Date();
  });
  await listen<{ projectId: string; message: string }>(api.EVENTS.watchError, (e) => {
    if (e.payload.projectId === currentProject()?.id) session.error = e.payload.message;
  });
  try {
    session.overview = await api.appOverview();
    await loadView();
  } catch (e) {
    fail(e);
  } finally {
    session.ready = true;
  }
}

async function loadView() {
  const p = currentProject();
  session.view = null;
  session.changes = [];
  if (!p || p.paths.length === 0) return;
  session.busy = `Reading ${p.paths.length === 1 ? "your folder" : `${p.paths.length} folders and files`}…`;
  try {
    session.view = await api.dataView();
  } finally {
    session.busy = null;
  }
}

async function switched(o: Overview) {
  session.overview = o;
  session.error = null;
  session.refused = [];
  await loadView();
}

export async function createProject(name: string): Promise<boolean> {
  try {
    await switched(await api.createProject(name));
    return true;
  } catch (e) {
    fail(e);
    return false;
  }
}

export async function openProject(id: string): Promise<void> {
  try {
    await switched(await api.openProject(id));
  } catch (e) {
    fail(e);
  }
}

export async function renameProject(id: string, name: string): Promise<boolean> {
  try {
    session.overview = await api.renameProject(id, name);
    return true;
  } catch (e) {
    fail(e);
    return false;
  }
}

/** What the drop zone and the Add buttons do. */
export async function addPaths(paths: string[]): Promise<Added | null> {
  if (paths.length === 0) return null;
  session.error = null;
  session.refused = [];
  session.busy = `Reading ${paths.length === 1 ? "what you added" : `${paths.length} folders and files`}…`;
  try {
    const added = await api.addDataPaths(paths);
    session.refused = added.refused;
    session.view = added.view;
    // A first project may have been made: reload the list too.
    session.overview = await api.appOverview();
    return added;
  } catch (e) {
    fail(e);
    return null;
  } finally {
    session.busy = null;
  }
}

export async function removePath(path: string): Promise<void> {
  session.busy = "Updating…";
  try {
    const v = await api.removeDataPath(path);
    session.overview = await api.appOverview();
    session.view = currentProject()?.paths.length ? v : null;
  } catch (e) {
    fail(e);
  } finally {
    session.busy = null;
  }
}

export async function refresh(): Promise<void> {
  session.busy = "Reading your files again…";
  session.error = null;
  try {
    session.view = await api.refreshData();
  } catch (e) {
    fail(e);
  } finally {
    session.busy = null;
  }
}

export async function setFix(key: keyof BuildFixes, on: boolean): Promise<void> {
  const p = currentProject();
  if (!p) return;
  try {
    setProject(await api.setBuildFixes({ ...p.fixes, [key]: on }));
  } catch (e) {
    fail(e);
  }
}

export async function savePersona(card: PersonaCard): Promise<Project> {
  const p = await api.savePersona(card);
  setProject(p);
  return p;
}

export async function resetPersona(): Promise<Project> {
  const p = await api.resetPersona();
  setProject(p);
  return p;
}

/** Makes `path` the project's model (its tokenizer then measures the examples). */
export async function setModel(path: string | null): Promise<boolean> {
  if (!currentProject()) {
    session.error = "Add a folder of examples on the Data screen first: the model is chosen for a project.";
    return false;
  }
  try {
    setProject(await api.setProjectModel(path));
    return true;
  } catch (e) {
    fail(e);
    return false;
  }
}
