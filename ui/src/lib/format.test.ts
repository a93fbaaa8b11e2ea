import { describe, expect, it } from "vitest";
import { formatBytes, formatContext, formatParams, formatWeightType, shortenPath } from "./format";

describe("formatBytes", () => {
  it("uses binary units with three significant digits", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(1024 * 1024)).toBe("1 MiB");
    // The SmolLM2 fixture: 98,362,432 bytes.
    expect(formatBytes(98_362_432)).toBe("93.8 MiB");
    expect(formatBytes(491_400_064)).toBe("469 MiB");
    expect(formatBytes(4.21 * 1024 ** 3)).toBe("4.21 GiB");
    expect(formatBytes(24 * 1024 ** 3)).toBe("24 GiB");
    expect(formatBytes(2 * 1024 ** 4)).toBe("2 TiB");
  });

  it("says so when the size is unknown", () => {
    expect(formatBytes(-1)).toBe("unknown size");
    expect(formatBytes(Number.NaN)).toBe("unknown size");
  });
});

describe("formatParams", () => {
  it("writes counts the way model cards do", () => {
    expect(formatParams(134_515_008)).toBe("135M");
    expect(formatParams(494_032_768)).toBe("494M");
    expect(formatParams(1_235_814_400)).toBe("1.2B");
    expect(formatParams(7_000_000_000)).toBe("7B");
    expect(formatParams(70_553_706_496)).toBe("71B");
    expect(formatParams(2_500_000)).toBe("2.5M");
    expect(formatParams(4_096)).toBe("4.1K");
    expect(formatParams(12)).toBe("12");
    expect(formatParams(0)).toBe("");
  });
});

describe("formatWeightType", () => {
  it("spells k-quants as llama.cpp does", () => {
    expect(formatWeightType("Q4K")).toBe("Q4_K");
    expect(formatWeightType("Q6K")).toBe("Q6_K");
    expect(formatWeightType("Q4_1")).toBe("Q4_1");
    expect(formatWeightType("BF16")).toBe("BF16");
    expect(formatWeightType(null)).toBe("");
  });
});

describe("formatContext", () => {
  it("groups digits", () => {
    expect(formatContext(8192)).toBe("8,192 tokens");
    expect(formatContext(null)).toBe("");
  });
});

describe("shortenPath", () => {
  it("replaces the home folder with ~", () => {
    expect(shortenPath("/home/ann/.ollama/models", "/home/ann")).toBe("~/.ollama/models");
    expect(shortenPath("/home/ann", "/home/ann/")).toBe("~");
    expect(shortenPath("/home/annie/x", "/home/ann")).toBe("/home/annie/x");
    expect(shortenPath("/usr/share/ollama", null)).toBe("/usr/share/ollama");
    expect(shortenPath("C:\\Users\\ann\\x.gguf", "C:\\Users\\ann")).toBe("~\\x.gguf");
  });
});
