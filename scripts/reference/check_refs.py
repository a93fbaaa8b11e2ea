#!/usr/bin/env python3
"""Check the committed llama.cpp reference files for internal consistency.

    python3 scripts/reference/check_refs.py [--fixtures]

Checks, for every model folder under tests/data/llamacpp/:
- tokens.json covers tests/data/tokenizer-corpus.json entry by entry;
- logits(_f32).json and greedy.json agree on prompts and prompt token ids; BOS is first exactly
  when tokenizer.add_bos; top lists are sorted, hold distinct ids, and their log-probabilities
  are <= 0 and sum (as probabilities) to at most 1; the sampled vector has the documented length
  and agrees with the top list where they overlap;
- greedy steps: each step's token is its own top-1 (greedy), its log-probability matches, only
  the last step may be an end-of-generation token, and the first step agrees with logits.json;
- with --fixtures: the model sha256 recorded in each header matches the fixture cache file.
Standard library only. Exits non-zero with a list of problems.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
problems: list[str] = []


def check(cond: bool, msg: str) -> None:
    if not cond:
        problems.append(msg)


def check_top(where: str, top: list[dict]) -> None:
    ids = [t["id"] for t in top]
    lps = [t["logprob"] for t in top]
    check(len(set(ids)) == len(ids), f"{where}: repeated ids in top list")
    check(all(lp is not None and lp <= 1e-6 for lp in lps), f"{where}: log-probability above 0 or null")
    check(all(a >= b - 1e-6 for a, b in zip(lps, lps[1:])), f"{where}: top list not sorted")
    check(sum(math.exp(lp) for lp in lps if lp is not None) <= 1 + 1e-4, f"{where}: top probabilities sum above 1")


def check_logits(key: str, name: str, d: dict) -> dict:
    where = f"{key}/{name}"
    vocab = d["vocab_size"]
    add_bos = d["tokenizer"]["add_bos"]
    bos = d["tokenizer"]["bos_id"]
    check(d["settings"]["kv_cache_type_k"] == "F32" and d["settings"]["kv_cache_type_v"] == "F32", f"{where}: KV cache not F32")
    check(len(d["prompts"]) >= 5, f"{where}: fewer than 5 prompts")
    out = {}
    for p in d["prompts"]:
        pw = f"{where}[{p['name']}]"
        ids = p["token_ids"]
        check(p["bos_added"] == add_bos, f"{pw}: bos_added disagrees with tokenizer.add_bos")
        # (without add_bos the text itself may start with the BOS id: SmolLM2's <|im_start|> is id 1)
        check(not add_bos or (ids[0] == bos and bos not in ids[1:]), f"{pw}: BOS not first (or repeated) with add_bos")
        check(all(0 <= i < vocab for i in ids), f"{pw}: token id out of range")
        check(len(p["top"]) == d["top_k"], f"{pw}: top list has {len(p['top'])} entries, expected {d['top_k']}")
        check_top(pw, p["top"])
        stride = p["sampled_ids_stride"]
        sampled = p["sampled_logprobs"]
        check(len(sampled) == math.ceil(vocab / stride), f"{pw}: sampled_logprobs length {len(sampled)}")
        for t in p["top"]:
            if t["id"] % stride == 0:
                s = sampled[t["id"] // stride]
                check(s is not None and abs(s - t["logprob"]) < 1e-9, f"{pw}: sampled value for id {t['id']} differs from top")
        check(all(s is None or s <= p["top"][0]["logprob"] + 1e-9 for s in sampled), f"{pw}: a sampled id beats top-1")
        out[p["name"]] = p
    return out


def check_greedy(key: str, d: dict, logits: dict) -> None:
    where = f"{key}/greedy.json"
    names = [p["name"] for p in d["prompts"]]
    check(names == list(logits), f"{where}: prompts {names} differ from logits.json {list(logits)}")
    for p in d["prompts"]:
        pw = f"{where}[{p['name']}]"
        lp = logits.get(p["name"])
        check(lp is not None and lp["token_ids"] == p["token_ids"], f"{pw}: prompt ids differ from logits.json")
        steps = p["steps"]
        check([s["token"] for s in steps] == p["generated_ids"], f"{pw}: steps and generated_ids differ")
        check(0 < len(steps) <= d["max_new_tokens"], f"{pw}: {len(steps)} steps")
        check(p["stopped_at_eog"] or len(steps) == d["max_new_tokens"], f"{pw}: stopped early without EOG")
        for i, s in enumerate(steps):
            sw = f"{pw} step {i}"
            check_top(sw, s["top"])
            check(s["top"][0]["id"] == s["token"], f"{sw}: token {s['token']} is not the top-1 {s['top'][0]['id']}")
            check(abs(s["top"][0]["logprob"] - s["logprob"]) < 1e-9, f"{sw}: logprob differs from top-1")
        if lp is not None and steps:
            check(steps[0]["top"] == lp["top"][: len(steps[0]["top"])], f"{pw}: first step differs from logits.json top")


def load(path: Path) -> dict | None:
    if not path.is_file():
        problems.append(f"missing {path.relative_to(ROOT)}")
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def main(argv: list[str]) -> int:
    with_fixtures = "--fixtures" in argv
    corpus = json.loads((DATA / "tokenizer-corpus.json").read_text(encoding="utf-8"))
    check(len(corpus) >= 30, "corpus has fewer than 30 entries")
    cache = Path(os.environ.get("RESIDENCY_FIXTURES") or Path.home() / ".cache" / "residency" / "fixtures")
    dirs = sorted(p for p in (DATA / "llamacpp").iterdir() if p.is_dir())
    check(len(dirs) > 0, "no model folders under tests/data/llamacpp")
    for d in dirs:
        key = d.name
        tokens, logits_d, greedy_d = (load(d / n) for n in ("tokens.json", "logits.json", "greedy.json"))
        if tokens is None or logits_d is None or greedy_d is None:
            continue
        texts = [e["text"] for e in tokens["entries"]]
        check(texts == corpus, f"{key}/tokens.json: texts differ from the corpus file")
        for e in tokens["entries"]:
            if "<" not in e["text"]:
                check(e["ids_plain"] == e["ids_special"], f"{key}/tokens.json[{e['index']}]: plain and special differ without markup")
        logits = check_logits(key, "logits.json", logits_d)
        check_greedy(key, greedy_d, logits)
        f32 = d / "logits_f32.json"
        if f32.exists():
            lf = check_logits(key, "logits_f32.json", json.loads(f32.read_text(encoding="utf-8")))
            check({n: p["token_ids"] for n, p in lf.items()} == {n: p["token_ids"] for n, p in logits.items()},
                  f"{key}/logits_f32.json: prompts or ids differ from logits.json")
        if with_fixtures:
            model = tokens["model"]
            path = cache / model["file"]
            check(path.is_file() and sha256(path) == model["sha256"], f"{key}: fixture {path} missing or sha256 differs")
        print(f"{key}: checked", file=sys.stderr)
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    print(f"{len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
