import { describe, expect, it } from "vitest";
import { get } from "svelte/store";
import { applyTheme, createTheme, resolveTheme, THEME_KEY } from "./theme";

function memoryStorage(initial: Record<string, string> = {}) {
  const data = new Map(Object.entries(initial));
  return {
    data,
    getItem: (k: string) => data.get(k) ?? null,
    setItem: (k: string, v: string) => void data.set(k, v),
  };
}

function fakeMedia(matches: boolean) {
  const listeners: ((e: { matches: boolean }) => void)[] = [];
  return {
    matches,
    addEventListener: (_: string, fn: (e: { matches: boolean }) => void) => void listeners.push(fn),
    fire(m: boolean) {
      this.matches = m;
      listeners.forEach((fn) => fn({ matches: m }));
    },
  };
}

describe("resolveTheme", () => {
  it("follows the system only when asked to", () => {
    expect(resolveTheme("system", true)).toBe("dark");
    expect(resolveTheme("system", false)).toBe("light");
    expect(resolveTheme("light", true)).toBe("light");
    expect(resolveTheme("dark", false)).toBe("dark");
  });
});

describe("createTheme", () => {
  it("defaults to the system setting and tracks its changes", () => {
    const media = fakeMedia(false);
    const t = createTheme(memoryStorage(), media as unknown as MediaQueryList);
    expect(get(t.choice)).toBe("system");
    expect(get(t.theme)).toBe("light");
    media.fire(true);
    expect(get(t.theme)).toBe("dark");
  });

  it("an explicit choice wins over the system and is saved", () => {
    const storage = memoryStorage();
    const media = fakeMedia(true);
    const t = createTheme(storage, media as unknown as MediaQueryList);
    t.choice.set("light");
    expect(get(t.theme)).toBe("light");
    expect(storage.data.get(THEME_KEY)).toBe("light");
    media.fire(false);
    expect(get(t.theme)).toBe("light");
  });

  it("restores a saved choice and ignores junk", () => {
    expect(get(createTheme(memoryStorage({ [THEME_KEY]: "dark" }), fakeMedia(false) as unknown as MediaQueryList).theme)).toBe("dark");
    const junk = createTheme(memoryStorage({ [THEME_KEY]: "purple" }), fakeMedia(false) as unknown as MediaQueryList);
    expect(get(junk.choice)).toBe("system");
  });

  it("works when storage throws and without matchMedia", () => {
    const throwing = {
      getItem: () => {
        throw new Error("denied");
      },
      setItem: () => {
        throw new Error("denied");
      },
    };
    const t = createTheme(throwing, null);
    t.choice.set("dark");
    expect(get(t.theme)).toBe("dark");
  });
});

describe("applyTheme", () => {
  it("writes the theme onto the root element", () => {
    const t = createTheme(memoryStorage(), fakeMedia(false) as unknown as MediaQueryList);
    const root = document.createElement("html");
    const stop = applyTheme(t.theme, root);
    expect(root.dataset.theme).toBe("light");
    t.choice.set("dark");
    expect(root.dataset.theme).toBe("dark");
    expect(root.style.colorScheme).toBe("dark");
    stop();
    t.choice.set("light");
    expect(root.dataset.theme).toBe("dark");
  });
});
