// End-to-end test of the Residency app through WebDriver (tauri-driver in
// front of WebKitWebDriver). Started by run.sh, which provides:
//   E2E_APP          path of the app binary (required)
//   E2E_WEBDRIVER    WebDriver URL (default http://127.0.0.1:4444)
//   E2E_SCREENSHOTS  folder for the screenshots (default ./screenshots)
//   E2E_RESULT       file to write "passed failed" counts to (optional)
//   E2E_FIXTURE      model name expected in the list (default the SmolLM2 fixture)
import { Builder, By, until } from "selenium-webdriver";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

const app = process.env.E2E_APP;
const server = process.env.E2E_WEBDRIVER ?? "http://127.0.0.1:4444";
const shots = process.env.E2E_SCREENSHOTS ?? path.join(import.meta.dirname, "screenshots");
const fixture = process.env.E2E_FIXTURE ?? "SmolLM2-135M-Instruct.Q4_1";
const SCREENS = ["data", "model", "persona", "train", "chat"];
const TITLES = ["Data", "Model", "Persona", "Train", "Chat"];
const WAIT = 20_000;

let passed = 0;
let failed = 0;

async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`  ok    ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`  FAIL  ${name}: ${e?.message ?? e}`);
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const byTestId = (id) => By.css(`[data-testid="${id}"]`);

async function openScreen(driver, id) {
  await driver.findElement(byTestId(`nav-${id}`)).click();
  await driver.wait(until.elementLocated(byTestId(`screen-${id}`)), WAIT, `screen ${id} did not open`);
}

async function screenshot(driver, name) {
  const png = await driver.takeScreenshot();
  const file = path.join(shots, `${name}.png`);
  writeFileSync(file, Buffer.from(png, "base64"));
  return file;
}

async function screenshotAll(driver, theme) {
  for (const id of SCREENS) {
    await openScreen(driver, id);
    if (id === "model") {
      await driver.wait(until.elementLocated(byTestId("model-count")), WAIT, "model list did not load");
    }
    await driver.sleep(150); // let the hover/transition settle
    await screenshot(driver, `${theme}-${id}`);
    if (id === "model") {
      // The list is longer than the window: also show its end, folders opened.
      await driver.executeScript(
        "document.querySelector('details.where').open = true;" +
          "const m = document.querySelector('main'); m.scrollTop = m.scrollHeight;",
      );
      await driver.sleep(150);
      await screenshot(driver, `${theme}-model-end`);
      await driver.executeScript("document.querySelector('main').scrollTop = 0");
    }
  }
}

async function currentTheme(driver) {
  return driver.executeScript("return document.documentElement.dataset.theme");
}

async function main() {
  assert(app, "E2E_APP is not set: run tests/e2e/run.sh");
  mkdirSync(shots, { recursive: true });

  let driver;
  await check("the app starts under tauri-driver", async () => {
    driver = await new Builder()
      .usingServer(server)
      .withCapabilities({ browserName: "wry", "tauri:options": { application: app } })
      .build();
    await driver.wait(until.elementLocated(byTestId("nav-model")), WAIT, "the sidebar never appeared");
  });
  if (!driver) return;
  activeDriver = driver;

  try {
    await check("the sidebar shows the five screens in order", async () => {
      const items = await driver.findElements(By.css('nav [data-testid^="nav-"]'));
      const texts = [];
      for (const el of items) texts.push((await el.findElement(By.css(".nav-title")).getText()).trim());
      assert(JSON.stringify(texts) === JSON.stringify(TITLES), `got ${JSON.stringify(texts)}`);
    });

    await check("the Model screen opens", async () => {
      await openScreen(driver, "model");
      const h1 = await driver.findElement(By.css("main h1")).getText();
      assert(h1 === "Model", `heading is ${JSON.stringify(h1)}`);
    });

    await check("the hardware card shows a core count above zero", async () => {
      const el = await driver.wait(until.elementLocated(byTestId("hw-cores")), WAIT, "no core count shown");
      // textContent, not getText(): WebKitWebDriver's visibility rules return
      // "" for these grid cells although they are on screen (see screenshots).
      const text = await driver.executeScript("return arguments[0].textContent.trim()", el);
      const n = parseInt(text, 10);
      assert(n > 0, `core count text is ${JSON.stringify(text)}`);
      const mem = await driver.executeScript(
        "return document.querySelector('[data-testid=hw-memory]').textContent.trim()",
      );
      assert(/\d.*(MiB|GiB|TiB)/.test(mem), `memory text is ${JSON.stringify(mem)}`);
    });

    await check(`the model list includes ${fixture}`, async () => {
      await driver.wait(
        async () => {
          const names = await driver.findElements(byTestId("model-name"));
          for (const n of names) if ((await n.getText()).trim() === fixture) return true;
          return false;
        },
        WAIT,
        `${fixture} is not listed (run: python3 scripts/fixtures.py smollm2)`,
      );
      const rows = await driver.findElements(byTestId("model-row"));
      for (const row of rows) {
        if ((await row.findElement(byTestId("model-name")).getText()).trim() !== fixture) continue;
        const text = await row.getText();
        assert(text.includes("llama"), `row does not name the architecture: ${text}`);
        assert(text.includes("93.8 MiB"), `row does not show the size 93.8 MiB: ${text}`);
      }
    });

    await check("the other screens say honestly that they are coming next", async () => {
      for (const id of ["data", "persona", "train", "chat"]) {
        await openScreen(driver, id);
        const el = await driver.findElement(byTestId("coming-next"));
        assert((await el.getText()).includes("Coming next"), `${id} has no "Coming next" notice`);
      }
    });

    await check("light theme: a screenshot of every screen", async () => {
      await driver.findElement(byTestId("theme-light")).click();
      assert((await currentTheme(driver)) === "light", "theme did not switch to light");
      await screenshotAll(driver, "light");
    });

    await check("switching to the dark theme changes the colours", async () => {
      const bg = () => driver.executeScript("return getComputedStyle(document.body).backgroundColor");
      const before = await bg();
      await driver.findElement(byTestId("theme-dark")).click();
      assert((await currentTheme(driver)) === "dark", "theme did not switch to dark");
      const after = await bg();
      assert(before !== after, `background stayed ${after}`);
      const checked = await driver.findElement(byTestId("theme-dark")).getAttribute("aria-checked");
      assert(checked === "true", "the Dark button is not marked as chosen");
    });

    await check("dark theme: a screenshot of every screen", async () => {
      await screenshotAll(driver, "dark");
    });

    await check("the theme choice survives a reload", async () => {
      await driver.navigate().refresh();
      await driver.wait(until.elementLocated(byTestId("nav-model")), WAIT);
      assert((await currentTheme(driver)) === "dark", "theme reset after reload");
      await driver.findElement(byTestId("theme-system")).click();
    });
  } finally {
    // Always delete the session: one left open makes the next run fail.
    await driver.quit().catch((e) => console.log(`  (closing the session failed: ${e?.message ?? e})`));
  }
}

// Interrupted (run.sh cleanup, Ctrl-C): delete the session before leaving.
let activeDriver = null;
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, async () => {
    if (activeDriver) await activeDriver.quit().catch(() => {});
    process.exit(130);
  });
}

try {
  await main();
} catch (e) {
  failed++;
  console.log(`  FAIL  unexpected error: ${e?.stack ?? e}`);
}
console.log(`screenshots in ${shots}`);
// run.sh prints the final count line itself, after its cleanup.
if (process.env.E2E_RESULT) writeFileSync(process.env.E2E_RESULT, `${passed} ${failed}\n`);
else console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
