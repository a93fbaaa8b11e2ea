import { describe, expect, it } from "vitest";
import type { Hardware, ModelEntry } from "./api";
import {
  canResume,
  cleanCpuName,
  fitBadge,
  formatDuration,
  hardwareFacts,
  isOffline,
  locationRow,
  modelRow,
  parseRepoInput,
  progressText,
  sortModels,
  SUGGESTED_MODELS,
  type FitEstimate,
} from "./models";

const smol: ModelEntry = {
  name: "SmolLM2-135M-Instruct.Q4_1",
  path: "/home/ann/.cache/residency/fixtures/SmolLM2-135M-Instruct.Q4_1.gguf",
  sizeBytes: 98_362_432,
  source: "residency",
  gguf: {
    architecture: "llama",
    generalName: "SmolLM2 135M Instruct",
    parameterCount: 134_515_008,
    mainWeightType: "Q4_1",
    contextLength: 8192,
    tensorCount: 272,
  },
  problem: null,
};

const broken: ModelEntry = {
  name: "aaa-broken",
  path: "/data/aaa-broken.gguf",
  sizeBytes: 10,
  source: "lmStudio",
  gguf: null,
  problem: "/data/aaa-broken.gguf is not a GGUF model file",
};

describe("modelRow", () => {
  it("shows name, family, facts, size and source", () => {
    const row = modelRow(smol, "/home/ann");
    expect(row.name).toBe("SmolLM2-135M-Instruct.Q4_1");
    expect(row.detail).toBe("SmolLM2 135M Instruct · llama");
    expect(row.facts).toEqual(["135M parameters", "Q4_1", "8,192 tokens"]);
    expect(row.size).toBe("93.8 MiB");
    expect(row.source).toBe("Residency");
    expect(row.path).toBe("~/.cache/residency/fixtures/SmolLM2-135M-Instruct.Q4_1.gguf");
    expect(row.problem).toBeNull();
  });

  it("does not repeat a general name equal to the file name", () => {
    const row = modelRow({ ...smol, name: "SmolLM2 135M Instruct" }, null);
    expect(row.detail).toBe("llama");
  });

  it("keeps the problem of an unreadable file", () => {
    const row = modelRow(broken, null);
    expect(row.facts).toEqual([]);
    expect(row.detail).toBe("");
    expect(row.source).toBe("LM Studio");
    expect(row.problem).toContain("not a GGUF model file");
  });
});

describe("sortModels", () => {
  it("puts usable models first, then sorts by name", () => {
    const b = { ...smol, name: "b", path: "/b" };
    const a = { ...smol, name: "a", path: "/a" };
    expect(sortModels([broken, b, a]).map((m) => m.name)).toEqual(["a", "b", "aaa-broken"]);
  });
});

describe("locationRow", () => {
  it("says what was found", () => {
    const base = { source: "ollama" as const, path: "/home/ann/.ollama/models", problems: [] };
    expect(locationRow({ ...base, exists: false, modelCount: 0 }, "/home/ann").status).toBe("Not on this computer");
    expect(locationRow({ ...base, exists: true, modelCount: 0 }, null).status).toBe("No models");
    expect(locationRow({ ...base, exists: true, modelCount: 1 }, null).status).toBe("1 model");
    const two = locationRow({ ...base, exists: true, modelCount: 2 }, "/home/ann");
    expect(two.status).toBe("2 models");
    expect(two.found).toBe(true);
    expect(two.path).toBe("~/.ollama/models");
    expect(two.source).toBe("Ollama");
  });
});

describe("hardwareFacts", () => {
  const hw: Hardware = {
    cpuModel: "Intel(R) Xeon(R) Platinum 8480+",
    cpuArch: "x86_64",
    logicalCores: 2,
    physicalCores: 2,
    cpuFeatures: ["AVX2", "AVX-512"],
    totalMemoryBytes: 24 * 1024 ** 3,
    availableMemoryBytes: 20.5 * 1024 ** 3,
    os: "Linux 12 (Debian GNU/Linux)",
    gpus: [],
  };

  it("describes a CPU-only machine", () => {
    const f = hardwareFacts(hw);
    expect(f.cores).toBe("2 cores");
    expect(f.processor).toBe("Intel Xeon Platinum 8480+");
    expect(f.processorDetail).toBe("x86_64");
    expect(f.speedups).toEqual(["AVX2", "AVX-512"]);
    expect(f.memory).toBe("24 GiB");
    expect(f.memoryDetail).toBe("20.5 GiB free now");
    expect(f.graphics).toBe("None found");
    expect(f.graphicsDetail).toBe("Residency will train on the processor");
  });

  it("shows threads when they differ from cores, and the first GPU", () => {
    const f = hardwareFacts({
      ...hw,
      logicalCores: 16,
      physicalCores: 8,
      gpus: [
        { vendor: "NVIDIA", model: "GeForce RTX 4070", memoryBytes: 12 * 1024 ** 3 },
        { vendor: "Intel", model: null, memoryBytes: null },
      ],
    });
    expect(f.cores).toBe("8 cores");
    expect(f.coresDetail).toBe("16 threads");
    expect(f.graphics).toBe("NVIDIA GeForce RTX 4070");
    expect(f.graphicsDetail).toBe("12 GiB memory · +1 more");
  });

  it("copes with a single core and unknown physical count", () => {
    const f = hardwareFacts({ ...hw, logicalCores: 1, physicalCores: null });
    expect(f.cores).toBe("1 core");
  });
});

describe("cleanCpuName", () => {
  it("drops trademarks, clock speeds and filler words", () => {
    expect(cleanCpuName("Intel(R) Core(TM) i7-8550U CPU @ 1.80GHz")).toBe("Intel Core i7-8550U");
    expect(cleanCpuName("AMD Ryzen 7 5800X 8-Core Processor")).toBe("AMD Ryzen 7 5800X");
    expect(cleanCpuName("Apple M2")).toBe("Apple M2");
    expect(cleanCpuName("  ")).toBe("Unknown processor");
  });
});

describe("fit and time on a model card", () => {
  const fit: FitEstimate = {
    verdict: "fits",
    needBytes: 600 * 1024 * 1024,
    availableBytes: 8 * 1024 ** 3,
    totalBytes: 16 * 1024 ** 3,
    tokensPerSecond: 10,
    runTokens: 420_000,
    seconds: 42_000,
    summary: "",
  };

  it("says fits with memory and a time marked as an estimate", () => {
    const b = fitBadge(fit, "Persona and style");
    expect(b.label).toBe("Fits");
    expect(b.tone).toBe("success");
    expect(b.line).toBe("Needs 600 MiB of 8 GiB free · about 12 hours to train with Persona and style (estimate)");
  });

  it("says tight and does not fit in words a person can act on", () => {
    expect(fitBadge({ ...fit, verdict: "tight" }, "P").line).toContain("close other programs first");
    const no = fitBadge({ ...fit, verdict: "doesNotFit", needBytes: 40 * 1024 ** 3 }, "P");
    expect(no).toMatchObject({ label: "Does not fit", tone: "danger" });
    expect(no.line).toBe("Needs 40 GiB; this computer has 16 GiB. Pick a smaller model.");
  });

  it("rounds durations the way people say them", () => {
    expect(formatDuration(20)).toBe("under a minute");
    expect(formatDuration(60)).toBe("1 minute");
    expect(formatDuration(45 * 60)).toBe("45 minutes");
    expect(formatDuration(3 * 3600)).toBe("3 hours");
    expect(formatDuration(5 * 86400)).toBe("5 days");
    expect(formatDuration(Number.NaN)).toBe("an unknown time");
  });
});

describe("download from Hugging Face", () => {
  it("reads a repository id, a repository link or a file link", () => {
    expect(parseRepoInput(" bartowski/SmolLM2-135M-Instruct-GGUF ")).toEqual({
      repo: "bartowski/SmolLM2-135M-Instruct-GGUF",
      file: "",
    });
    expect(parseRepoInput("Qwen/Qwen2.5-0.5B-Instruct-GGUF", " q.gguf ")).toEqual({
      repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
      file: "q.gguf",
    });
    expect(parseRepoInput("https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/tree/main")).toEqual({
      repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
      file: "",
    });
    expect(
      parseRepoInput("https://huggingface.co/bartowski/SmolLM2-135M-Instruct-GGUF/blob/main/SmolLM2-135M-Instruct-Q4_K_M.gguf?download=true"),
    ).toEqual({ repo: "bartowski/SmolLM2-135M-Instruct-GGUF", file: "SmolLM2-135M-Instruct-Q4_K_M.gguf" });
  });

  it("refuses what is not a repository", () => {
    for (const bad of ["", "smollm", "/x", "a/..", "owner/na me", "https://example.com/", "a/b/c"]) {
      expect(parseRepoInput(bad), bad).toBeNull();
    }
  });

  it("shows progress as bytes and a whole percentage, with where a resume started", () => {
    expect(progressText({ done: 0, total: 0, resumedFrom: 0 })).toEqual({ text: "0 B of 0 B (0%)", percent: 0 });
    const p = progressText({ done: 50 * 1024 * 1024, total: 100 * 1024 * 1024, resumedFrom: 10 * 1024 * 1024 });
    expect(p.percent).toBe(50);
    expect(p.text).toBe("50 MiB of 100 MiB (50%) · continued from 10 MiB");
  });

  it("tells resumable and offline errors apart from the messages the app sends", () => {
    const cancelled =
      "The download was cancelled after 5 of 10 bytes. The part already downloaded is kept: start it again to continue.";
    const offline = "You are offline: Residency could not reach huggingface.co. Copy a .gguf file into /x, or try again when online.";
    expect(canResume(cancelled)).toBe(true);
    expect(canResume(offline)).toBe(false);
    expect(isOffline(offline)).toBe(true);
    expect(isOffline(cancelled)).toBe(false);
  });

  it("suggests small models with a GGUF file each", () => {
    expect(SUGGESTED_MODELS.length).toBeGreaterThanOrEqual(2);
    for (const s of SUGGESTED_MODELS) {
      expect(parseRepoInput(s.repo, s.file)).toEqual({ repo: s.repo, file: s.file });
      expect(s.file.toLowerCase().endsWith(".gguf")).toBe(true);
    }
  });
});
