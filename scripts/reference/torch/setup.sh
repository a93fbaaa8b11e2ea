#!/usr/bin/env bash
# Installs the PyTorch + transformers + PEFT reference used to check Residency's QLoRA trainer.
#
#   scripts/reference/torch/setup.sh            # prints the venv's python path on its last line
#   PY=$(scripts/reference/torch/setup.sh | tail -n1)
#
# The venv lives outside the clone: ${RESIDENCY_TORCH_VENV:-$HOME/.cache/residency/venv-torch}.
# Idempotent: a stamp file records a hash of the pins and the base Python version; when it matches
# and the venv's interpreter exists, the script returns at once. Delete the venv to force a reinstall.
# PyPI's torch wheel is the CUDA build (several GB on disk); the reference runs it on the CPU.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${RESIDENCY_TORCH_VENV:-$HOME/.cache/residency/venv-torch}"
stamp="$venv/.residency-torch-stamp"
base_python="${PYTHON:-python3}"

if ! command -v "$base_python" >/dev/null 2>&1; then
    echo "setup.sh: '$base_python' was not found. On Debian/Ubuntu: apt-get install -y python3 python3-venv" >&2
    exit 1
fi
if ! "$base_python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "setup.sh: '$base_python' has no working venv module (ensurepip is missing)." >&2
    echo "  On Debian/Ubuntu: apt-get install -y python3-venv" >&2
    exit 1
fi

want="$(cat "$here/requirements.txt" "$here/constraints.txt" | sha256sum | cut -d' ' -f1) $("$base_python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
py="$venv/bin/python"

# The stamp is written only after the packages imported; importing torch again would cost ~6 s.
if [[ -x "$py" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$py"
    exit 0
fi

echo "setup.sh: installing the torch reference into $venv (several GB; takes minutes)" >&2
if [[ ! -x "$py" ]]; then
    "$base_python" -m venv "$venv"
fi
rm -f "$stamp"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$py" -m pip install --quiet --no-input \
    -r "$here/requirements.txt" -c "$here/constraints.txt" >&2
"$py" - >&2 <<'PYEOF'
import importlib.metadata as md
import torch, transformers, peft, safetensors, gguf, numpy  # noqa: F401  (fails loudly if broken)
print("setup.sh: installed " + ", ".join(
    f"{n} {md.version(n)}" for n in ("torch", "transformers", "peft", "safetensors", "gguf", "numpy")))
PYEOF
echo "$want" > "$stamp"
echo "$py"
