#!/usr/bin/env python3
"""PyTorch + transformers + PEFT reference for Residency's QLoRA trainer.

Run it with the venv that setup.sh installs:

    PY=$(scripts/reference/torch/setup.sh | tail -n1)
    $PY scripts/reference/torch/peft_reference.py train  --gguf M.gguf --init-adapter DIR --batches B.json --out DIR
    $PY scripts/reference/torch/peft_reference.py logits --gguf M.gguf [--adapter DIR] --ids IDS.json --out OUT.json
    $PY scripts/reference/torch/peft_reference.py bench  --gguf M.gguf --seq-len 512 --rank 16 --alpha 32 \
        --accum 8 --steps 3 --out BENCH.json

Everything runs on the CPU in fp32: transformers dequantizes the GGUF weights to fp32
(`AutoModelForCausalLM.from_pretrained(dir, gguf_file=name, dtype=torch.float32)`), the model is in
eval mode (no dropout anywhere), `torch.manual_seed(0)` and `torch.use_deterministic_algorithms(True)`
are set, and `--threads` (default 2) sets the intra-op thread count. There is no attention mask:
every row of a micro-batch has the same length and attends causally to all earlier positions.

Adapter folders are PEFT folders: `adapter_config.json` + `adapter_model.safetensors`, tensor names
`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight` (lora_A [r, in], lora_B [out, r]).
PEFT ignores tensors whose names do not match a module without failing, so every load here checks
that the file's tensor names equal the model's LoRA parameter names, both ways, and that every value
in the model equals the file's value after loading. Any mismatch stops the run with exit status 1.

Input formats
-------------
train --batches FILE.json:
    {"steps": [{"lr": 1e-4,
                "micro_batches": [{"input_ids": [[int, ...], ...], "labels": [[int, ...], ...]}, ...]},
               ...],
     "adamw": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
     "max_grad_norm": 1.0}                      # or null: no clipping
  input_ids/labels are [batch, seq]; labels follow the HF convention (aligned with input_ids, -100 =
  no loss at that position; the prediction at position t is scored against labels[t + 1]).
  A micro-batch's loss is the mean cross-entropy over its target tokens (what HF computes with
  `labels=`). Per step: backward of loss / len(micro_batches) for each micro-batch, then
  clip_grad_norm_(lora params, max_grad_norm) unless null, then AdamW with the step's lr, then
  zero_grad. AdamW state persists across steps (torch.optim.AdamW, weight decay decoupled).

logits --ids FILE.json:
    {"sequences": [[int, ...], ...]}              # each sequence is one forward pass (batch 1)

Output formats
--------------
train --out DIR writes DIR/losses.json and DIR/adapter/ (PEFT save_pretrained, fp32 safetensors):
    {"schema": "residency.torch.train/1",
     "steps": [{"loss": mean of the micro-batch losses,
                "grad_norm": global L2 norm of the LoRA gradients before clipping,
                "lr": the step's lr,
                "micro_batch_losses": [float, ...],
                "target_tokens": [int per micro-batch]}, ...],
     "environment": {...versions, threads...}}
  With --eval-ids IDS.json it also writes DIR/final_logits.json (format below) from the trained
  model as it is in memory, before saving, so a reload of DIR/adapter can be compared against it.

logits --out OUT.json:
    {"schema": "residency.torch.logits/1",
     "model": "file name", "adapter": "path or null", "vocab_size": V,
     "sequences": [{"ids": [int] * T,
                    "argmax": [int] * T,             # argmax of the logits at each position
                    "max_logit": [float] * T,        # logit of that argmax token
                    "logsumexp": [float] * T,        # logsumexp of the logits at each position
                    "next_token_log_prob": [float] * (T - 1),
                                                     # log p(ids[t+1] | ids[..=t]) = logit - logsumexp
                    "last_logits": [float] * V}],    # every raw logit at the last position
     "environment": {...}}
  So a caller can compare (a) the full logits at the last position, (b) the argmax at every position
  (with max_logit - logsumexp as its log-prob, to tell near-ties apart), (c) the log-prob of the
  next actual token at every position. Floats are fp32 values written as JSON numbers.

bench --out FILE.json: see `cmd_bench`; the same numbers are printed on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
from pathlib import Path

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


class ReferenceError(Exception):
    """A problem with the inputs; the message says what to fix."""


# --------------------------------------------------------------------------- setup


def configure_threads(threads: int) -> None:
    """Must run before torch is imported so that OpenMP/MKL pick the thread count up."""
    if threads < 1:
        raise ReferenceError(f"--threads must be at least 1, got {threads}")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF progress bars would bury the log


def init_torch(threads: int):
    import warnings

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # progress bars would bury the log in stderr
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    return torch


def environment(threads: int, attn: str) -> dict:
    import importlib.metadata as md

    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": md.version("transformers"),
        "peft": md.version("peft"),
        "threads": threads,
        "attn_implementation": attn,
        "device": "cpu",
        "dtype": "float32",
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }


def load_model(gguf: Path, attn: str):
    import torch
    from transformers import AutoModelForCausalLM

    if not gguf.is_file():
        raise ReferenceError(f"The model file does not exist: {gguf}")
    with gguf.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ReferenceError(f"This file is not a GGUF model (it does not start with 'GGUF'): {gguf}")
    started = time.monotonic()
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, attn_implementation=attn
    )
    model.eval()  # no dropout anywhere; gradients still flow
    for p in model.parameters():
        p.requires_grad_(False)
    log(f"loaded {gguf.name} ({type(model).__name__}) in {time.monotonic() - started:.1f} s")
    return model


def log(msg: str) -> None:
    print(f"peft_reference: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- adapters


def load_adapter(model, adapter_dir: Path, trainable: bool):
    """PeftModel.from_pretrained plus the check PEFT does not do: every tensor landed."""
    from peft import PeftModel

    check_adapter_config(adapter_dir, trainable)
    peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)
    peft_model.eval()
    check_adapter_loaded(peft_model, adapter_dir)
    return peft_model


def check_adapter_config(adapter_dir: Path, trainable: bool) -> dict:
    config = read_adapter_config(adapter_dir)
    if trainable and float(config.get("lora_dropout", 0.0)) != 0.0:
        raise ReferenceError(
            f"{adapter_dir / ADAPTER_CONFIG} has lora_dropout={config['lora_dropout']}; "
            "the reference trains with dropout 0 so that runs are reproducible"
        )
    return config


def read_adapter_config(adapter_dir: Path) -> dict:
    path = adapter_dir / ADAPTER_CONFIG
    weights = adapter_dir / ADAPTER_WEIGHTS
    if not path.is_file():
        raise ReferenceError(f"The adapter folder has no {ADAPTER_CONFIG}: {adapter_dir}")
    if not weights.is_file():
        raise ReferenceError(f"The adapter folder has no {ADAPTER_WEIGHTS}: {adapter_dir}")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ReferenceError(f"{path} is not valid JSON: {e}") from e
    if config.get("peft_type") != "LORA":
        raise ReferenceError(f"{path} says peft_type={config.get('peft_type')!r}; only LORA adapters are supported")
    return config


def check_adapter_loaded(peft_model, adapter_dir: Path) -> None:
    """Fails unless the file's tensors and the model's LoRA parameters match one to one, value for value."""
    import torch
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file

    in_file = load_file(str(adapter_dir / ADAPTER_WEIGHTS))
    in_model = get_peft_model_state_dict(peft_model)
    only_file = sorted(set(in_file) - set(in_model))
    only_model = sorted(set(in_model) - set(in_file))
    problems = []
    if only_file:
        problems.append(
            f"{len(only_file)} tensor(s) in the file match no LoRA parameter of the model "
            f"(PEFT ignored them), e.g. {only_file[:3]}"
        )
    if only_model:
        problems.append(
            f"{len(only_model)} LoRA parameter(s) of the model have no tensor in the file "
            f"(they kept PEFT's initial values), e.g. {only_model[:3]}"
        )
    for name in sorted(set(in_file) & set(in_model)):
        want, got = in_file[name], in_model[name]
        if tuple(want.shape) != tuple(got.shape):
            problems.append(f"{name}: shape {tuple(want.shape)} in the file, {tuple(got.shape)} in the model")
        elif not torch.equal(want.to(got.dtype), got):
            diff = (want.to(got.dtype) - got).abs().max().item()
            problems.append(f"{name}: values differ after loading (max abs diff {diff:g})")
    if problems:
        raise ReferenceError(
            f"The adapter in {adapter_dir} did not load completely:\n  " + "\n  ".join(problems[:10])
            + (f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        )
    log(f"adapter {adapter_dir}: all {len(in_file)} tensors loaded and equal to the file")


def lora_parameters(peft_model) -> list:
    params = [(n, p) for n, p in peft_model.named_parameters() if p.requires_grad]
    not_lora = [n for n, _ in params if "lora_" not in n]
    if not_lora:
        raise ReferenceError(f"Parameters other than LoRA ones would be trained: {not_lora[:3]}")
    if not params:
        raise ReferenceError("The adapter has no trainable LoRA parameters")
    return params


# --------------------------------------------------------------------------- inputs


def read_json(path: Path, what: str):
    if not path.is_file():
        raise ReferenceError(f"The {what} file does not exist: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ReferenceError(f"The {what} file is not valid JSON: {path}: {e}") from e


def int_matrix(value, where: str, vocab_size: int | None, allow_ignore: bool) -> list[list[int]]:
    """Checks a [batch, seq] list of ints; returns it unchanged."""
    if not isinstance(value, list) or not value or not all(isinstance(r, list) for r in value):
        raise ReferenceError(f"{where} must be a non-empty list of rows ([batch, seq])")
    width = len(value[0])
    if width == 0:
        raise ReferenceError(f"{where} has an empty row")
    for i, row in enumerate(value):
        if len(row) != width:
            raise ReferenceError(f"{where}: row {i} has {len(row)} tokens, row 0 has {width}; all rows must be equally long")
        for t in row:
            if not isinstance(t, int) or isinstance(t, bool):
                raise ReferenceError(f"{where}: row {i} holds {t!r}, not an integer token id")
            if allow_ignore and t == -100:
                continue
            if t < 0 or (vocab_size is not None and t >= vocab_size):
                raise ReferenceError(f"{where}: token id {t} in row {i} is outside the vocabulary (0..{vocab_size})")
    return value


def parse_batches(doc, vocab_size: int) -> dict:
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list) or not doc["steps"]:
        raise ReferenceError('The batches file needs a non-empty "steps" list')
    adamw = doc.get("adamw")
    if not isinstance(adamw, dict):
        raise ReferenceError('The batches file needs an "adamw" object (beta1, beta2, eps, weight_decay)')
    try:
        adamw = {k: float(adamw[k]) for k in ("beta1", "beta2", "eps", "weight_decay")}
    except (KeyError, TypeError, ValueError) as e:
        raise ReferenceError(f'"adamw" needs numbers beta1, beta2, eps, weight_decay: {e}') from e
    if "max_grad_norm" not in doc:
        raise ReferenceError('The batches file needs "max_grad_norm" (a number, or null for no clipping)')
    max_grad_norm = doc["max_grad_norm"]
    if max_grad_norm is not None and (not isinstance(max_grad_norm, (int, float)) or max_grad_norm <= 0):
        raise ReferenceError(f'"max_grad_norm" must be a positive number or null, got {max_grad_norm!r}')
    steps = []
    for s, step in enumerate(doc["steps"]):
        where = f"steps[{s}]"
        if not isinstance(step, dict) or not isinstance(step.get("lr"), (int, float)) or isinstance(step.get("lr"), bool):
            raise ReferenceError(f'{where} needs a numeric "lr"')
        mbs = step.get("micro_batches")
        if not isinstance(mbs, list) or not mbs:
            raise ReferenceError(f'{where} needs a non-empty "micro_batches" list')
        parsed = []
        for m, mb in enumerate(mbs):
            w = f"{where}.micro_batches[{m}]"
            if not isinstance(mb, dict):
                raise ReferenceError(f"{w} must be an object with input_ids and labels")
            ids = int_matrix(mb.get("input_ids"), f"{w}.input_ids", vocab_size, allow_ignore=False)
            labels = int_matrix(mb.get("labels"), f"{w}.labels", vocab_size, allow_ignore=True)
            if len(ids) != len(labels) or len(ids[0]) != len(labels[0]):
                raise ReferenceError(
                    f"{w}: input_ids is {len(ids)}x{len(ids[0])} but labels is {len(labels)}x{len(labels[0])}"
                )
            targets = sum(1 for row in labels for t in row[1:] if t != -100)
            if targets == 0:
                raise ReferenceError(f"{w} has no target token (every label after position 0 is -100); its loss is undefined")
            parsed.append((ids, labels, targets))
        steps.append({"lr": float(step["lr"]), "micro_batches": parsed})
    return {"steps": steps, "adamw": adamw, "max_grad_norm": max_grad_norm}


def parse_sequences(doc, vocab_size: int) -> list[list[int]]:
    if not isinstance(doc, dict) or "sequences" not in doc:
        raise ReferenceError('The ids file needs a "sequences" list of token id lists')
    seqs = doc["sequences"]
    if not isinstance(seqs, list) or not seqs:
        raise ReferenceError('"sequences" must be a non-empty list')
    return [int_matrix([s], f"sequences[{i}]", vocab_size, allow_ignore=False)[0] for i, s in enumerate(seqs)]


# --------------------------------------------------------------------------- math


def causal_lm_loss(logits, labels):
    """Mean cross-entropy over target tokens, HF convention: logits[t] predicts labels[t + 1]."""
    import torch.nn.functional as F

    shifted_logits = logits[:, :-1, :].reshape(-1, logits.shape[-1]).float()
    shifted_labels = labels[:, 1:].reshape(-1)
    return F.cross_entropy(shifted_logits, shifted_labels, ignore_index=-100, reduction="mean")


def global_grad_norm(params) -> float:
    import torch

    norms = [torch.linalg.vector_norm(p.grad.detach(), 2) for p in params if p.grad is not None]
    if not norms:
        raise ReferenceError("No LoRA parameter received a gradient")
    return torch.linalg.vector_norm(torch.stack(norms), 2).item()


def sequence_logits(model, seqs: list[list[int]]) -> list[dict]:
    import torch

    out = []
    with torch.no_grad():
        for ids in seqs:
            logits = model(input_ids=torch.tensor([ids], dtype=torch.long)).logits[0].float()
            lse = torch.logsumexp(logits, dim=-1)
            max_logit, argmax = logits.max(dim=-1)
            nxt = torch.tensor(ids[1:], dtype=torch.long)
            next_lp = logits[:-1].gather(1, nxt[:, None])[:, 0] - lse[:-1]
            out.append({
                "ids": ids,
                "argmax": argmax.tolist(),
                "max_logit": max_logit.tolist(),
                "logsumexp": lse.tolist(),
                "next_token_log_prob": next_lp.tolist(),
                "last_logits": logits[-1].tolist(),
            })
    return out


def write_json(path: Path, doc) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, allow_nan=False))
    tmp.replace(path)


# --------------------------------------------------------------------------- commands


def cmd_train(args) -> None:
    torch = init_torch(args.threads)
    doc = read_json(args.batches, "batches")
    check_adapter_config(args.init_adapter, trainable=True)  # before the slow model load
    model = load_model(args.gguf, args.attn)
    plan = parse_batches(doc, model.config.vocab_size)
    eval_seqs = parse_sequences(read_json(args.eval_ids, "ids"), model.config.vocab_size) if args.eval_ids else None
    peft_model = load_adapter(model, args.init_adapter, trainable=True)
    named = lora_parameters(peft_model)
    params = [p for _, p in named]
    adamw = plan["adamw"]
    optimizer = torch.optim.AdamW(
        params, lr=plan["steps"][0]["lr"], betas=(adamw["beta1"], adamw["beta2"]),
        eps=adamw["eps"], weight_decay=adamw["weight_decay"],
    )
    log(f"training {len(named)} LoRA tensors ({sum(p.numel() for p in params):,} values), {len(plan['steps'])} steps")

    records = []
    for s, step in enumerate(plan["steps"]):
        started = time.monotonic()
        n = len(step["micro_batches"])
        micro_losses, targets = [], []
        for ids, labels, n_targets in step["micro_batches"]:
            input_ids = torch.tensor(ids, dtype=torch.long)
            logits = peft_model(input_ids=input_ids).logits
            loss = causal_lm_loss(logits, torch.tensor(labels, dtype=torch.long))
            (loss / n).backward()
            micro_losses.append(loss.item())
            targets.append(n_targets)
        if plan["max_grad_norm"] is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, plan["max_grad_norm"]).item()
        else:
            grad_norm = global_grad_norm(params)
        for group in optimizer.param_groups:
            group["lr"] = step["lr"]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss = sum(micro_losses) / n
        if not math.isfinite(loss) or not math.isfinite(grad_norm):
            raise ReferenceError(f"step {s}: loss {loss} / grad norm {grad_norm} is not finite")
        records.append({"loss": loss, "grad_norm": grad_norm, "lr": step["lr"],
                        "micro_batch_losses": micro_losses, "target_tokens": targets})
        log(f"step {s}: loss {loss:.6f} grad_norm {grad_norm:.6f} lr {step['lr']:g} ({time.monotonic() - started:.1f} s)")

    env = environment(args.threads, args.attn)
    args.out.mkdir(parents=True, exist_ok=True)
    if eval_seqs is not None:
        write_json(args.out / "final_logits.json", logits_doc(args, peft_model, eval_seqs, "in-memory after training", env))
    peft_model.save_pretrained(str(args.out / "adapter"))
    write_json(args.out / "losses.json", {"schema": "residency.torch.train/1", "model": args.gguf.name,
                                          "init_adapter": str(args.init_adapter), "steps": records,
                                          "environment": env})
    log(f"wrote {args.out / 'losses.json'} and {args.out / 'adapter'}")


def logits_doc(args, model, seqs, adapter_label, env) -> dict:
    return {"schema": "residency.torch.logits/1", "model": args.gguf.name, "adapter": adapter_label,
            "vocab_size": model.config.vocab_size, "sequences": sequence_logits(model, seqs), "environment": env}


def cmd_logits(args) -> None:
    init_torch(args.threads)
    doc = read_json(args.ids, "ids")
    if args.adapter is not None:
        check_adapter_config(args.adapter, trainable=False)  # before the slow model load
    model = load_model(args.gguf, args.attn)
    seqs = parse_sequences(doc, model.config.vocab_size)
    if args.adapter is not None:
        model = load_adapter(model, args.adapter, trainable=False)
    adapter_label = str(args.adapter) if args.adapter is not None else None
    write_json(args.out, logits_doc(args, model, seqs, adapter_label, environment(args.threads, args.attn)))
    log(f"wrote {args.out} ({len(seqs)} sequences)")


def vm_hwm_kib() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_vm_hwm() -> bool:
    """Writing 5 to clear_refs resets the peak RSS counter (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def cmd_bench(args) -> None:
    """LoRA on q,k,v,o,gate,up,down; batch 1; --accum micro-batches per step of --seq-len random ids, all
    labels active; AdamW. --warmup steps run first and are not timed. tokens/s = trained tokens
    (seq_len * accum * steps) / wall seconds of the measured steps.

    Peak RSS: ru_maxrss covers the whole process, including dequantizing the GGUF at load time;
    peak_rss_training_mib is /proc/self/status VmHWM after it was reset once the model was loaded,
    so it shows the training peak alone."""
    torch = init_torch(args.threads)
    from peft import LoraConfig, get_peft_model

    for name, value in (("--seq-len", args.seq_len), ("--rank", args.rank), ("--accum", args.accum), ("--steps", args.steps)):
        if value < 1:
            raise ReferenceError(f"{name} must be at least 1, got {value}")
    load_started = time.monotonic()
    model = load_model(args.gguf, args.attn)
    load_s = time.monotonic() - load_started
    peak_after_load = vm_hwm_kib()
    config = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0, target_modules=LORA_TARGETS,
                        bias="none", task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    peft_model.eval()
    params = [p for _, p in lora_parameters(peft_model)]
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    gen = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    hwm_reset = reset_vm_hwm()

    def one_step() -> float:
        losses = []
        for _ in range(args.accum):
            ids = torch.randint(0, vocab, (1, args.seq_len), generator=gen)
            loss = causal_lm_loss(peft_model(input_ids=ids).logits, ids)
            (loss / args.accum).backward()
            losses.append(loss.item())
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return sum(losses) / len(losses)

    for w in range(args.warmup):
        started = time.monotonic()
        one_step()
        log(f"warm-up step {w}: {time.monotonic() - started:.1f} s")
    step_s = []
    for s in range(args.steps):
        started = time.monotonic()
        loss = one_step()
        step_s.append(time.monotonic() - started)
        log(f"step {s}: loss {loss:.4f}, {step_s[-1]:.1f} s")
    tokens = args.seq_len * args.accum * args.steps
    hwm = vm_hwm_kib()
    result = {
        "schema": "residency.torch.bench/1",
        "model": args.gguf.name,
        "seq_len": args.seq_len, "rank": args.rank, "alpha": args.alpha, "accum": args.accum,
        "batch": 1, "steps_measured": args.steps, "warmup_steps": args.warmup,
        "lora_targets": LORA_TARGETS,
        "trainable_params": sum(p.numel() for p in params),
        "load_s": round(load_s, 2),
        "step_s": [round(x, 3) for x in step_s],
        "trained_tokens": tokens,
        "tokens_per_s": round(tokens / sum(step_s), 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_after_load_mib": round(peak_after_load / 1024, 1) if peak_after_load is not None else None,
        "peak_rss_training_mib": round(hwm / 1024, 1) if hwm is not None and hwm_reset else None,
        "vm_hwm_mib": round(hwm / 1024, 1) if hwm is not None else None,
        "vm_hwm_was_reset_after_load": hwm_reset,
        "loadavg_at_end": list(os.getloadavg()),
        "environment": environment(args.threads, args.attn),
    }
    write_json(args.out, result)
    print(f"{args.gguf.name}: {result['tokens_per_s']} tokens/s over {args.steps} steps "
          f"(seq {args.seq_len}, r {args.rank}, accum {args.accum}, {args.threads} threads); "
          f"peak RSS {result['peak_rss_mib']} MiB (ru_maxrss), training peak {result['peak_rss_training_mib']} MiB "
          f"(VmHWM since load), {result['peak_rss_after_load_mib']} MiB after load")


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--gguf", type=Path, required=True, help="the GGUF model file")
    common.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    common.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa",
                        help="transformers attention implementation (default sdpa)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", parents=[common], help="train an initial adapter on given batches")
    t.add_argument("--init-adapter", type=Path, required=True, help="PEFT folder with the initial adapter")
    t.add_argument("--batches", type=Path, required=True, help="JSON file with steps and micro-batches")
    t.add_argument("--out", type=Path, required=True, help="folder for losses.json and adapter/")
    t.add_argument("--eval-ids", type=Path, help="optional ids JSON: also write out/final_logits.json")
    t.set_defaults(run=cmd_train)

    lg = sub.add_parser("logits", parents=[common], help="logits of given sequences, with or without an adapter")
    lg.add_argument("--adapter", type=Path, help="PEFT adapter folder (default: base model only)")
    lg.add_argument("--ids", type=Path, required=True, help='JSON {"sequences": [[ids...], ...]}')
    lg.add_argument("--out", type=Path, required=True, help="output JSON file")
    lg.set_defaults(run=cmd_logits)

    b = sub.add_parser("bench", parents=[common], help="training throughput and peak memory")
    b.add_argument("--seq-len", type=int, default=512)
    b.add_argument("--rank", type=int, default=16)
    b.add_argument("--alpha", type=float, default=32)
    b.add_argument("--accum", type=int, default=8)
    b.add_argument("--steps", type=int, default=3, help="measured optimizer steps")
    b.add_argument("--warmup", type=int, default=1, help="optimizer steps run first and not measured")
    b.add_argument("--out", type=Path, required=True, help="output JSON file")
    b.set_defaults(run=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_threads(args.threads)
        args.run(args)
    except ReferenceError as e:
        print(f"peft_reference: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
