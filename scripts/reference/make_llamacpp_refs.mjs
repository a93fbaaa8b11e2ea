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
// llama.cpp comes from node-llama-cpp's prebuilt CPU binary (pinned in package.json); nothing
// is downloaded or built at run time. Settings: CPU only, 2 threads, context 512, batch 512,
// F32 K and V cache, flash attention off, greedy sampling (temperature 0), no repeat penalty.
// node-llama-cpp returns softmax probabilities over the whole vocabulary (computed in f32 from
// llama.cpp's logits), not raw logits, so every number stored here is ln(probability).
// Takes about 10 minutes on 2 cores, most of it Gemma's 262k-entry probability maps.

import {mkdirSync, readFileSync, renameSync, writeFileSync} from "node:fs";
import path from "node:path";
import {MODELS, fail, header, loadLlama, modelPath, repoRoot} from "./common.mjs";

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

async function makeForModel(key, llama, logs, corpus) {
    const file = modelPath(key);
    console.error(`== ${key}: ${file}`);
    const model = await llama.loadModel({modelPath: file, gpuLayers: 0});
    const tokens = model.tokens;
    const addBos = tokens.shouldPrependBosToken && tokens.bos != null;
    let vocabSize = null; // llama_vocab_n_tokens: the size of every full probability map
    const tokenizerInfo = {
        bos_id: tokens.bos,
        eos_id: tokens.eos,
        eot_id: tokens.eot,
        add_bos: addBos,
        vocabulary_type: model.vocabularyType,
    };

    // a. tokens
    writeJson(`tests/data/llamacpp/${key}/tokens.json`, {
        ...(await header(llama, key, file, "tokens")),
        tokenizer: tokenizerInfo,
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
    const logKvStart = logs.length;
    const context = await model.createContext({
        contextSize: CONTEXT_SIZE,
        batchSize: BATCH_SIZE,
        threads: THREADS,
        sequences: 1,
        flashAttention: false,
        experimentalKvCacheKeyType: KV_CACHE_TYPE,
        experimentalKvCacheValueType: KV_CACHE_TYPE,
    });
    const kvLog = logs.slice(logKvStart).filter((m) => /llama_kv_cache: size =/.test(m)).map((m) => m.trim());
    if (!kvLog.every((m) => /K \(f32\).*V \(f32\)/.test(m)) || kvLog.length === 0)
        fail(`llama.cpp did not report an F32 KV cache for ${key}: ${JSON.stringify(kvLog)}`);
    const sequence = context.getSequence();

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

    const logitsPrompts = [];
    const greedyPrompts = [];
    for (const prompt of PROMPTS) {
        if (prompt.models && !prompt.models.includes(key))
            continue;
        const ids = [...(addBos ? [tokens.bos] : []), ...model.tokenize(prompt.text, true)];
        if (ids.length + GREEDY_TOKENS > context.contextSize)
            fail(`prompt ${prompt.name} has ${ids.length} tokens; it and ${GREEDY_TOKENS} more do not fit in ${context.contextSize}`);
        await sequence.clearHistory();
        const steps = [];
        let stoppedAtEog = false;
        const t0 = performance.now();
        for await (const out of sequence.evaluateWithMetadata(ids, {probabilities: true}, {temperature: 0, yieldEogToken: true})) {
            const probs = out.probabilities;
            if (vocabSize == null)
                vocabSize = probs.size;
            else if (probs.size !== vocabSize)
                fail(`${key}: a probability map has ${probs.size} entries, earlier ones ${vocabSize}`);
            if (steps.length === 0) {
                const stride = Math.max(1, Math.floor(vocabSize / SAMPLED_IDS));
                const entry = {
                    name: prompt.name,
                    text: prompt.text,
                    token_ids: ids,
                    bos_added: addBos,
                    top: top(probs, TOP_LOGITS),
                };
                entry.sampled_ids_stride = stride;
                entry.sampled_logprobs = [];
                for (let id = 0; id < vocabSize; id += stride)
                    entry.sampled_logprobs.push(logprob(probOf(probs, id)));
                logitsPrompts.push(entry);
            }
            steps.push({token: out.token, logprob: logprob(probOf(probs, out.token)), top: top(probs, TOP_GREEDY)});
            if (model.isEogToken(out.token)) {
                stoppedAtEog = true;
                break;
            }
            if (steps.length >= GREEDY_TOKENS)
                break;
        }
        if (!stoppedAtEog && steps.length < GREEDY_TOKENS)
            fail(`${key}/${prompt.name}: generation ended after ${steps.length} tokens without an end-of-generation token`);
        const generated = steps.map((s) => s.token);
        const seconds = (performance.now() - t0) / 1000;
        console.error(`  ${prompt.name}: ${ids.length} prompt tokens, ${generated.length} generated in ${seconds.toFixed(1)}s: ` +
            JSON.stringify(model.detokenize(generated, false)).slice(0, 100));
        greedyPrompts.push({
            name: prompt.name,
            text: prompt.text,
            token_ids: ids,
            bos_added: addBos,
            generated_ids: generated,
            generated_text: model.detokenize(generated, false),
            stopped_at_eog: stoppedAtEog,
            steps,
        });
    }

    writeJson(`tests/data/llamacpp/${key}/logits.json`, {
        ...(await header(llama, key, file, "logits")),
        tokenizer: tokenizerInfo,
        vocab_size: vocabSize,
        settings,
        top_k: TOP_LOGITS,
        prompts: logitsPrompts,
    });
    writeJson(`tests/data/llamacpp/${key}/greedy.json`, {
        ...(await header(llama, key, file, "greedy")),
        tokenizer: tokenizerInfo,
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

async function main() {
    const keys = process.argv.slice(2);
    for (const k of keys)
        if (!(k in MODELS))
            fail(`unknown model key ${JSON.stringify(k)}; known: ${Object.keys(MODELS).join(", ")}`);
    const corpus = JSON.parse(readFileSync(path.join(repoRoot, CORPUS_FILE), "utf8"));
    if (!Array.isArray(corpus) || !corpus.every((s) => typeof s === "string"))
        fail(`${CORPUS_FILE} must be a JSON array of strings`);
    const {llama, logs} = await loadLlama({maxThreads: THREADS});
    for (const key of keys.length ? keys : Object.keys(MODELS))
        await makeForModel(key, llama, logs, corpus);
    await llama.dispose();
}

await main();
