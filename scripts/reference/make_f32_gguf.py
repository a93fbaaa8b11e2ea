#!/usr/bin/env python3
"""Write an F32 copy of a GGUF model: every tensor dequantized to float32, metadata unchanged
(except general.file_type, set to ALL_F32).

llama.cpp run on such a copy (with an F32 KV cache) computes in f32 throughout, which makes a
tight reference for an engine that dequantizes weights to f32 (see make_llamacpp_refs.mjs --f32).

Needs the PyPI `gguf` package (which brings numpy), e.g. in a virtual environment outside the clone:
    python3 -m venv ~/.cache/residency/venv-gguf
    ~/.cache/residency/venv-gguf/bin/pip install gguf==0.19.0
    ~/.cache/residency/venv-gguf/bin/python scripts/reference/make_f32_gguf.py IN.gguf OUT.gguf

The output is written to OUT.gguf.tmp-<pid> and renamed when complete.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

try:
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType
    from gguf.quants import dequantize
except ImportError as e:  # pragma: no cover - environment problem, said plainly
    sys.exit(f"error: this script needs the PyPI package `gguf` (pip install gguf==0.19.0): {e}")

# Fields the reader reports that the writer produces by itself.
GENERATED_FIELDS = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", "general.architecture"}


def field_value(field):
    """The Python value of a reader field, and its GGUF type (and element type for arrays)."""
    main = field.types[0]
    if main == GGUFValueType.ARRAY:
        sub = field.types[-1]
        return list(field.contents()), main, sub
    return field.contents(), main, None


def convert(src: Path, dst: Path) -> None:
    reader = GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    tmp = dst.with_name(f"{dst.name}.tmp-{os.getpid()}")
    writer = GGUFWriter(tmp, arch)
    try:
        for name, field in reader.fields.items():
            if name in GENERATED_FIELDS:
                continue
            value, vtype, sub = field_value(field)
            if name == "general.file_type":
                value = int(LlamaFileType.ALL_F32)
            writer.add_key_value(name, value, vtype, sub)

        converted = 0
        for t in reader.tensors:
            if t.tensor_type == GGMLQuantizationType.F32:
                arr = np.array(t.data, dtype=np.float32)
            else:
                arr = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
                converted += 1
            expected = tuple(int(d) for d in reversed(t.shape))  # GGUF lists ne0 first
            if arr.size != t.n_elements:
                raise SystemExit(f"error: {t.name}: dequantized {arr.size} values, expected {t.n_elements}")
            arr = arr.reshape(expected)
            writer.add_tensor(t.name, arr)
        print(f"{src.name}: {len(reader.tensors)} tensors, {converted} dequantized to f32", file=sys.stderr)

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file(progress=False)
        writer.close()
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {dst} ({dst.stat().st_size / (1 << 20):.1f} MiB)", file=sys.stderr)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description="Write an F32 (dequantized) copy of a GGUF model.")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    args = p.parse_args(argv)
    if not args.src.is_file():
        print(f"error: no file at {args.src}", file=sys.stderr)
        return 1
    if args.src.resolve() == args.dst.resolve():
        print("error: the output must be a different file from the input", file=sys.stderr)
        return 1
    args.dst.parent.mkdir(parents=True, exist_ok=True)
    convert(args.src, args.dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
