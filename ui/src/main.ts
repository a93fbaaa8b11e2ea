import { mount } from "svelte";
import "./app.css";
import App from "./App.svelte";
import { applyTheme, createTheme } from "./lib/theme";

const storage = (() => {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
})();
const themeStores = createTheme(storage, window.matchMedia?.("(prefers-color-scheme: dark)") ?? null);
applyTheme(themeStores.theme, document.documentElement);

const app = mount(App, {
  target: document.getElementById("app")!,
  props: { themeStores },
});

export default app;
