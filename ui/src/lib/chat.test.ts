import { describe, expect, it } from "vitest";
import {
  adapterChoices,
  adherenceSeries,
  adherenceTone,
  applyToken,
  endingNote,
  formatSecs,
  mean,
  settingsProblems,
  sideLabel,
  sparklinePath,
  tokenTax,
  type ChatSettings,
  type SideReply,
  type Turn,
} from "./chat";

function reply(side: SideReply["side"], promptTokens: number, score: number | null, ending: SideReply["ending"] = "finished"): SideReply {
  return {
    side,
    text: "Hi friend,",
    ending,
    promptTokens,
    prefilledTokens: promptTokens,
    prefillSecs: 0.5,
    generatedTokens: 10,
    decodeSecs: 1,
    tokensPerSec: 10,
    adherence: score === null ? null : { score, rulesPassed: 1, rulesChecked: 2 },
    droppedExchanges: 0,
    adapter: null,
  };
}

const turn = (replies: SideReply[]): Turn => ({ user: "hi", at: 0, replies, error: null });
const settings: ChatSettings = { temperature: 0.7, topP: 0.95, maxTokens: 256, seed: 42, sideBySide: false };

describe("chat helpers", () => {
  it("streamed pieces add up per side", () => {
    let p = applyToken({}, { kind: "token", side: "adapter", text: "Hi " });
    p = applyToken(p, { kind: "token", side: "prompted", text: "Hello" });
    p = applyToken(p, { kind: "token", side: "adapter", text: "friend" });
    expect(p).toEqual({ adapter: "Hi friend", prompted: "Hello" });
    expect(applyToken(p, { kind: "reply", reply: reply("adapter", 1, null) })).toBe(p);
  });

  it("the token tax is the persona side's extra prompt tokens", () => {
    expect(tokenTax(turn([reply("adapter", 40, 80), reply("prompted", 540, 20)]))).toBe(500);
    expect(tokenTax(turn([reply("adapter", 40, 80)]))).toBeNull();
  });

  it("adherence per turn keeps gaps and means only scored turns", () => {
    const turns = [turn([reply("adapter", 1, 80), reply("prompted", 2, 20)]), turn([reply("adapter", 1, 60)]), turn([reply("prompted", 2, null)])];
    expect(adherenceSeries(turns, "adapter")).toEqual([80, 60, null]);
    expect(adherenceSeries(turns, "prompted")).toEqual([20, null, null]);
    expect(mean([80, 60, null])).toBe(70);
    expect(mean([null])).toBeNull();
  });

  it("the sparkline breaks at unscored turns and stays in its box", () => {
    expect(sparklinePath([], 100, 20)).toBe("");
    expect(sparklinePath([100, 0], 100, 20, 0)).toBe("M0,0L100,20");
    expect(sparklinePath([50, null, 50], 100, 20, 0)).toBe("M0,10L0,10M100,10L100,10");
    expect(sparklinePath([null, 80], 100, 20, 0)).toBe("M100,4L100,4");
    expect(sparklinePath([10, 20, null], 100, 20, 0)).toBe("M0,18L50,16");
    expect(sparklinePath([150, -5], 10, 10, 0)).toBe("M0,0L10,10");
    expect(sparklinePath([25], 40, 20, 0)).toBe("M0,15L40,15");
  });

  it("badges and notes read well", () => {
    expect(adherenceTone(75)).toBe("success");
    expect(adherenceTone(40)).toBe("warning");
    expect(adherenceTone(10)).toBe("error");
    expect(endingNote(reply("adapter", 1, 1, "stopped"))).toBe("Stopped");
    expect(endingNote(reply("adapter", 1, 1))).toBeNull();
    expect(formatSecs(0.4237)).toBe("0.42 s");
    expect(formatSecs(42.4)).toBe("42 s");
    expect(formatSecs(65)).toBe("1 min 5 s");
    expect(formatSecs(Number.NaN)).toBe("–");
    expect(sideLabel("adapter", true)).toBe("Your model (adapter)");
    expect(sideLabel("prompted", false)).toBe("Base model + persona prompt");
  });

  it("sampling fields are checked before they are sent", () => {
    expect(settingsProblems(settings)).toEqual([]);
    expect(settingsProblems({ ...settings, temperature: -1 })[0]).toMatch(/Temperature/);
    expect(settingsProblems({ ...settings, topP: 0 })[0]).toMatch(/Top-p/);
    expect(settingsProblems({ ...settings, maxTokens: 1.5 })[0]).toMatch(/Reply length/);
    expect(settingsProblems({ ...settings, seed: -3 })[0]).toMatch(/seed/);
    expect(settingsProblems({ ...settings, temperature: Number.NaN })).toHaveLength(1);
  });

  it("adapters come from finished runs, newest first", () => {
    const runs = [
      { id: "a", status: "finished", adapterDir: "/r/a/adapter", startedAt: 100, finishedAt: 200 },
      { id: "b", status: "running", adapterDir: null, startedAt: 300, finishedAt: null },
      { id: "c", status: "earlyStopped", adapterDir: "/r/c/adapter", startedAt: 400, finishedAt: 500, model: "/m.gguf" },
      { id: "d", status: "failed", adapterDir: "/r/d/adapter", startedAt: 50, finishedAt: 60 },
    ];
    const c = adapterChoices(runs);
    expect(c.map((x) => x.id)).toEqual(["c", "a"]);
    expect(c[0].model).toBe("/m.gguf");
    expect(c[1].model).toBeNull();
    expect(c[0].label).toMatch(/^Run of /);
  });
});
