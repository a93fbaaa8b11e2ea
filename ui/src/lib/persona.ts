// The Persona form: a card edited as text fields (lists one item per line), where it comes from,
// and whether it has unsaved changes. Tested in persona.test.ts.
import type { DataView, PersonaCard, Project } from "./api";

/** The form's fields: every list is a textarea with one item per line. */
export interface PersonaForm {
  name: string;
  description: string;
  voice: string;
  greeting: string;
  signoff: string;
  style: string;
  dos: string;
  donts: string;
  forbidden: string;
  markers: string;
  addresses: string;
}

export const LIST_FIELDS = ["style", "dos", "donts", "forbidden", "markers", "addresses"] as const;

export function emptyCard(): PersonaCard {
  return {
    name: "",
    description: "",
    voice: "",
    style: [],
    dos: [],
    donts: [],
    forbidden: [],
    greeting: "",
    signoff: "",
    markers: [],
    addresses: [],
  };
}

export function cardToForm(c: PersonaCard): PersonaForm {
  return {
    name: c.name,
    description: c.description,
    voice: c.voice,
    greeting: c.greeting,
    signoff: c.signoff,
    style: c.style.join("\n"),
    dos: c.dos.join("\n"),
    donts: c.donts.join("\n"),
    forbidden: c.forbidden.join("\n"),
    markers: c.markers.join("\n"),
    addresses: c.addresses.join("\n"),
  };
}

const lines = (s: string) =>
  s
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "");

export function formToCard(f: PersonaForm): PersonaCard {
  return {
    name: f.name.trim(),
    description: f.description.trim(),
    voice: f.voice.trim(),
    greeting: f.greeting.trim(),
    signoff: f.signoff.replace(/\r\n/g, "\n").trim(),
    style: lines(f.style),
    dos: lines(f.dos),
    donts: lines(f.donts),
    forbidden: lines(f.forbidden),
    markers: lines(f.markers),
    addresses: lines(f.addresses),
  };
}

export function sameCard(a: PersonaCard, b: PersonaCard): boolean {
  return JSON.stringify(formToCard(cardToForm(a))) === JSON.stringify(formToCard(cardToForm(b)));
}

/** Problems that stop saving, in words for the owner (empty: fine to save). */
export function validate(f: PersonaForm): string[] {
  const problems: string[] = [];
  if (!f.name.trim()) problems.push("Give the persona a name: it is how the assistant introduces itself.");
  if (f.name.trim().length > 120) problems.push("Keep the name under 120 characters.");
  for (const a of lines(f.addresses)) {
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(a)) problems.push(`"${a}" does not look like an email address.`);
  }
  return problems;
}

export type PersonaSource = "project" | "file" | "none";

/** Which card the form starts from: the one saved with the project, else the persona file found
 * in the data, else an empty card. */
export function startingCard(project: Project | null, view: DataView | null): { card: PersonaCard; source: PersonaSource; file: string | null } {
  if (project?.persona) return { card: project.persona, source: "project", file: view?.personaFound?.file ?? null };
  const found = view?.personaFound;
  if (found?.card) return { card: found.card, source: "file", file: found.file };
  return { card: emptyCard(), source: "none", file: found?.file ?? null };
}

/** The system prompt the base model would get, as the dataset crate writes it
 * (crates/dataset/src/persona.rs, `system_prompt`), for a preview beside the form. */
export function systemPrompt(c: PersonaCard): string {
  let s = `You are ${c.name.trim() || "…"}.`;
  if (c.description.trim()) s += `\n\n${c.description.trim()}`;
  if (c.voice.trim()) s += `\n\nVoice: ${c.voice.trim()}`;
  const rules = [...c.style];
  if (c.greeting.trim()) rules.push(`Greeting: ${c.greeting.trim()}`);
  if (c.signoff.trim()) rules.push(`Sign-off: ${c.signoff.trim().replace(/\n/g, " / ")}`);
  for (const [title, items] of [
    ["Style", rules],
    ["Do", c.dos],
    ["Don't", c.donts],
  ] as const) {
    if (items.length) s += `\n\n${title}:` + items.map((i) => `\n- ${i}`).join("");
  }
  if (c.forbidden.length) s += "\n\nNever write: " + c.forbidden.map((f) => `"${f}"`).join(", ");
  return s;
}
