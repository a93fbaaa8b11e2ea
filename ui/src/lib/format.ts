// Formatting of sizes and counts for people, not programmers.

const KIB = 1024;
const MIB = KIB * 1024;
const GIB = MIB * 1024;
const TIB = GIB * 1024;

/** Binary sizes: "512 B", "1.5 KiB", "93.8 MiB", "4.21 GiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "unknown size";
  if (bytes < KIB) return `${Math.round(bytes)} B`;
  const [unit, div] =
    bytes < MIB ? ["KiB", KIB] : bytes < GIB ? ["MiB", MIB] : bytes < TIB ? ["GiB", GIB] : ["TiB", TIB];
  const v = bytes / div;
  // Three significant digits, without trailing zeros: 93.8 MiB, 1.5 GiB, 512 MiB.
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${trimZeros(v.toFixed(digits))} ${unit}`;
}

/** Parameter counts as model cards write them: "135M", "1.2B", "7B". */
export function formatParams(n: number): string {
  if (!Number.isFinite(n) || n <= 0) return "";
  if (n < 1e3) return `${n}`;
  if (n < 1e6) return `${trimZeros((n / 1e3).toFixed(n < 1e4 ? 1 : 0))}K`;
  if (n < 1e9) return `${trimZeros((n / 1e6).toFixed(n < 1e7 ? 1 : 0))}M`;
  return `${trimZeros((n / 1e9).toFixed(n < 1e10 ? 1 : 0))}B`;
}

/** Candle's storage type names (Q4K, Q8_0, BF16) in llama.cpp's spelling (Q4_K). */
export function formatWeightType(t: string | null | undefined): string {
  if (!t) return "";
  const k = /^Q(\d)K$/.exec(t);
  return k ? `Q${k[1]}_K` : t;
}

/** "8,192 tokens" */
export function formatContext(n: number | null | undefined): string {
  if (n == null || n <= 0) return "";
  return `${n.toLocaleString("en-US")} tokens`;
}

/** Replaces the home folder with "~" so paths fit and read naturally. */
export function shortenPath(path: string, home: string | null | undefined): string {
  if (!home) return path;
  const h = home.replace(/[\\/]+$/, "");
  if (path === h) return "~";
  if (path.startsWith(h + "/") || path.startsWith(h + "\\")) return "~" + path.slice(h.length);
  return path;
}

function trimZeros(s: string): string {
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}
