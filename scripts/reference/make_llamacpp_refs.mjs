// Writes llama.cpp reference data for Residency's tests, for each GGUF fixture:
//   tests/data/llamacpp/<key>/tokens.json  token ids for tests/data/tokenizer-corpus.json
//   tests/data/llamacpp/<key>/logits.json  log-probabilities at the last prompt position
//   tests/data/llamacpp/<key>/greedy.json  greedy 64-token continuations with per-step top-5
// (<key> is smollm2, qwen-coder or gemma3.)
//
// Run:
//   python3 scripts/fixtures.py smollm2 qwen-coder gemma3     # once, from the repository root
//   cd scripts/reference && npm ci && node make_llamacpp_refs.mjs [smollm2 qwen-coder gemma3]
//
// Optional tighter reference, tests/data/llamacpp/<key>/logits_f32.json: the same prompts run on
// an F32 (dequantized) copy of each model, named <key>.f32.gguf in DIR (see make_f32_gguf.py):
//   node make_llamacpp_refs.mjs --f32-dir ~/.cache/residency/f32 [keys...]
//
// llama.cpp comes from node-llama-cpp's prebuilt CPU binary (pinned in package.json); nothing
// is downloaded or built at run time. Settings: CPU only, 2 threads, context 512, batch 512,
// F32 K and V cache, flash attention off, greedy sampling (temperature 0), no repeat penalty.
// node-llama-cpp returns softmax probabilities over the whole vocabulary (computed in f32 from
// llama.cpp's logits), not raw logits, so every number stored here is ln(probability).
// Takes about 10 minutes on 2 cores, most of it Gemma's 262k-entry probability maps.

import {existsSync, mkdirSync, readFileSync, renameSync, writeFileSync} from "node:fs";
import path from "node:path";
import {MODELS, fail, header, loadLlama, modelPath, repoRoot, sha256File} from "./common.mjs";

const THREADS = 2;
const CONTEXT_SIZE = 512;
const BATCH_SIZE = 512;
const KV_CACHE_TYPE = "F32";
const TOP_LOGITS = 20;
const TOP_GREEDY = 5;
const GREEDY_TOKENS = 64;
const SAMPLED_IDS = 1024; // log-probabilities of every (vocab/1024)-th id, to check the tail too

const CORPUS_FILE = "tests/data/tokenizer-corpus.json";

const CHATML = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
const GEMMA_TURN = "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n";

const PROMPTS = [
    {name: "capital", text: "The capital of France is"},
    {name: "code", text: "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n"},
    {
        name: "paragraph",
        text: "Maria opened her bakery on a quiet corner of the old town twelve years ago. " +
            "At first she baked only bread: sourdough loaves, rye, and a sweet braided bread her grandmother " +
            "had taught her. Customers kept asking for cakes, so she added a small display of tarts and " +
            "cookies, and later a coffee machine and two tables by the window. Today the shop employs five " +
            "people, opens at six in the morning, and sells out of croissants most days before ten. Last winter " +
            "she started writing down every recipe, because",
    },
    {name: "list", text: "Things to pack for a weekend camping trip:\n1. Tent\n2. Sleeping bag\n3."},
    {name: "question", text: "Question: Why is the sky blue?\nAnswer:"},
    {name: "french", text: "La capitale de l'Italie est"},
    {name: "chat", text: CHATML, models: ["smollm2", "qwen-coder"]},
    {name: "gemma_turn", text: GEMMA_TURN, models: ["gemma3"]},
];

function writeJson(rel, value) {
    const file = path.join(repoRoot, rel);
    mkdirSync(path.dirname(file), {recursive: true});
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(value, null, 1) + "\n");
    renameSync(tmp, file);
    console.error(`wrote ${rel}`);
}

/** ln(p), or null where the f32 probability underflowed to 0. */
function logprob(p) {
    return p > 0 ? Math.log(p) : null;
}

function probOf(probabilities, id) {
    const p = probabilities.get(id);
    if (p === undefined)
        fail(`token ${id} is missing from a probability map of ${probabilities.size} entries`);
    return p;
}

/** The first n entries of a probability map (sorted by logit, highest first). */
function top(probabilities, n) {
    const out = [];
    for (const [id, p] of probabilities) {
        if (out.length >= n)
            break;
        out.push({id, logprob: logprob(p)});
    }
    return out;
}

function tokensFor(model, corpus) {
    return corpus.map((text, index) => {
        const idsPlain = model.tokenize(text, false);
        const idsSpecial = model.tokenize(text, true);
        return {
            index,
            text,
            ids_plain: idsPlain,
            ids_special: idsSpecial,
            decoded_plain: model.detokenize(idsPlain, false),
        };
    });
}

async function openContext(model, logs, key) {
    const logStart = logs.length;
    const context = await model.createContext({
        contextSize: CONTEXT_SIZE,
        batchSize: BATCH_SIZE,
        threads: THREADS,
        sequences: 1,
        flashAttention: false,
        experimentalKvCacheKeyType: KV_CACHE_TYPE,
        experimentalKvCacheValueType: KV_CACHE_TYPE,
    });
    const kvLog = logs.slice(logStart).filter((m) => /llama_kv_cache: size =/.test(m)).map((m) => m.trim());
    if (kvLog.length === 0 || !kvLog.every((m) => /K \(f32\).*V \(f32\)/.test(m)))
        fail(`llama.cpp did not report an F32 KV cache for ${key}: ${JSON.stringify(kvLog)}`);
    const settings = {
        threads: THREADS,
        context_size: context.contextSize,
        batch_size: context.batchSize,
        flash_attention: false,
        kv_cache_type_k: KV_CACHE_TYPE,
        kv_cache_type_v: KV_CACHE_TYPE,
        kv_cache_log: kvLog,
        gpu_layers: 0,
        sampling: "greedy: temperature 0 (llama_sampler_init_greedy), no repeat penalty, no token bias",
        prompt_tokenization: "(add_bos ? [bos_id] : []) + model.tokenize(text, true)",
        logprob: "ln(p), p = softmax over the full vocabulary of llama.cpp's logits, computed in f32 by node-llama-cpp " +
            "(exp(l - max) / sum); null where p underflowed to 0",
        evaluation: "prompt evaluated in one batch with sequence.evaluateWithMetadata(ids, {probabilities: true}, " +
            "{temperature: 0, yieldEogToken: true}); each generated token is then fed back one at a time",
    };
    return {context, settings};
}

function tokenizerInfo(model) {
    const tokens = model.tokens;
    return {
        bos_id: tokens.bos,
        eos_id: tokens.eos,
        eot_id: tokens.eot,
        add_bos: tokens.shouldPrependBosToken && tokens.bos != null,
        vocabulary_type: model.vocabularyType,
    };
}

/**
 * Evaluates one prompt and generates greedily for up to maxSteps tokens (stopping at an
 * end-of-generation token). Returns the logits.json entry (last prompt position), the
 * greedy.json entry, and the vocabulary size seen in the probability maps.
 */
async function runPrompt(model, sequence, key, prompt, maxSteps) {
    const addBos = tokenizerInfo(model).add_bos;
    const ids = [...(addBos ? [model.tokens.bos] : []), ...model.tokenize(prompt.text, true)];
    if (ids.length + maxSteps > sequence.contextSize)
        fail(`prompt ${prompt.name} has ${ids.length} tokens; it and ${maxSteps} more do not fit in ${sequence.contextSize}`);
    await sequence.clearHistory();
    let vocabSize = null;
    let logitsEntry = null;
    const steps = [];
    let stoppedAtEog = false;
    const t0 = performance.now();
    for await (const out of sequence.evaluateWithMetadata(ids, {probabilities: true}, {temperature: 0, yieldEogToken: true})) {
        const probs = out.probabilities;
        if (vocabSize == null)
            vocabSize = probs.size;
        else if (probs.size !== vocabSize)
            fail(`${key}: a probability map has ${probs.size} entries, an earlier one ${vocabSize}`);
        if (logitsEntry == null) {
            const stride = Math.max(1, Math.floor(vocabSize / SAMPLED_IDS));
            const sampled = [];
            for (let id = 0; id < vocabSize; id += stride)
                sampled.push(logprob(probOf(probs, id)));
            logitsEntry = {
                name: prompt.name,
                text: prompt.text,
                token_ids: ids,
                bos_added: addBos,
                top: top(probs, TOP_LOGITS),
                sampled_ids_stride: stride,
                sampled_logprobs: sampled,
            };
        }
        steps.push({token: out.token, logprob: logprob(probOf(probs, out.token)), top: top(probs, TOP_GREEDY)});
        if (model.isEogToken(out.token)) {
            stoppedAtEog = true;
            break;
        }
        if (steps.length >= maxSteps)
            break;
    }
    if (!stoppedAtEog && steps.length < maxSteps)
        fail(`${key}/${prompt.name}: generation ended after ${steps.length} tokens without an end-of-generation token`);
    const generated = steps.map((s) => s.token);
    const seconds = (performance.now() - t0) / 1000;
    console.error(`  ${prompt.name}: ${ids.length} prompt tokens, ${generated.length} generated in ${seconds.toFixed(1)}s: ` +
        JSON.stringify(model.detokenize(generated, false)).slice(0, 100));
    const greedyEntry = {
        name: prompt.name,
        text: prompt.text,
        token_ids: ids,
        bos_added: addBos,
        generated_ids: generated,
        generated_text: model.detokenize(generated, false),
        stopped_at_eog: stoppedAtEog,
        steps,
    };
    return {logitsEntry, greedyEntry, vocabSize};
}

function promptsFor(key) {
    return PROMPTS.filter((p) => !p.models || p.models.includes(key));
}

async function makeForModel(key, llama, logs, corpus) {
    const file = modelPath(key);
    console.error(`== ${key}: ${file}`);
    const model = await llama.loadModel({modelPath: file, gpuLayers: 0});
    const tokenizer = tokenizerInfo(model);

    // a. tokens
    writeJson(`tests/data/llamacpp/${key}/tokens.json`, {
        ...(await header(llama, key, file, "tokens")),
        tokenizer,
        method: {
            call: "model.tokenize(text, specialTokens)",
            llama_cpp_call: "common_tokenize(vocab, text, add_special=false, parse_special=specialTokens)",
            ids_plain: "specialTokens=false: special-token text such as <|im_start|> is tokenized as plain text",
            ids_special: "specialTokens=true: special-token text becomes the special token id",
            bos_added: false,
            note: "Neither list has BOS/EOS added (add_special=false). A prompt fed to the model gets BOS " +
                "prepended only when tokenizer.add_bos is true. node-llama-cpp returns [] for \"\" without calling llama.cpp.",
            decoded_plain: "model.detokenize(ids_plain, false) (llama_detokenize, special tokens not rendered)",
        },
        corpus_file: CORPUS_FILE,
        entries: tokensFor(model, corpus),
    });

    // b + c. one greedy pass per prompt gives the last-position distribution and the continuation
    const {context, settings} = await openContext(model, logs, key);
    const sequence = context.getSequence();
    const logitsPrompts = [];
    const greedyPrompts = [];
    let vocabSize = null;
    for (const prompt of promptsFor(key)) {
        const r = await runPrompt(model, sequence, key, prompt, GREEDY_TOKENS);
        logitsPrompts.push(r.logitsEntry);
        greedyPrompts.push(r.greedyEntry);
        vocabSize = r.vocabSize;
    }

    writeJson(`tests/data/llamacpp/${key}/logits.json`, {
        ...(await header(llama, key, file, "logits")),
        tokenizer,
        vocab_size: vocabSize,
        settings,
        top_k: TOP_LOGITS,
        prompts: logitsPrompts,
    });
    writeJson(`tests/data/llamacpp/${key}/greedy.json`, {
        ...(await header(llama, key, file, "greedy")),
        tokenizer,
        vocab_size: vocabSize,
        settings,
        max_new_tokens: GREEDY_TOKENS,
        stop: "only at an end-of-generation token (model.isEogToken), which is kept as the last generated id",
        top_k: TOP_GREEDY,
        prompts: greedyPrompts,
    });

    await context.dispose();
    await model.dispose();
}

/** logits_f32.json: the same prompts, run on an F32 copy of the model (make_f32_gguf.py). */
async function makeF32ForModel(key, llama, logs, f32Dir) {
    const source = modelPath(key);
    const file = path.join(f32Dir, `${key}.f32.gguf`);
    if (!existsSync(file))
        fail(`no F32 copy of ${key} at ${file}; make it with scripts/reference/make_f32_gguf.py ${source} ${file}`);
    console.error(`== ${key} (f32 copy): ${file}`);
    const model = await llama.loadModel({modelPath: file, gpuLayers: 0});
    const {context, settings} = await openContext(model, logs, key);
    const sequence = context.getSequence();
    const prompts = [];
    let vocabSize = null;
    for (const prompt of promptsFor(key)) {
        const r = await runPrompt(model, sequence, key, prompt, 1);
        prompts.push(r.logitsEntry);
        vocabSize = r.vocabSize;
    }
    const head = await header(llama, key, file, "logits");
    head.model.dequantized_from = {file: path.basename(source), sha256: await sha256File(source)};
    head.model.made_by = "scripts/reference/make_f32_gguf.py (PyPI gguf 0.19.0: gguf.quants.dequantize, every tensor to F32)";
    writeJson(`tests/data/llamacpp/${key}/logits_f32.json`, {
        ...head,
        tokenizer: tokenizerInfo(model),
        vocab_size: vocabSize,
        settings,
        top_k: TOP_LOGITS,
        prompts,
    });
    await context.dispose();
    await model.dispose();
}

async function main() {
    const args = process.argv.slice(2);
    let f32Dir = null;
    const keys = [];
    for (let i = 0; i < args.length; i++) {
        if (args[i] === "--f32-dir") {
            if (i + 1 >= args.length)
                fail("--f32-dir needs a folder");
            f32Dir = args[++i];
        } else if (args[i] in MODELS) {
            keys.push(args[i]);
        } else {
            fail(`unknown argument ${JSON.stringify(args[i])}; model keys: ${Object.keys(MODELS).join(", ")}; option: --f32-dir DIR`);
        }
    }
    const corpus = JSON.parse(readFileSync(path.join(repoRoot, CORPUS_FILE), "utf8"));
    if (!Array.isArray(corpus) || !corpus.every((s) => typeof s === "string"))
        fail(`${CORPUS_FILE} must be a JSON array of strings`);
    const {llama, logs} = await loadLlama({maxThreads: THREADS});
    for (const key of keys.length ? keys : Object.keys(MODELS)) {
        if (f32Dir != null)
            await makeF32ForModel(key, llama, logs, f32Dir);
        else
            await makeForModel(key, llama, logs, corpus);
    }
    await llama.dispose();
}

await main();
