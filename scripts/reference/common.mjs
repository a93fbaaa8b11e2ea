// Shared helpers for the llama.cpp reference scripts (node-llama-cpp, prebuilt CPU binaries).
//
// Nothing here downloads or builds anything: getLlama is told `build: "never"` and
// `skipDownload: true`, so a missing prebuilt binary is an error, not a compile.

import {createHash} from "node:crypto";
import {createReadStream, existsSync, statSync} from "node:fs";
import {createRequire} from "node:module";
import os from "node:os";
import path from "node:path";
import {spawnSync} from "node:child_process";
import {fileURLToPath} from "node:url";
import {getLlama, getModuleVersion, LlamaLogLevel} from "node-llama-cpp";

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));

/** The repository root (scripts/reference/../..). */
export const repoRoot = path.resolve(here, "..", "..");

/** The fixture cache, as in crates/fixtures and scripts/fixtures.py. */
export function fixturesRoot() {
    return process.env.RESIDENCY_FIXTURES || path.join(os.homedir(), ".cache", "residency", "fixtures");
}

/** The three GGUF fixtures, keyed as in scripts/fixtures.py. */
export const MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "qwen-coder": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
};

/** Path of a model fixture; exits with the fetch command when it is missing. */
export function modelPath(key) {
    const file = MODELS[key];
    if (file == null)
        fail(`unknown model key ${JSON.stringify(key)}; known: ${Object.keys(MODELS).join(", ")}`);
    const p = path.join(fixturesRoot(), file);
    if (!existsSync(p))
        fail(`model fixture ${key} is missing at ${p}: run \`python3 scripts/fixtures.py ${key}\` from the repository root`);
    return p;
}

export function fail(message) {
    console.error(`error: ${message}`);
    process.exit(1);
}

/** Version of the installed node-llama-cpp package. */
export async function nodeLlamaCppVersion() {
    return await getModuleVersion();
}

/**
 * The llama.cpp commit compiled into the prebuilt binary (the exported `LLAMA_COMMIT`
 * string of libllama-common.so), read with Python's ctypes since node cannot call into
 * a shared library by itself. Returns null (and says why on stderr) when that fails.
 */
export function llamaCppCommit() {
    let binDir;
    try {
        // the package's entry point is dist/index.js; the binaries sit in bins/<platform>-<arch>
        const entry = require.resolve(`@node-llama-cpp/${process.platform}-${process.arch}`);
        binDir = path.join(path.dirname(entry), "..", "bins", `${process.platform}-${process.arch}`);
    } catch {
        console.error("note: prebuilt binary package not found; llama.cpp commit not recorded");
        return null;
    }
    const lib = path.join(binDir, "libllama-common.so");
    const py = "import ctypes,sys; l=ctypes.CDLL(sys.argv[1]); " +
        "print(ctypes.c_char_p.in_dll(l,'LLAMA_COMMIT').value.decode(), ctypes.c_int.in_dll(l,'LLAMA_BUILD_NUMBER').value)";
    const r = spawnSync("python3", ["-c", py, lib], {encoding: "utf8"});
    if (r.status !== 0) {
        console.error(`note: could not read LLAMA_COMMIT from ${lib}: ${(r.stderr || r.error || "").toString().trim()}`);
        return null;
    }
    const [commit, build] = r.stdout.trim().split(/\s+/);
    return {commit, build_number: Number(build), source: `LLAMA_COMMIT in ${path.relative(repoRoot, lib)}`};
}

/** sha256 of a file, hex. */
export function sha256File(p) {
    return new Promise((resolve, reject) => {
        const h = createHash("sha256");
        createReadStream(p).on("data", (d) => h.update(d)).on("error", reject).on("end", () => resolve(h.digest("hex")));
    });
}

/**
 * A CPU-only Llama instance that never downloads or builds. Log lines from llama.cpp are
 * kept in `logs` (so callers can record e.g. the KV cache types llama.cpp reports); only
 * warnings and errors reach stderr.
 */
export async function loadLlama({maxThreads}) {
    const logs = [];
    const llama = await getLlama({
        gpu: false,
        build: "never",
        skipDownload: true,
        usePrebuiltBinaries: true,
        progressLogs: false,
        maxThreads,
        logLevel: LlamaLogLevel.info,
        logger(level, message) {
            logs.push(message);
            if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal)
                console.error(`[llama.cpp ${level}] ${message}`);
        },
    });
    return {llama, logs};
}

/** The header fields every reference file shares. */
export async function header(llama, key, file, kind) {
    return {
        schema: `residency.llamacpp.${kind}/1`,
        generator: "scripts/reference/make_llamacpp_refs.mjs",
        node_llama_cpp_version: await nodeLlamaCppVersion(),
        llama_cpp: {
            release: llama.llamaCppRelease.release,
            repo: llama.llamaCppRelease.repo,
            ...(llamaCppCommit() ?? {commit: null}),
            build_type: llama.buildType,
            gpu: llama.gpu,
            system_info: llama.systemInfo.trim(),
        },
        model: {
            key,
            file: path.basename(file),
            bytes: statSync(file).size,
            sha256: await sha256File(file),
        },
    };
}
