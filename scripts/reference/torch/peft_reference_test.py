#!/usr/bin/env python3
"""Unit tests of peft_reference.py that need no fixture (a tiny random Llama stands in for a model).

    PY=$(scripts/reference/torch/setup.sh | tail -n1)
    $PY -m unittest discover -s scripts/reference/torch -p '*_test.py' -v
"""

from __future__ import annotations

import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peft_reference as ref  # noqa: E402

ref.configure_threads(2)
torch = ref.init_torch(2)


def valid_batches():
    return {
        "steps": [{"lr": 1e-3, "micro_batches": [
            {"input_ids": [[5, 6, 7, 8]], "labels": [[-100, 6, 7, 8]]},
            {"input_ids": [[1, 2, 3], [4, 5, 6]], "labels": [[-100, -100, 3], [4, 5, 6]]},
        ]}],
        "adamw": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
        "max_grad_norm": 1.0,
    }


class ParseTests(unittest.TestCase):
    def test_valid_batches_count_targets(self):
        plan = ref.parse_batches(valid_batches(), vocab_size=10)
        self.assertEqual([t for _, _, t in plan["steps"][0]["micro_batches"]], [3, 1 + 2])
        self.assertEqual(plan["max_grad_norm"], 1.0)

    def test_null_max_grad_norm_is_allowed(self):
        doc = valid_batches()
        doc["max_grad_norm"] = None
        self.assertIsNone(ref.parse_batches(doc, vocab_size=10)["max_grad_norm"])

    def assert_rejected(self, doc, fragment):
        with self.assertRaises(ref.ReferenceError) as ctx:
            ref.parse_batches(doc, vocab_size=10)
        self.assertIn(fragment, str(ctx.exception))

    def test_rejections(self):
        doc = valid_batches(); del doc["max_grad_norm"]
        self.assert_rejected(doc, "max_grad_norm")
        doc = valid_batches(); doc["max_grad_norm"] = -1
        self.assert_rejected(doc, "positive number")
        doc = valid_batches(); del doc["adamw"]["eps"]
        self.assert_rejected(doc, "adamw")
        doc = valid_batches(); doc["steps"] = []
        self.assert_rejected(doc, "non-empty")
        doc = valid_batches(); doc["steps"][0]["micro_batches"][1]["input_ids"][1] = [4, 5]
        self.assert_rejected(doc, "equally long")
        doc = valid_batches(); doc["steps"][0]["micro_batches"][0]["input_ids"][0][0] = 10
        self.assert_rejected(doc, "outside the vocabulary")
        doc = valid_batches(); doc["steps"][0]["micro_batches"][0]["input_ids"][0][0] = -100
        self.assert_rejected(doc, "outside the vocabulary")  # -100 is only allowed in labels
        doc = valid_batches(); doc["steps"][0]["micro_batches"][0]["labels"][0] = [5, -100, -100, -100]
        self.assert_rejected(doc, "no target token")  # only position 0 is labelled: nothing to predict
        doc = valid_batches(); doc["steps"][0]["micro_batches"][0]["labels"] = [[-100, 6, 7]]
        self.assert_rejected(doc, "labels is 1x3")
        doc = valid_batches(); doc["steps"][0]["micro_batches"][0]["input_ids"][0][1] = True
        self.assert_rejected(doc, "not an integer")
        doc = valid_batches(); doc["steps"][0]["lr"] = "fast"
        self.assert_rejected(doc, '"lr"')

    def test_sequences(self):
        self.assertEqual(ref.parse_sequences({"sequences": [[1, 2], [3]]}, 10), [[1, 2], [3]])
        for bad in ({}, {"sequences": []}, {"sequences": [[]]}, {"sequences": [[1, 99]]}):
            with self.assertRaises(ref.ReferenceError):
                ref.parse_sequences(bad, 10)


class MathTests(unittest.TestCase):
    def test_loss_is_hf_causal_lm_loss(self):
        from transformers.loss.loss_utils import ForCausalLMLoss

        gen = torch.Generator().manual_seed(3)
        logits = torch.randn(2, 6, 11, generator=gen)
        labels = torch.tensor([[-100, -100, 3, 4, 5, 6], [1, 2, -100, 4, 5, -100]])
        mine = ref.causal_lm_loss(logits, labels)
        hf = ForCausalLMLoss(logits, labels, vocab_size=11)
        self.assertTrue(torch.allclose(mine, hf, atol=1e-6), (mine, hf))
        # by hand: position t predicts labels[t + 1]
        lp = torch.log_softmax(logits, -1)
        terms = [-lp[b, t, labels[b, t + 1]] for b in range(2) for t in range(5) if labels[b, t + 1] != -100]
        self.assertAlmostEqual(mine.item(), torch.stack(terms).mean().item(), places=5)

    def test_grad_norm_matches_clip_grad_norm(self):
        params = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(5))]
        for p in params:
            p.grad = torch.randn_like(p)
        mine = ref.global_grad_norm(params)
        clipped_from = torch.nn.utils.clip_grad_norm_(params, 1e9).item()
        self.assertAlmostEqual(mine, clipped_from, places=5)


def tiny_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
    model = LlamaForCausalLM(config).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class AdapterCheckTests(unittest.TestCase):
    def setUp(self):
        from peft import LoraConfig, get_peft_model
        from safetensors.torch import load_file

        self.dir = Path(tempfile.mkdtemp(prefix="peft-ref-test-"))
        config = LoraConfig(r=2, lora_alpha=4, lora_dropout=0.0, target_modules=ref.LORA_TARGETS)
        peft_model = get_peft_model(tiny_model(), config)
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.data.normal_()
        peft_model.save_pretrained(str(self.dir / "good"))
        self.tensors = load_file(str(self.dir / "good" / ref.ADAPTER_WEIGHTS))

    def write_variant(self, name, tensors, **config_changes):
        from safetensors.torch import save_file

        folder = self.dir / name
        folder.mkdir()
        config = json.loads((self.dir / "good" / ref.ADAPTER_CONFIG).read_text())
        config.update(config_changes)
        (folder / ref.ADAPTER_CONFIG).write_text(json.dumps(config))
        save_file(tensors, str(folder / ref.ADAPTER_WEIGHTS))
        return folder

    def test_names_are_pefts_file_names(self):
        self.assertIn("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight", self.tensors)
        self.assertEqual(len(self.tensors), 2 * 7 * 2)

    def test_good_adapter_loads(self):
        model = ref.load_adapter(tiny_model(), self.dir / "good", trainable=True)
        self.assertEqual(len(ref.lora_parameters(model)), len(self.tensors))

    def test_misnamed_tensor_is_rejected(self):
        bad = dict(self.tensors)
        key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
        bad[key.replace("q_proj", "query")] = bad.pop(key)
        folder = self.write_variant("misnamed", bad)
        with self.assertRaises(ref.ReferenceError) as ctx:
            ref.load_adapter(tiny_model(), folder, trainable=False)
        self.assertIn("match no LoRA parameter", str(ctx.exception))
        self.assertIn("have no tensor in the file", str(ctx.exception))

    def test_extra_module_in_config_without_tensors_is_rejected(self):
        # target_modules names a module the file has no tensors for: PEFT would leave it at its init.
        only_attn = {k: v for k, v in self.tensors.items() if ".mlp." not in k}
        folder = self.write_variant("partial", only_attn)
        with self.assertRaises(ref.ReferenceError) as ctx:
            ref.load_adapter(tiny_model(), folder, trainable=False)
        self.assertIn("have no tensor in the file", str(ctx.exception))

    def test_wrong_shape_is_rejected(self):
        bad = dict(self.tensors)
        key = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"
        bad[key] = bad[key].t().contiguous()
        folder = self.write_variant("transposed", bad)
        with self.assertRaises(Exception):  # PEFT itself raises on a size mismatch
            ref.load_adapter(tiny_model(), folder, trainable=False)

    def test_dropout_is_rejected_for_training_only(self):
        folder = self.write_variant("dropout", dict(self.tensors), lora_dropout=0.05)
        with self.assertRaises(ref.ReferenceError):
            ref.load_adapter(tiny_model(), folder, trainable=True)
        ref.load_adapter(tiny_model(), folder, trainable=False)

    def test_missing_files(self):
        with self.assertRaises(ref.ReferenceError):
            ref.read_adapter_config(self.dir / "nowhere")


class CliTests(unittest.TestCase):
    def test_not_a_model_file(self):
        with tempfile.TemporaryDirectory() as d:
            fake = Path(d) / "model.gguf"
            fake.write_bytes(b"not a model")
            ids = Path(d) / "ids.json"
            ids.write_text('{"sequences": [[1, 2]]}')
            code = ref.main(["logits", "--gguf", str(fake), "--ids", str(ids), "--out", str(Path(d) / "o.json")])
            self.assertEqual(code, 1)
            code = ref.main(["logits", "--gguf", str(Path(d) / "absent.gguf"), "--ids", str(ids),
                             "--out", str(Path(d) / "o.json")])
            self.assertEqual(code, 1)
            self.assertFalse((Path(d) / "o.json").exists())

    def test_bad_json_input(self):
        with tempfile.TemporaryDirectory() as d:
            ids = Path(d) / "ids.json"
            ids.write_text("{not json")
            code = ref.main(["logits", "--gguf", str(Path(d) / "m.gguf"), "--ids", str(ids), "--out", str(Path(d) / "o.json")])
            self.assertEqual(code, 1)


if __name__ == "__main__":
    unittest.main()
