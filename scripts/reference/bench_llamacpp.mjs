// Benchmarks llama.cpp (node-llama-cpp's prebuilt CPU binary) on one GGUF file and prints one
// JSON object on stdout:
//   {"engine":"llama.cpp","model":...,"prompt_tokens_per_s":...,"gen_tokens_per_s":...,"version":...}
//
// Usage (after `cd scripts/reference && npm ci`):
//   node bench_llamacpp.mjs --model PATH [--prompt-tokens 512] [--gen-tokens 128] [--threads 2]
//                           [--repeat 1] [--flash-attention]
//
// What is measured (wall clock, after one small warm-up evaluation):
//   prompt: a fresh sequence evaluates a --prompt-tokens prompt (ordinary English text,
//           tokenized and cut to length; BOS first when the model adds one) in one batch;
//           prompt_tokens_per_s = prompt tokens / seconds.
//   gen:    right after that prompt, --gen-tokens single-token decodes with greedy sampling
//           (end-of-generation tokens do not stop it); gen_tokens_per_s = tokens / seconds.
// With --repeat N the whole measurement runs N times and the medians are reported.
// Run it on an otherwise idle machine: ggml's worker threads spin at barriers, so when other
// processes compete for the cores, 2-thread throughput collapses (measured here with a load
// average of ~4 on 2 cores: SmolLM2 generation 3.4 tok/s with 2 threads, 41 tok/s with 1).
// The output records the load average and CPU count seen at the start; a warning goes to
// stderr when the load average is above 0.5.
// KV cache: llama.cpp's default (F16), as reported in kv_cache_types. Progress and notes go to stderr; stdout has only the JSON.

import os from "node:os";
import path from "node:path";
import {fail, loadLlama, llamaCppCommit, nodeLlamaCppVersion} from "./common.mjs";
import {existsSync} from "node:fs";

function parseArgs(argv) {
    const opts = {model: null, promptTokens: 512, genTokens: 128, threads: 2, repeat: 1, flashAttention: false};
    const intArg = (name, v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1)
            fail(`${name} needs a positive whole number, got ${JSON.stringify(v)}`);
        return n;
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const next = () => {
            if (i + 1 >= argv.length)
                fail(`${a} needs a value`);
            return argv[++i];
        };
        switch (a) {
            case "--model": opts.model = next(); break;
            case "--prompt-tokens": opts.promptTokens = intArg(a, next()); break;
            case "--gen-tokens": opts.genTokens = intArg(a, next()); break;
            case "--threads": opts.threads = intArg(a, next()); break;
            case "--repeat": opts.repeat = intArg(a, next()); break;
            case "--flash-attention": opts.flashAttention = true; break;
            case "-h": case "--help":
                console.error("usage: node bench_llamacpp.mjs --model PATH [--prompt-tokens 512] [--gen-tokens 128] " +
                    "[--threads 2] [--repeat 1] [--flash-attention]");
                process.exit(0);
            // eslint-disable-next-line no-fallthrough
            default: fail(`unknown argument ${JSON.stringify(a)} (see --help)`);
        }
    }
    if (opts.model == null)
        fail("--model PATH is required");
    if (!existsSync(opts.model))
        fail(`no model file at ${opts.model}`);
    return opts;
}

const FILLER = "The history of bread goes back at least thirty thousand years. Early people ground seeds " +
    "and grains between stones, mixed the flour with water, and baked flat cakes on hot rocks. Leavened " +
    "bread appeared in Egypt, where wild yeasts in the air made dough rise. Bakers in Rome formed guilds, " +
    "and by the Middle Ages every town had its own ovens, rules about the weight of a loaf, and fines for " +
    "bakers who cheated. Today a small bakery still follows the same steps: measure, mix, knead, rest, " +
    "shape, proof, and bake, adjusting each day for the weather and the flour. ";

function promptTokens(model, n) {
    const bos = model.tokens.shouldPrependBosToken && model.tokens.bos != null ? [model.tokens.bos] : [];
    const chunk = model.tokenize(FILLER, false);
    if (chunk.length === 0)
        fail("the model's tokenizer returned no tokens for the benchmark text");
    const out = [...bos];
    while (out.length < n)
        out.push(...chunk);
    return out.slice(0, n);
}

function median(xs) {
    const s = [...xs].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const loadBefore = os.loadavg()[0];
    if (loadBefore > 0.5)
        console.error(`warning: the machine is busy (1-minute load average ${loadBefore.toFixed(2)} on ` +
            `${os.cpus().length} CPUs); llama.cpp's numbers will be low and unstable`);
    const {llama, logs} = await loadLlama({maxThreads: opts.threads});
    const model = await llama.loadModel({modelPath: opts.model, gpuLayers: 0});
    const context = await model.createContext({
        contextSize: opts.promptTokens + opts.genTokens + 16,
        // KV cache: llama.cpp's default type (F16); reported from llama.cpp's own log below
        batchSize: opts.promptTokens,
        threads: {ideal: opts.threads, min: opts.threads},
        sequences: 1,
        flashAttention: opts.flashAttention,
    });
    const kvLog = logs.filter((m) => /llama_kv_cache: size =/.test(m)).map((m) => m.trim());
    const kvTypes = [...new Set(kvLog.flatMap((m) => [...m.matchAll(/\b([KV]) \((\w+)\)/g)].map((x) => `${x[1]}=${x[2]}`)))];
    const sequence = context.getSequence();
    const prompt = promptTokens(model, opts.promptTokens);

    // warm-up: load weights into the page cache and let the CPU backend set up its buffers
    await sequence.evaluateWithoutGeneratingNewTokens(prompt.slice(0, 16));
    await sequence.clearHistory();

    const pp = [];
    const tg = [];
    for (let r = 0; r < opts.repeat; r++) {
        await sequence.clearHistory();
        const t0 = performance.now();
        await sequence.evaluateWithoutGeneratingNewTokens(prompt);
        const t1 = performance.now();
        pp.push(prompt.length / ((t1 - t0) / 1000));

        // Each yield of evaluate() follows exactly one single-token decode: first of the token
        // given here, then of each generated token fed back. Stop at the genTokens-th yield.
        let generated = 0;
        for await (const _token of sequence.evaluate([prompt[1 % prompt.length]], {temperature: 0, yieldEogToken: true})) {
            if (++generated >= opts.genTokens)
                break;
        }
        const t2 = performance.now();
        if (generated < opts.genTokens)
            fail(`generation stopped after ${generated} of ${opts.genTokens} tokens`);
        tg.push(generated / ((t2 - t1) / 1000));
        console.error(`run ${r + 1}/${opts.repeat}: prompt ${pp.at(-1).toFixed(1)} tok/s, ` +
            `generation ${tg.at(-1).toFixed(1)} tok/s`);
    }

    const commit = llamaCppCommit();
    const result = {
        engine: "llama.cpp",
        model: path.basename(opts.model),
        prompt_tokens_per_s: Number(median(pp).toFixed(2)),
        gen_tokens_per_s: Number(median(tg).toFixed(2)),
        version: `node-llama-cpp ${await nodeLlamaCppVersion()}, llama.cpp ${llama.llamaCppRelease.release}` +
            (commit?.commit ? ` (commit ${commit.commit})` : ""),
        prompt_tokens: opts.promptTokens,
        gen_tokens: opts.genTokens,
        threads: opts.threads,
        repeat: opts.repeat,
        kv_cache_types: kvTypes,
        flash_attention: opts.flashAttention,
        batch_size: context.batchSize,
        load_average_1m_before: Number(loadBefore.toFixed(2)),
        cpus: os.cpus().length,
    };
    await context.dispose();
    await model.dispose();
    await llama.dispose();
    process.stdout.write(JSON.stringify(result) + "\n");
}

await main();
