import { describe, expect, it } from "vitest";
import type { DataView, PersonaCard, Project } from "./api";
import { cardToForm, emptyCard, formToCard, sameCard, startingCard, systemPrompt, validate } from "./persona";

const maggie: PersonaCard = {
  ...emptyCard(),
  name: "Maggie of Ember & Oak Roasters",
  description: "Owns a roastery.",
  voice: "Warm and brief.",
  greeting: "Hi friend,",
  signoff: "Stay toasty,\nMaggie",
  style: ["Keep it short."],
  dos: ["Call the customer friend."],
  donts: ["Use corporate phrases."],
  forbidden: ["Best regards", "valued customer"],
  markers: ["Stay toasty"],
};

function project(persona: PersonaCard | null): Project {
  return {
    id: "p1",
    name: "Roastery",
    created: 1,
    updated: 2,
    paths: ["/demo"],
    fixes: { dropDuplicates: false, redact: false, dropTooLong: false, fixText: false },
    persona,
    model: null,
  };
}

function view(card: PersonaCard | null, error: string | null = null): DataView {
  return {
    projectId: "p1",
    paths: [],
    report: {} as DataView["report"],
    personaFound: { file: "coffee-roaster/persona.toml", card, error },
    personaFromProject: false,
    preview: [],
    tokenizerProblem: null,
    tookMs: 1,
  };
}

describe("the persona form", () => {
  it("round-trips a card, lists one item per line, the sign-off keeping its line break", () => {
    const form = cardToForm(maggie);
    expect(form.forbidden).toBe("Best regards\nvalued customer");
    expect(formToCard(form)).toEqual(maggie);
  });

  it("trims fields and drops blank lines", () => {
    const form = cardToForm(maggie);
    form.dos = "  Be kind \n\n   \nBe brief\r\n";
    form.name = "  Maggie  ";
    const c = formToCard(form);
    expect(c.dos).toEqual(["Be kind", "Be brief"]);
    expect(c.name).toBe("Maggie");
    expect(sameCard(c, maggie)).toBe(false);
    expect(sameCard({ ...maggie, dos: [" Call the customer friend. "] }, maggie)).toBe(true);
  });

  it("asks for a name and real email addresses", () => {
    const form = cardToForm(emptyCard());
    expect(validate(form)[0]).toContain("name");
    form.name = "Maggie";
    form.addresses = "maggie@emberoak.example\nnot an address";
    expect(validate(form)).toEqual(['"not an address" does not look like an email address.']);
  });
});

describe("startingCard", () => {
  it("prefers the card saved with the project, then the data's persona file", () => {
    const edited = { ...maggie, name: "Maggie (edited)" };
    expect(startingCard(project(edited), view(maggie))).toMatchObject({ source: "project", card: edited });
    expect(startingCard(project(null), view(maggie))).toMatchObject({ source: "file", card: maggie, file: "coffee-roaster/persona.toml" });
    expect(startingCard(project(null), view(null, "bad TOML")).source).toBe("none");
    expect(startingCard(null, null)).toMatchObject({ source: "none", file: null });
  });
});

describe("systemPrompt", () => {
  it("writes the instructions the way the dataset crate does", () => {
    const p = systemPrompt(maggie);
    expect(p.startsWith("You are Maggie of Ember & Oak Roasters.\n\nOwns a roastery.\n\nVoice: Warm and brief.")).toBe(true);
    expect(p).toContain("Style:\n- Keep it short.\n- Greeting: Hi friend,\n- Sign-off: Stay toasty, / Maggie");
    expect(p).toContain("Don't:\n- Use corporate phrases.");
    expect(p.endsWith('Never write: "Best regards", "valued customer"')).toBe(true);
  });
});
