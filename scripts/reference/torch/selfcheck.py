#!/usr/bin/env python3
"""Self-check of peft_reference.py on SmolLM2-135M, without any Rust code.

    PY=$(scripts/reference/torch/setup.sh | tail -n1)
    $PY scripts/reference/torch/selfcheck.py [--gguf PATH] [--work DIR] [--threads 2]

It writes an initial LoRA adapter (r=8 on q,k,v,o,gate,up,down, random A and nonzero random B) in
PEFT's file format with the tensor names our Rust code writes, a batches file of 2 steps x 2
micro-batches (~32 tokens, real token ids from tests/data/llamacpp/smollm2/tokens.json, the same data
in both steps), runs `train` and `logits` as subprocesses and checks:

  1. the loss of step 2 is below the loss of step 1 (the update learned the repeated data);
  2. the saved adapter, reloaded by `logits`, gives the logits the trained model gave in memory;
  3. the initial adapter changes the base model's logits (so it is applied, not ignored);
  4. the micro-batch losses `train` reports at step 1 equal -mean(next_token_log_prob) over the target
     positions that `logits` reports for the same rows with the initial adapter (loss definition,
     label shift and -100 masking agree between the two commands);
  5. the saved adapter has exactly the initial adapter's tensor names and shapes, with new values;
  6. the base model (transformers' GGUF dequantization) gives llama.cpp's log-probabilities on its
     f32 copy of the same GGUF (tests/data/llamacpp/smollm2/logits_f32.json) at the last position;
  7. adapters with a misnamed tensor, a missing tensor or lora_dropout > 0 (for train) are rejected.

Exit status 0 when every check passes; each check prints PASS/FAIL with the measured numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
REFERENCE = HERE / "peft_reference.py"
SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"
TOKENS = REPO / "tests/data/llamacpp/smollm2/tokens.json"
LLAMACPP_F32 = REPO / "tests/data/llamacpp/smollm2/logits_f32.json"

# GGUF tensor name (blk.N.<this>.weight) -> PEFT module path inside layer N
MODULES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
RANK, ALPHA = 8, 16
SEQ = 32


def fixture_path() -> Path:
    cache = Path(os.environ.get("RESIDENCY_FIXTURES", Path.home() / ".cache/residency/fixtures"))
    path = cache / SMOLLM2
    if not path.is_file():
        sys.exit(f"selfcheck: {path} is missing; fetch it with: python3 scripts/fixtures.py smollm2")
    return path


def linear_shapes(gguf_path: Path) -> dict[str, tuple[int, int]]:
    """PEFT module name -> (out_features, in_features), read from the GGUF's tensor table."""
    from gguf import GGUFReader

    shapes = {}
    for t in GGUFReader(str(gguf_path)).tensors:
        parts = t.name.split(".")  # blk.N.attn_q.weight
        if len(parts) == 4 and parts[0] == "blk" and parts[2] in MODULES and parts[3] == "weight":
            n_in, n_out = (int(x) for x in t.shape[:2])  # GGUF lists ne0 (the input dim) first
            shapes[f"base_model.model.model.layers.{parts[1]}.{MODULES[parts[2]]}"] = (n_out, n_in)
    if not shapes:
        sys.exit(f"selfcheck: found no attention/MLP weights in {gguf_path}")
    return shapes


def write_adapter(folder: Path, tensors: dict, dropout: float = 0.0) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": RANK, "lora_alpha": ALPHA,
        "lora_dropout": dropout, "target_modules": sorted({k.split(".")[-1] for k in MODULES.values()}),
        "bias": "none", "fan_in_fan_out": False, "use_rslora": False, "inference_mode": False,
        "base_model_name_or_path": None,
    }
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "adapter_model.safetensors"))


def init_tensors(shapes) -> dict:
    import torch

    gen = torch.Generator().manual_seed(1234)
    tensors = {}
    for module, (n_out, n_in) in sorted(shapes.items()):
        tensors[f"{module}.lora_A.weight"] = torch.randn(RANK, n_in, generator=gen) / n_in ** 0.5
        tensors[f"{module}.lora_B.weight"] = torch.randn(n_out, RANK, generator=gen) * 0.01
    return tensors


def token_rows() -> list[list[int]]:
    """Three rows of SEQ real SmolLM2 token ids (from llama.cpp's tokenization of the test corpus)."""
    entries = json.loads(TOKENS.read_text())["entries"]
    stream = [t for e in entries for t in e["ids_special"]]
    if len(stream) < 3 * SEQ:
        sys.exit(f"selfcheck: {TOKENS} holds only {len(stream)} tokens")
    return [stream[i * SEQ:(i + 1) * SEQ] for i in range(3)]


def labels_for(row: list[int]) -> list[int]:
    return [-100] * 8 + row[8:]  # first 8 positions are "prompt": no loss


def run(cmd: list[str], expect_ok: bool = True) -> subprocess.CompletedProcess:
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    print(f"  $ {' '.join(cmd[1:3])} ... -> exit {proc.returncode} ({time.monotonic() - started:.0f} s)", flush=True)
    if expect_ok and proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(f"selfcheck: command failed: {' '.join(cmd)}")
    return proc


class Checks:
    def __init__(self):
        self.failed = []

    def check(self, name: str, ok: bool, detail: str) -> None:
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
        if not ok:
            self.failed.append(name)


def max_abs_diff(a, b) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gguf", type=Path, help=f"default: the fixture cache's {SMOLLM2}")
    ap.add_argument("--work", type=Path, help="working folder (default: a new temporary folder)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    from safetensors.torch import load_file

    gguf = args.gguf or fixture_path()
    work = args.work or Path(tempfile.mkdtemp(prefix="peft-selfcheck-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"selfcheck: model {gguf}, work folder {work}", flush=True)
    base = [sys.executable, str(REFERENCE)]
    common = ["--gguf", str(gguf), "--threads", str(args.threads)]

    shapes = linear_shapes(gguf)
    init = init_tensors(shapes)
    write_adapter(work / "init", init)
    rows = token_rows()
    micro_batches = [
        {"input_ids": [rows[0]], "labels": [labels_for(rows[0])]},
        {"input_ids": [rows[1], rows[2]], "labels": [labels_for(rows[1]), labels_for(rows[2])]},
    ]
    batches = {"steps": [{"lr": 1e-3, "micro_batches": micro_batches}] * 2,
               "adamw": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
               "max_grad_norm": 1.0}
    (work / "batches.json").write_text(json.dumps(batches))
    llama_prompts = json.loads(LLAMACPP_F32.read_text())["prompts"] if LLAMACPP_F32.is_file() else []
    (work / "ids.json").write_text(json.dumps({"sequences": rows + [p["token_ids"] for p in llama_prompts]}))

    run(base + ["train"] + common + ["--init-adapter", str(work / "init"), "--batches", str(work / "batches.json"),
                                     "--eval-ids", str(work / "ids.json"), "--out", str(work / "trained")])
    run(base + ["logits"] + common + ["--adapter", str(work / "trained/adapter"), "--ids", str(work / "ids.json"),
                                      "--out", str(work / "reloaded.json")])
    run(base + ["logits"] + common + ["--adapter", str(work / "init"), "--ids", str(work / "ids.json"),
                                      "--out", str(work / "init_logits.json")])
    run(base + ["logits"] + common + ["--ids", str(work / "ids.json"), "--out", str(work / "base_logits.json")])

    c = Checks()
    losses = json.loads((work / "trained/losses.json").read_text())["steps"]
    c.check("1 loss decreases on repeated data", losses[1]["loss"] < losses[0]["loss"],
            f"step losses {[round(s['loss'], 5) for s in losses]}, grad norms {[round(s['grad_norm'], 5) for s in losses]}")

    mem = json.loads((work / "trained/final_logits.json").read_text())["sequences"]
    rel = json.loads((work / "reloaded.json").read_text())["sequences"]
    d_last = max(max_abs_diff(a["last_logits"], b["last_logits"]) for a, b in zip(mem, rel))
    d_lp = max(max_abs_diff(a["next_token_log_prob"], b["next_token_log_prob"]) for a, b in zip(mem, rel))
    same_argmax = all(a["argmax"] == b["argmax"] for a, b in zip(mem, rel))
    c.check("2 reloaded adapter gives the in-memory logits", d_last <= 1e-5 and d_lp <= 1e-5 and same_argmax,
            f"max |diff| last-position logits {d_last:.3g}, next-token log-probs {d_lp:.3g}, argmax equal: {same_argmax}")

    ini = json.loads((work / "init_logits.json").read_text())["sequences"]
    bas = json.loads((work / "base_logits.json").read_text())["sequences"]
    d_adapter = max(max_abs_diff(a["last_logits"], b["last_logits"]) for a, b in zip(ini, bas))
    d_trained = max(max_abs_diff(a["last_logits"], b["last_logits"]) for a, b in zip(rel, ini))
    c.check("3 initial adapter changes the base logits", d_adapter > 1e-3,
            f"max |diff| last-position logits with/without the initial adapter {d_adapter:.3g}; "
            f"trained vs initial {d_trained:.3g}")

    # rows[0] is micro-batch 0; rows[1], rows[2] are micro-batch 1 (mean over both rows' targets).
    def ce(seq_indices):
        vals = [-ini[i]["next_token_log_prob"][t] for i in seq_indices for t in range(7, SEQ - 1)]
        return sum(vals) / len(vals)
    expected = [ce([0]), ce([1, 2])]
    got = losses[0]["micro_batch_losses"]
    d_loss = max_abs_diff(expected, got)
    c.check("4 train's step-1 losses match logits' next-token log-probs", d_loss <= 1e-4,
            f"train {[round(x, 6) for x in got]} vs from logits {[round(x, 6) for x in expected]} (max |diff| {d_loss:.3g}); "
            f"target tokens {losses[0]['target_tokens']}")

    saved = load_file(str(work / "trained/adapter/adapter_model.safetensors"))
    same_names = sorted(saved) == sorted(init)
    same_shapes = same_names and all(tuple(saved[k].shape) == tuple(init[k].shape) for k in init)
    changed = same_shapes and sum(not torch.equal(saved[k], init[k]) for k in init)
    c.check("5 saved adapter keeps the names and shapes, with new values", same_shapes and changed == len(init),
            f"{len(saved)} tensors saved, {len(init)} initial, names equal: {same_names}, "
            f"{changed} of {len(init)} changed, dtypes {sorted({str(v.dtype) for v in saved.values()})}")

    # llama.cpp on an f32 copy of the same GGUF, f32 KV cache: natural-log probabilities at the last position.
    if llama_prompts:
        worst, worst_name, top1_equal = 0.0, "", 0
        for i, prompt in enumerate(llama_prompts):
            mine = bas[len(rows) + i]
            lse = mine["logsumexp"][-1]
            lp = {t["id"]: t["logprob"] for t in prompt["top"]}
            stride = prompt["sampled_ids_stride"]
            lp.update({k * stride: v for k, v in enumerate(prompt["sampled_logprobs"]) if v is not None})
            d = max(abs(mine["last_logits"][tok] - lse - ref) for tok, ref in lp.items())
            top1_equal += mine["argmax"][-1] == prompt["top"][0]["id"]
            if d > worst:
                worst, worst_name = d, prompt["name"]
        c.check("6 base model matches llama.cpp (f32 copy) at the last position", worst <= 1e-3 and top1_equal == len(llama_prompts),
                f"{len(llama_prompts)} prompts, top-20 + every {llama_prompts[0]['sampled_ids_stride']}th token: "
                f"max |diff| of log-probs {worst:.3g} ({worst_name}); same argmax on {top1_equal}/{len(llama_prompts)}")
    else:
        c.check("6 base model matches llama.cpp (f32 copy)", False, f"{LLAMACPP_F32} is missing")

    bad = dict(init)
    victim = next(k for k in sorted(bad) if ".q_proj.lora_A" in k)
    bad[victim.replace("q_proj", "qq_proj")] = bad.pop(victim)
    write_adapter(work / "misnamed", bad)
    missing = {k: v for k, v in init.items() if k != victim}
    write_adapter(work / "missing", missing)
    write_adapter(work / "dropout", init, dropout=0.1)
    p1 = run(base + ["logits"] + common + ["--adapter", str(work / "misnamed"), "--ids", str(work / "ids.json"),
                                           "--out", str(work / "bad.json")], expect_ok=False)
    p2 = run(base + ["logits"] + common + ["--adapter", str(work / "missing"), "--ids", str(work / "ids.json"),
                                           "--out", str(work / "bad.json")], expect_ok=False)
    p3 = run(base + ["train"] + common + ["--init-adapter", str(work / "dropout"), "--batches",
                                          str(work / "batches.json"), "--out", str(work / "bad-train")], expect_ok=False)
    ok1 = p1.returncode == 1 and "match no LoRA parameter" in p1.stderr
    ok2 = p2.returncode == 1 and "have no tensor in the file" in p2.stderr
    ok3 = p3.returncode == 1 and "lora_dropout" in p3.stderr
    c.check("7 bad adapters are rejected", ok1 and ok2 and ok3 and not (work / "bad.json").exists(),
            f"misnamed -> exit {p1.returncode}, missing -> exit {p2.returncode}, dropout 0.1 -> exit {p3.returncode}; "
            f"messages: {[p.stderr.strip().splitlines()[-1][:160] if p.stderr.strip() else '' for p in (p1, p2, p3)]}")

    if c.failed:
        print(f"selfcheck: FAILED {len(c.failed)} check(s): {c.failed}")
        return 1
    print("selfcheck: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
