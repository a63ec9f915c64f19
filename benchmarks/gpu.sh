#!/usr/bin/env bash
# One prepared GPU run: instructor-large architecture (random weights), mixed lengths near 128 tokens,
# plain sentence-transformers fp32 and bf16 vs this package's precision="fast" (the staged pipeline and
# in line, then torch.compile), tokens/s and MFU, the model-only ceiling and a kernel-time profile.
#
#   bash benchmarks/gpu.sh [OUT_DIR [more gpu_throughput.py options]]
#   e.g. --baselines "" --pipeline staged,inline --mask-rounds 2 --compile-masks on,off
#   and --baselines "" --pipeline staged --workers 2,3,4 --compile-workers 3 --compile-masks ""
#
# Offline machines: put wheels of sentence-transformers 6.x / transformers 5.x (and their missing
# dependencies) in .whl/ first; they are installed into /tmp/site and put on PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-.}}
shift || true
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=true PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/nvidia-smi.txt"
python3 -c "import torch, transformers, sentence_transformers as st; print('torch', torch.__version__, 'transformers', transformers.__version__, 'sentence-transformers', st.__version__)" | tee "$OUT/versions.txt"
python3 benchmarks/gpu_throughput.py --texts "${TEXTS:-16384}" --mean-tokens 110 --compile --profile \
  --deadline "${DEADLINE:-330}" --out "$OUT/gpu_throughput.json" "$@" 2>&1 | grep -v "Loading weights\|Writing model" | tee "$OUT/gpu_throughput.log"
