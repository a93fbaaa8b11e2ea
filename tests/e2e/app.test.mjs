// End-to-end test of the Residency app through WebDriver (tauri-driver in
// front of WebKitWebDriver). Started by run.sh, which provides:
//   E2E_APP          path of the app binary (required)
//   E2E_WEBDRIVER    WebDriver URL (default http://127.0.0.1:4444)
//   E2E_SCREENSHOTS  folder for the screenshots (default ./screenshots)
//   E2E_RESULT       file to write "passed failed" counts to (optional)
//   E2E_FIXTURE      model name expected in the list (default the SmolLM2 fixture)
//   RESIDENCY_DATA_DIR the app's (empty) data folder for this run (run.sh makes one)
import { Builder, By, Key, until } from "selenium-webdriver";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const app = process.env.E2E_APP;
const server = process.env.E2E_WEBDRIVER ?? "http://127.0.0.1:4444";
const shots = process.env.E2E_SCREENSHOTS ?? path.join(import.meta.dirname, "screenshots");
const fixture = process.env.E2E_FIXTURE ?? "SmolLM2-135M-Instruct.Q4_1";
const SCREENS = ["data", "model", "persona", "train", "chat"];
const TITLES = ["Data", "Model", "Persona", "Train", "Chat"];
const WAIT = 20_000;
const dataDir = process.env.RESIDENCY_DATA_DIR;
const demo = path.resolve(import.meta.dirname, "../../demo/coffee-roaster");
const PERSONA = "Maggie of Ember & Oak Roasters";
const EDITED = "Maggie, head roaster at Ember & Oak";
const PROJECT = "Ember & Oak Roasters";

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
    if (id === "data") {
      // The report is longer than the window: also show the findings and the preview.
      for (const [name, sel] of [["fixes", "fixes"], ["report", "quality-report"], ["preview", "preview"]]) {
        await driver.executeScript(`document.querySelector('[data-testid=${sel}]')?.scrollIntoView()`);
        await driver.sleep(150);
        await screenshot(driver, `${theme}-data-${name}`);
      }
      await driver.executeScript("document.querySelector('main').scrollTop = 0");
    }
    if (id === "train" && (await driver.findElements(byTestId("train-run"))).length) {
      // The run (chart, figures, sample replies) and the list of runs, below the presets.
      await driver.executeScript("document.querySelector('[data-testid=train-run]').scrollIntoView()");
      await driver.sleep(150);
      await screenshot(driver, `${theme}-train-run`);
      await driver.executeScript("document.querySelector('main').scrollTop = 0");
    }
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

/** textContent, which WebKitWebDriver gives even where getText() is "" (see the hardware check). */
async function textOf(driver, locator) {
  const el = await driver.findElement(locator);
  return driver.executeScript("return arguments[0].textContent.trim()", el);
}

async function startApp() {
  const driver = await new Builder()
    .usingServer(server)
    .withCapabilities({ browserName: "wry", "tauri:options": { application: app } })
    .build();
  activeDriver = driver;
  await driver.wait(until.elementLocated(byTestId("nav-model")), WAIT, "the sidebar never appeared");
  return driver;
}

/** Sends Tauri's own drag-and-drop event, as the window does when folders are dropped on it:
 * the Data screen's drop handler then calls add_data_paths, the same path as a real drop. */
async function dropPaths(driver, paths) {
  const result = await driver.executeAsyncScript(
    `const done = arguments[arguments.length - 1];
     window.__TAURI_INTERNALS__
       .invoke("plugin:event|emit", { event: "tauri://drag-drop", payload: { paths: arguments[0], position: { x: 400, y: 200 } } })
       .then(() => done("ok"), (e) => done("failed: " + e));`,
    paths,
  );
  assert(result === "ok", `the drop event could not be sent: ${result}`);
}

/** Replaces the text of an input or textarea the way a person does (select all, type). */
async function retype(el, text) {
  await el.click();
  await el.sendKeys(Key.chord(Key.CONTROL, "a"), Key.BACK_SPACE);
  await el.sendKeys(text);
}

async function findingAt(driver, file, code, line) {
  return driver.executeScript(
    `return [...document.querySelectorAll('[data-testid=finding-group]')]
       .filter((g) => g.dataset.file.endsWith(arguments[0]))
       .flatMap((g) => [...g.querySelectorAll('[data-testid=finding]')])
       .filter((f) => f.dataset.code === arguments[1] && f.dataset.line === String(arguments[2]))
       .map((f) => f.textContent.replace(/\\s+/g, " ").trim())[0] ?? null`,
    file,
    code,
    line,
  );
}

async function currentTheme(driver) {
  return driver.executeScript("return document.documentElement.dataset.theme");
}

async function main() {
  assert(app, "E2E_APP is not set: run tests/e2e/run.sh");
  mkdirSync(shots, { recursive: true });

  let driver;
  await check("the app starts under tauri-driver, on the Data screen", async () => {
    driver = await startApp();
    await driver.wait(until.elementLocated(byTestId("screen-data")), WAIT, "the Data screen is not the first one");
  });
  if (!driver) return;

  try {
    await check("the sidebar shows the five screens in order", async () => {
      const items = await driver.findElements(By.css('nav [data-testid^="nav-"]'));
      const texts = [];
      for (const el of items) texts.push((await el.findElement(By.css(".nav-title")).getText()).trim());
      assert(JSON.stringify(texts) === JSON.stringify(TITLES), `got ${JSON.stringify(texts)}`);
    });

    await check("a new install has no project yet", async () => {
      const name = await textOf(driver, byTestId("project-name"));
      assert(name === "No project yet", `project shown: ${JSON.stringify(name)}`);
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

    await check("Chat without a model says to choose one first", async () => {
      await openScreen(driver, "chat");
      const el = await driver.wait(until.elementLocated(byTestId("chat-no-model")), WAIT, "no empty state on the Chat screen");
      assert((await driver.executeScript("return arguments[0].textContent", el)).includes("Choose a model first"), "the empty state does not say what to do");
      assert((await driver.findElements(byTestId("coming-next"))).length === 0, "Chat still says coming next");
    });

    await check("the demo folder dropped on the Data screen is read and reported", async () => {
      await openScreen(driver, "data");
      await dropPaths(driver, [demo]);
      await driver.wait(until.elementLocated(byTestId("quality-report")), WAIT * 3, "no quality report after the drop");
      const records = parseInt((await textOf(driver, byTestId("data-records"))).replace(/,/g, ""), 10);
      assert(records > 100, `only ${records} examples read`);
      const paths = await textOf(driver, byTestId("data-paths"));
      assert(paths.includes("coffee-roaster"), `the folder is not listed: ${paths}`);
      const name = await textOf(driver, byTestId("project-name"));
      assert(name === "My assistant", `a first project was not made: ${JSON.stringify(name)}`);
    });

    await check("the report shows the invalid JSON on chats.jsonl line 67, with a suggested fix", async () => {
      const text = await findingAt(driver, "chats.jsonl", "invalid-json-line", 67);
      assert(text, "no invalid-json-line finding at chats.jsonl line 67");
      assert(text.startsWith("Error") && text.includes("Line 67"), `finding reads ${JSON.stringify(text)}`);
      assert(text.includes("→"), `no suggested fix: ${JSON.stringify(text)}`);
    });

    await check(`the persona found is "${PERSONA}"`, async () => {
      const name = await textOf(driver, byTestId("persona-found"));
      assert(name === PERSONA, `persona shown: ${JSON.stringify(name)}`);
    });

    await check("the preview shows parsed examples as chat bubbles", async () => {
      const n = await driver.executeScript("return document.querySelectorAll('[data-testid=preview] .bubble.assistant').length");
      assert(n >= 3, `${n} assistant bubbles`);
    });

    await check(`choosing ${fixture} for the project counts the examples with its tokenizer`, async () => {
      await openScreen(driver, "model");
      const row = await driver.wait(
        async () => {
          for (const r of await driver.findElements(byTestId("model-row"))) {
            if ((await r.findElement(byTestId("model-name")).getText()).trim() === fixture) return r;
          }
          return null;
        },
        WAIT,
        `${fixture} is not listed`,
      );
      await row.findElement(byTestId("model-use")).click();
      await driver.wait(async () => (await row.findElements(byTestId("model-chosen"))).length > 0, WAIT * 3, "the model was not chosen");
      await openScreen(driver, "data");
      await driver.wait(
        async () => (await textOf(driver, byTestId("token-counter"))).includes(`${fixture}.gguf tokenizer`),
        WAIT * 3,
        "the lengths are not counted with the model's tokenizer",
      );
    });

    await check("a one-click fix is switched on and saved with the project", async () => {
      const input = await driver.findElement(byTestId("fix-dropDuplicates"));
      assert(!(await input.isSelected()), "Drop duplicates was already on");
      await driver.executeScript("arguments[0].closest('label').click()", input);
      await driver.wait(async () => input.isSelected(), WAIT, "the switch did not turn on");
      await driver.wait(
        async () => (await driver.findElements(By.xpath("//*[contains(@class,'badge') and contains(., 'Drop duplicates: on')]"))).length > 0,
        WAIT,
        "duplicate findings are not marked as taken care of",
      );
    });

    await check("the project is renamed from the sidebar", async () => {
      await driver.findElement(byTestId("project-current")).click();
      await driver.findElement(byTestId("project-rename")).click();
      await retype(await driver.findElement(byTestId("project-name-input")), PROJECT);
      await driver.findElement(byTestId("project-name-ok")).click();
      await driver.wait(async () => (await textOf(driver, byTestId("project-name"))) === PROJECT, WAIT, "the name did not change");
    });

    await check("the Persona screen shows the card from persona.toml, edits it and saves it with the project", async () => {
      await openScreen(driver, "persona");
      const nameEl = await driver.wait(until.elementLocated(byTestId("persona-name")), WAIT);
      await driver.wait(async () => (await nameEl.getAttribute("value")) === PERSONA, WAIT, "the name field is not Maggie's");
      const source = await textOf(driver, byTestId("persona-source"));
      assert(source.includes("persona.toml"), `source badge: ${JSON.stringify(source)}`);
      const forbidden = await driver.findElement(byTestId("persona-forbidden")).getAttribute("value");
      assert(forbidden.split("\n").includes("Best regards"), `forbidden phrases: ${JSON.stringify(forbidden)}`);
      await retype(nameEl, EDITED);
      const style = await driver.findElement(byTestId("persona-style"));
      // WebDriver types "\n" as nothing here: a new line is the Enter key.
      await style.click();
      await driver.executeScript("const t = arguments[0]; t.setSelectionRange(t.value.length, t.value.length)", style);
      await style.sendKeys(Key.ENTER);
      await style.sendKeys("Mention the weekly cupping on Saturdays.");
      const typed = await style.getAttribute("value");
      assert(typed.endsWith("\nMention the weekly cupping on Saturdays."), `style rules typed: ${JSON.stringify(typed.slice(-80))}`);
      const prompt = await textOf(driver, byTestId("persona-prompt"));
      assert(prompt.startsWith(`You are ${EDITED}.`), `prompt preview: ${prompt.slice(0, 80)}`);
      await driver.findElement(byTestId("persona-save")).click();
      await driver.wait(until.elementLocated(byTestId("persona-saved")), WAIT, "no saved confirmation");
      const after = await textOf(driver, byTestId("persona-source"));
      assert(after.includes(PROJECT), `source badge after saving: ${JSON.stringify(after)}`);
      // The person's own file is never written.
      const file = readFileSync(path.join(demo, "persona.toml"), "utf8");
      assert(file.includes(`name = "${PERSONA}"`) && !file.includes("cupping"), "persona.toml was changed");
    });

    await check("the project is saved in the app's data folder", async () => {
      if (!dataDir) return; // run outside run.sh: the app used its default folder
      const files = readdirSync(path.join(dataDir, "projects")).filter((f) => f.endsWith(".json"));
      assert(files.length === 1, `project files: ${files}`);
      const p = JSON.parse(readFileSync(path.join(dataDir, "projects", files[0]), "utf8"));
      assert(p.name === PROJECT && p.persona?.name === EDITED && p.fixes?.dropDuplicates === true, JSON.stringify(p).slice(0, 300));
      assert(p.persona.style.at(-1) === "Mention the weekly cupping on Saturdays.", `style saved: ${JSON.stringify(p.persona.style)}`);
      assert(existsSync(path.join(dataDir, "state.json")), "state.json is missing");
    });

    await check("a file added to a watched folder shows up without a click, and the folder can be taken out", async () => {
      const extra = mkdtempSync(path.join(os.tmpdir(), "residency-e2e-data-"));
      const chat = (q, a) => JSON.stringify({ messages: [{ role: "user", content: q }, { role: "assistant", content: a }] }) + "\n";
      try {
        writeFileSync(path.join(extra, "first.jsonl"), chat("Do you roast on Mondays?", "Hi friend, no: Tuesdays and Fridays. Stay toasty, Maggie"));
        await openScreen(driver, "data");
        const count = async () => parseInt((await textOf(driver, byTestId("data-records"))).replace(/,/g, ""), 10);
        const before = await count();
        await dropPaths(driver, [extra]);
        await driver.wait(async () => (await count()) === before + 1, WAIT * 3, "the second folder's example was not counted");
        writeFileSync(path.join(extra, "second.jsonl"), chat("Is the cafe open on Sunday?", "Hi friend, yes, nine to one. Stay toasty, Maggie"));
        await driver.wait(async () => (await count()) === before + 2, WAIT * 3, "the new file did not show up by itself");
        const watching = await textOf(driver, byTestId("watching"));
        assert(watching.includes("second.jsonl"), `the change is not named: ${watching}`);
        const remove = await driver.findElement(By.css(`[data-testid=data-paths] li:last-child button`));
        await remove.click();
        await driver.wait(async () => (await count()) === before, WAIT * 3, "taking the folder out did not update the count");
      } finally {
        rmSync(extra, { recursive: true, force: true });
      }
    });

    // ---- Train: a short run on SmolLM2 (self-contained section) ----
    await check("the Train screen offers the three presets and says the run fits in memory", async () => {
      await openScreen(driver, "train");
      for (const id of ["personaAndStyle", "domainExpert", "textToSql"]) {
        await driver.wait(until.elementLocated(byTestId(`preset-${id}`)), WAIT, `no ${id} preset card`);
      }
      assert((await driver.findElements(byTestId("coming-next"))).length === 0, "Train still says coming next");
      await driver.findElement(byTestId("preset-personaAndStyle")).click();
      await driver.wait(async () => (await textOf(driver, byTestId("train-fit"))).includes("Fits in memory"), WAIT * 3, "no memory estimate");
    });

    await check("a 2-step run started from the advanced panel shows live steps, the chart and sample replies, and finishes", async () => {
      await driver.executeScript("document.querySelector('[data-testid=train-advanced]').open = true");
      const kind = await driver.findElement(byTestId("train-length-kind"));
      await driver.executeScript("arguments[0].value = 'steps'; arguments[0].dispatchEvent(new Event('change', { bubbles: true }))", kind);
      const set = async (id, v) => retype(await driver.wait(until.elementLocated(byTestId(id)), WAIT), String(v));
      // The persona travels as the system prompt (about 600 tokens before a reply starts).
      await set("train-steps", 2);
      await set("train-seq-len", 768);
      await set("train-rank", 4);
      await set("train-grad-accum", 1);
      await set("train-eval-every", 0); // the holdout and the samples at the end only
      await set("train-samples-count", 1);
      await driver.wait(async () => (await textOf(driver, byTestId("train-fit"))).includes("Fits in memory"), WAIT * 3, "no memory estimate for the short run");
      await driver.findElement(byTestId("train-start")).click();
      await driver.wait(until.elementLocated(byTestId("train-run")), WAIT, "the run card did not appear");
      // A step event reaches the screen: the progress line and the chart's line.
      await driver.wait(async () => /^Step [1-9]\d* of 2$/.test(await textOf(driver, byTestId("train-step"))), 10 * 60_000, "no step arrived");
      await driver.wait(until.elementLocated(byTestId("train-line")), WAIT, "the chart has no training line");
      await driver.wait(async () => (await textOf(driver, byTestId("train-status"))) === "Finished", 10 * 60_000, "the run did not finish");
      assert((await textOf(driver, byTestId("train-step"))) === "Step 2 of 2", "not both steps shown");
      await driver.wait(until.elementLocated(byTestId("train-adapter")), WAIT, "no adapter announced");
      const samples = await textOf(driver, byTestId("train-samples"));
      assert(/Sample replies at step 2/.test(samples), `sample replies: ${samples.slice(0, 200)}`);
      const rows = await driver.findElements(byTestId("train-run-row"));
      assert(rows.length === 1, `${rows.length} runs listed`);
      const points = await driver.executeScript("return document.querySelector('[data-testid=train-line]').getAttribute('d').split('L').length");
      assert(points === 2, `the chart has ${points} points`);
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
    activeDriver = null;
  }

  // A second run of the app, as after closing and reopening it.
  let again;
  await check("after a restart the app reopens the project", async () => {
    again = await startApp();
    await again.wait(async () => (await textOf(again, byTestId("project-name"))) === PROJECT, WAIT, "the project was not reopened");
  });
  if (!again) return;
  try {
    await check("after a restart the data, the fix, the model and the edited persona are all there", async () => {
      await openScreen(again, "data");
      await again.wait(until.elementLocated(byTestId("quality-report")), WAIT * 3, "no report after the restart");
      assert(await findingAt(again, "chats.jsonl", "invalid-json-line", 67), "the line 67 finding is gone");
      assert(await again.findElement(byTestId("fix-dropDuplicates")).isSelected(), "Drop duplicates is off again");
      assert((await textOf(again, byTestId("persona-found"))) === EDITED, "the Data screen does not use the edited persona");
      const counter = await textOf(again, byTestId("token-counter"));
      assert(counter.includes(fixture), `the model is forgotten: ${counter}`);
      await openScreen(again, "persona");
      const nameEl = await again.wait(until.elementLocated(byTestId("persona-name")), WAIT);
      assert((await nameEl.getAttribute("value")) === EDITED, `name after restart: ${await nameEl.getAttribute("value")}`);
      const style = await again.findElement(byTestId("persona-style")).getAttribute("value");
      assert(style.includes("weekly cupping"), "the added style rule is gone");
    });

    await check("the project list has the project, and a new one starts empty", async () => {
      await again.findElement(byTestId("project-current")).click();
      const items = await again.findElements(byTestId("project-item"));
      assert(items.length === 1, `${items.length} projects listed`);
      await again.findElement(byTestId("project-new")).click();
      await retype(await again.findElement(byTestId("project-name-input")), "Second shop");
      await again.findElement(byTestId("project-name-ok")).click();
      await again.wait(async () => (await textOf(again, byTestId("project-name"))) === "Second shop", WAIT);
      await openScreen(again, "data");
      assert((await again.findElements(byTestId("quality-report"))).length === 0, "the new project shows old data");
      // Back to the first one.
      await again.findElement(byTestId("project-current")).click();
      for (const it of await again.findElements(byTestId("project-item"))) {
        if ((await it.getText()).includes(PROJECT)) await it.click();
      }
      await again.wait(until.elementLocated(byTestId("quality-report")), WAIT * 3, "switching back did not show the data");
    });

    await check("after a restart the finished run is listed again with its chart", async () => {
      await openScreen(again, "train");
      await again.wait(until.elementLocated(byTestId("train-run-row")), WAIT * 3, "the run is not listed after the restart");
      const row = await textOf(again, byTestId("train-run-row"));
      assert(row.includes("Finished") && row.includes("Adapter ready"), `run row: ${row}`);
      await again.wait(until.elementLocated(byTestId("train-line")), WAIT, "the chart is not redrawn");
      assert((await again.findElements(byTestId("recovery-banner"))).length === 0, "a finished run is offered for recovery");
      await screenshot(again, "after-restart-train");
    });
  } finally {
    await again.quit().catch((e) => console.log(`  (closing the session failed: ${e?.message ?? e})`));
    activeDriver = null;
  }

  await chatSection();
}

// ---- Chat (crates/chat, src-tauri/src/cmd_chat.rs, ChatScreen.svelte) ----
// Self-contained: a fresh start of the app on the same data folder. It chats with the adapter of
// a finished run when the project has one (the Train section above makes one), otherwise with
// the base model and the persona prompt.
const REPLY_WAIT = 300_000;

async function chatSection() {
  let driver;
  await check("chat: the Chat screen loads the project's model", async () => {
    driver = await startApp();
    await openScreen(driver, "chat");
    await driver.wait(until.elementLocated(byTestId("chat-input")), REPLY_WAIT, "the chat never became ready (model load)");
  });
  if (!driver) return;
  try {
    let hasAdapter = false;
    await check("chat: a message streams in and the reply completes with its token counts and score", async () => {
      hasAdapter = (await driver.findElements(byTestId("chat-no-adapter"))).length === 0;
      if (!hasAdapter) {
        const note = await textOf(driver, byTestId("chat-no-adapter"));
        assert(note.includes("No trained adapter yet"), `empty state: ${note}`);
      }
      // Short replies keep the test quick on two shared cores.
      await retype(await driver.findElement(byTestId("chat-max-tokens")), "24");
      await driver.findElement(byTestId("chat-seed")).click(); // blur: the change is applied
      await driver.sleep(300);
      await driver.findElement(byTestId("chat-input")).sendKeys("Hi! Which coffee would you suggest for a French press?");
      await driver.findElement(byTestId("chat-send")).click();
      const side = hasAdapter ? "adapter" : "prompted";
      await driver.wait(until.elementLocated(byTestId("chat-stop")), WAIT, "no Stop button while the reply is written");
      // Tokens stream in: the live reply has text before it is done.
      let seen = "";
      await driver.wait(
        async () => {
          const live = await driver.findElements(byTestId(`chat-live-${side}-text`));
          if (!live.length) return (await driver.findElements(byTestId(`chat-reply-${side}-stats`))).length > 0;
          seen = await driver.executeScript("return arguments[0].textContent", live[0]);
          return seen.trim().length > 0 && !seen.includes("Reading the conversation");
        },
        REPLY_WAIT,
        "no streamed text appeared",
      );
      assert(seen.trim().length > 0, "the reply was never seen streaming");
      await driver.wait(until.elementLocated(byTestId(`chat-reply-${side}-stats`)), REPLY_WAIT, "the reply did not complete");
      const stats = await textOf(driver, byTestId(`chat-reply-${side}-stats`));
      assert(/\d+ prompt tokens/.test(stats) && /to read/.test(stats) && /Adherence \d+/.test(stats), `reply stats: ${stats}`);
      const reply = await textOf(driver, byTestId(`chat-reply-${side}-text`));
      assert(reply.length > 0, "the finished reply is empty");
      const spark = await driver.findElements(By.css(`[data-testid=chat-spark-${side}] path`));
      assert(spark.length === 1, "the adherence sparkline has no line");
    });

    if (hasAdapter) {
      await check("chat: side by side, both sides answer and the persona side reads more tokens", async () => {
        await driver.findElement(byTestId("chat-side-by-side")).click();
        await driver.sleep(300);
        await driver.findElement(byTestId("chat-input")).sendKeys("How should I store the beans?");
        await driver.findElement(byTestId("chat-send")).click();
        await driver.wait(until.elementLocated(byTestId("chat-reply-prompted-stats")), REPLY_WAIT, "the prompted side did not answer");
        const turns = await driver.findElements(byTestId("chat-turn"));
        const last = turns[turns.length - 1];
        const tokens = {};
        for (const side of ["adapter", "prompted"]) {
          const el = await last.findElement(byTestId(`chat-reply-${side}-prompt-tokens`));
          tokens[side] = Number((await driver.executeScript("return arguments[0].textContent", el)).split(" ")[0]);
        }
        assert(tokens.prompted > tokens.adapter, `prompt tokens: ${JSON.stringify(tokens)}`);
        const tax = await textOf(driver, byTestId("chat-tax"));
        assert(/more tokens than your model/.test(tax), `tax: ${tax}`);
      });
    }

    await check("chat: screenshots of the Chat screen in both themes", async () => {
      for (const theme of ["light", "dark"]) {
        await driver.findElement(byTestId(`theme-${theme}`)).click();
        await driver.sleep(200);
        await screenshot(driver, `${theme}-chat-conversation`);
      }
      await driver.findElement(byTestId("theme-system")).click();
    });
  } finally {
    await driver.quit().catch((e) => console.log(`  (closing the session failed: ${e?.message ?? e})`));
    activeDriver = null;
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
