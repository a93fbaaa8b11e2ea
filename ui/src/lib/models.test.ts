import { describe, expect, it } from "vitest";
import type { Hardware, ModelEntry } from "./api";
import { cleanCpuName, hardwareFacts, locationRow, modelRow, sortModels } from "./models";

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
