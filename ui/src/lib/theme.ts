// Light/dark theme: follows the operating system unless the person picks one.
// The choice is kept in localStorage; the resolved theme is written to
// <html data-theme="..."> where the CSS variables in app.css pick it up.
import { derived, writable, type Readable, type Writable } from "svelte/store";

export type ThemeChoice = "system" | "light" | "dark";
export type Theme = "light" | "dark";

export const THEME_KEY = "residency.theme";
const CHOICES: readonly ThemeChoice[] = ["system", "light", "dark"];

export function isThemeChoice(v: unknown): v is ThemeChoice {
  return typeof v === "string" && (CHOICES as readonly string[]).includes(v);
}

export function resolveTheme(choice: ThemeChoice, systemPrefersDark: boolean): Theme {
  if (choice === "system") return systemPrefersDark ? "dark" : "light";
  return choice;
}

export interface ThemeStores {
  /** What the person chose. */
  choice: Writable<ThemeChoice>;
  /** What the OS asks for (prefers-color-scheme). */
  systemDark: Readable<boolean>;
  /** The theme actually shown. */
  theme: Readable<Theme>;
}

/**
 * Builds the theme stores over a storage and a media query, both injectable
 * so the logic can be tested without a browser. Unknown stored values fall
 * back to "system"; a storage that throws (private mode) is ignored.
 */
export function createTheme(
  storage: Pick<Storage, "getItem" | "setItem"> | null,
  media: Pick<MediaQueryList, "matches" | "addEventListener"> | null,
): ThemeStores {
  let initial: ThemeChoice = "system";
  try {
    const stored = storage?.getItem(THEME_KEY);
    if (isThemeChoice(stored)) initial = stored;
  } catch {
    // storage unavailable: keep the default
  }

  const choice = writable<ThemeChoice>(initial);
  choice.subscribe((value) => {
    try {
      storage?.setItem(THEME_KEY, value);
    } catch {
      // storage unavailable: the choice lasts for this session only
    }
  });

  const systemDark = writable<boolean>(media?.matches ?? false);
  media?.addEventListener("change", (e) => systemDark.set((e as MediaQueryListEvent).matches));

  const theme = derived([choice, systemDark], ([c, d]) => resolveTheme(c, d));
  return { choice, systemDark, theme };
}

/** Writes the resolved theme onto <html>; returns the unsubscribe function. */
export function applyTheme(theme: Readable<Theme>, root: HTMLElement): () => void {
  return theme.subscribe((t) => {
    root.dataset.theme = t;
    root.style.colorScheme = t;
  });
}
