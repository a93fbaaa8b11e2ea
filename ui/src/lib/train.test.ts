import { describe, expect, it } from "vitest";
import {
  applyUpdate,
  chartScale,
  formatDuration,
  formatRate,
  linePath,
  niceTicks,
  stepTicks,
  progressShare,
  progressText,
  settingsProblem,
  statusTone,
  type RunDetail,
  type RunRecord,
  type Settings,
  type StepMetrics,
} from "./train";

const settings: Settings = {
  rank: 16,
  alpha: 32,
  lr: 2e-4,
  epochs: 3,
  steps: null,
  seqLen: 512,
  batch: 1,
  gradAccum: 8,
  quant: "nf4",
  seed: 42,
  evalEvery: 20,
  samples: 3,
};

const record: RunRecord = {
  id: "r1",
  projectId: "p1",
  preset: "personaAndStyle",
  settings,
  status: "running",
  startedAt: 1_700_000_000,
  finishedAt: null,
  model: "/m/SmolLM2.gguf",
  trainExamples: 90,
  holdoutExamples: 10,
  totalSteps: null,
  last: null,
  lastHoldoutLoss: null,
  adapterDir: null,
  error: null,
};

function step(n: number, loss: number): StepMetrics {
  return {
    step: n,
    total_steps: 4,
    epoch: n / 4,
    loss,
    lr: 2e-4,
    grad_norm: 1,
    tokens: 100,
    tokens_per_s: 50,
    elapsed_s: n * 2,
    eta_s: (4 - n) * 2,
    rss_bytes: 500 << 20,
    peak_rss_bytes: 600 << 20,
    gpu_bytes: null,
  };
}

const empty: RunDetail = { record, steps: [], evals: [], samples: [] };

describe("applyUpdate", () => {
  it("adds steps, evaluations and samples of its own run only", () => {
    let d = applyUpdate(empty, { runId: "r1", projectId: "p1", kind: "train", event: { event: "started", total_steps: 4, resumed_from: null, examples: 90, holdout_examples: 10 } });
    expect(d.record.totalSteps).toBe(4);
    d = applyUpdate(d, { runId: "r1", projectId: "p1", kind: "train", event: { event: "step", ...step(1, 3.2) } });
    d = applyUpdate(d, { runId: "r1", projectId: "p1", kind: "train", event: { event: "step", ...step(2, 2.9) } });
    d = applyUpdate(d, { runId: "r1", projectId: "p1", kind: "train", event: { event: "eval", step: 2, holdout_loss: 3.0, best: true } });
    d = applyUpdate(d, { runId: "r1", projectId: "p1", kind: "train", event: { event: "samples", step: 2, samples: [{ prompt: "Hi?", reply: "Hello!" }] } });
    const other = applyUpdate(d, { runId: "r2", projectId: "p1", kind: "train", event: { event: "step", ...step(3, 1) } });
    expect(other).toBe(d);
    expect(d.steps.map((s) => s.step)).toEqual([1, 2]);
    expect(d.record.last?.loss).toBe(2.9);
    expect(d.record.lastHoldoutLoss).toBe(3.0);
    expect(d.samples[0].samples[0].reply).toBe("Hello!");
    expect(empty.steps).toEqual([]);
  });

  it("drops the steps after the checkpoint a run resumes from, and takes a new status whole", () => {
    let d: RunDetail = { ...empty, steps: [step(1, 3), step(2, 2.8), step(3, 2.7)], evals: [{ step: 3, holdout_loss: 2, best: true }] };
    d = applyUpdate(d, { runId: "r1", projectId: "p1", kind: "train", event: { event: "started", total_steps: 4, resumed_from: 2, examples: 90, holdout_examples: 10 } });
    expect(d.steps.map((s) => s.step)).toEqual([1, 2]);
    expect(d.evals).toEqual([]);
    d = applyUpdate(d, { runId: "r1", projectId: "p1", kind: "status", record: { ...record, status: "paused" } });
    expect(d.record.status).toBe("paused");
  });
});

describe("formatting", () => {
  it("says durations and rates plainly", () => {
    expect(formatDuration(0.2)).toBe("1 s");
    expect(formatDuration(45)).toBe("45 s");
    expect(formatDuration(180)).toBe("3 min");
    expect(formatDuration(4800)).toBe("1 h 20 min");
    expect(formatDuration(7200)).toBe("2 h");
    expect(formatDuration(NaN)).toBe("—");
    expect(formatRate(12.34)).toBe("12.3 tokens/s");
    expect(formatRate(1234.5)).toBe("1,235 tokens/s");
  });

  it("reports progress against the run's total", () => {
    expect(progressText(record)).toBe("Not started");
    const r = { ...record, totalSteps: 40, last: step(12, 2) };
    expect(progressText(r)).toBe("Step 12 of 40");
    expect(progressShare(r)).toBeCloseTo(0.3);
    expect(statusTone("failed")).toBe("error");
    expect(statusTone("interrupted")).toBe("warning");
  });
});

describe("the loss chart's scale", () => {
  it("picks round ticks", () => {
    expect(niceTicks(0, 10, 5)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(stepTicks(2)).toEqual([0, 1, 2]);
    expect(stepTicks(1)).toEqual([0, 1]);
    expect(stepTicks(100)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(stepTicks(7).every(Number.isInteger)).toBe(true);
    expect(niceTicks(1.83, 3.41, 4)).toEqual([2, 2.5, 3]);
  });

  it("spans both series up to the run's total steps and maps points into the plot", () => {
    const train = [{ x: 1, y: 3.2 }, { x: 2, y: 2.4 }];
    const hold = [{ x: 0, y: 3.5 }, { x: 2, y: 2.6 }];
    const s = chartScale(train, hold, 10);
    expect(s.xMax).toBe(10);
    expect(s.yMin).toBeLessThanOrEqual(2.4);
    expect(s.yMax).toBeGreaterThanOrEqual(3.5);
    expect(s.xTicks[s.xTicks.length - 1]).toBeLessThanOrEqual(10);
    const path = linePath([{ x: 0, y: s.yMax }, { x: 10, y: s.yMin }], s, 100, 50);
    expect(path).toBe("M0.0,0.0 L100.0,50.0");
    expect(chartScale([], [], null).yTicks.length).toBeGreaterThan(0);
  });
});

describe("settingsProblem", () => {
  it("accepts a preset and names the wrong field", () => {
    expect(settingsProblem(settings)).toBeNull();
    expect(settingsProblem({ ...settings, rank: 0 })).toMatch(/rank/);
    expect(settingsProblem({ ...settings, lr: 2 })).toMatch(/learning rate/);
    expect(settingsProblem({ ...settings, steps: 0 })).toMatch(/Steps/);
    expect(settingsProblem({ ...settings, steps: 5, epochs: 0 })).toBeNull();
    expect(settingsProblem({ ...settings, seqLen: 8 })).toMatch(/sequence length/);
    expect(settingsProblem({ ...settings, samples: 7 })).toMatch(/0 to 5/);
  });
});
