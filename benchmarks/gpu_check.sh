#!/usr/bin/env bash
# One check of dbench on a machine with an NVIDIA GPU (CI never runs it: it has no GPU).
#
#   bash benchmarks/gpu_check.sh            # from the repository root
#
# 1. an environment with a CUDA build of torch (.venv-gpu; reused when it already imports
#    torch with CUDA; set GPU_VENV to use another folder, TORCH_INDEX to pick the wheel index);
# 2. the test suite (`pytest -q`, the README's test command without `make`'s CPU pinning);
# 3. benchmarks/train_throughput.py on cuda at batch 64 and 256: plain fp32 loop, plain bf16,
#    dbench's default loop (img/s, peak GPU memory);
# 4. a 30,000-step beta-VAE (beta 4) run on dSprites with the default metrics.
# It ends with one summary block; each part's full output is kept under $OUT_DIR.
# Budget: under 8 minutes on one recent datacenter GPU (parts are time-limited below).
set -uo pipefail

GPU_VENV=${GPU_VENV:-.venv-gpu}
OUT_DIR=${OUT_DIR:-gpu-check}
TORCH_INDEX=${TORCH_INDEX:-}  # e.g. https://download.pytorch.org/whl/cu124
mkdir -p "$OUT_DIR"
started=$(date +%s)
elapsed() { echo $(( $(date +%s) - started )); }

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check: no NVIDIA GPU here (nvidia-smi -L fails); nothing to check" >&2
    exit 2
fi

# -- 1. environment ---------------------------------------------------------------------------
py="$GPU_VENV/bin/python"
if ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    python3 -m venv "$GPU_VENV" || exit 1
    "$py" -m pip install --quiet --upgrade pip
    # No constraints-cpu.txt here: on Linux the default torch wheel is the CUDA build.
    if [ -n "$TORCH_INDEX" ]; then
        "$py" -m pip install --quiet torch --index-url "$TORCH_INDEX" || exit 1
    fi
    "$py" -m pip install --quiet -e ".[test]" > "$OUT_DIR/install.log" 2>&1 || {
        echo "gpu_check: install failed, see $OUT_DIR/install.log" >&2
        exit 1
    }
fi
env_line=$("$py" -c "
import torch
p = torch.cuda.get_device_properties(0)
print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, {p.name}, '
      f'{p.total_memory / 2**30:.0f} GiB, bf16 {torch.cuda.is_bf16_supported()}')")

# -- 2. tests ---------------------------------------------------------------------------------
timeout 300 "$py" -m pytest -q -p no:cacheprovider > "$OUT_DIR/tests.log" 2>&1
tests_rc=$?
tests_line=$(grep -E "passed|failed|error" "$OUT_DIR/tests.log" | tail -1)
[ $tests_rc -eq 124 ] && tests_line="timed out after 300 s ($tests_line)"

# -- 3. training throughput -------------------------------------------------------------------
timeout 120 "$py" benchmarks/train_throughput.py --device cuda --batch-size 64,256 \
    --steps 200 --repeats 3 > "$OUT_DIR/throughput.log" 2>&1
throughput_rc=$?

# -- 4. a 30k-step beta-VAE on dSprites -------------------------------------------------------
results="$OUT_DIR/results"
timeout 240 "$GPU_VENV/bin/dbench" run --model betavae --beta 4 --dataset dsprites \
    --steps 30000 --device cuda --no-progress --results-dir "$results" \
    --data-dir "$OUT_DIR/data" > "$OUT_DIR/run.log" 2>&1
run_rc=$?
run_line=$("$py" - "$results" <<'EOF'
import json, pathlib, sys
records = sorted(pathlib.Path(sys.argv[1], "runs").glob("*.json"))
if not records:
    print("no record written")
    sys.exit()
r = json.loads(records[-1].read_text())
t, timings = r["training"], r["timings"]
metric_s = timings["metrics_s"]
metric_s = sum(metric_s.values()) if isinstance(metric_s, dict) else metric_s
scores = " ".join(f"{m}={s[next(iter(s))]:.3f}" for m, s in sorted(r["scores"].items()))
print(f"{r['run_id']}: fit {timings['fit_s']:.0f} s ({t['images_per_s']:.0f} img/s, "
      f"{t['precision']}), metrics {metric_s:.0f} s, recon {t['recon_loss']:.1f}; {scores}")
EOF
)

# -- summary ----------------------------------------------------------------------------------
echo
echo "== dbench GPU check ($(elapsed) s) =="
echo "environment: $env_line"
echo "tests:       rc=$tests_rc  $tests_line"
echo "throughput:  rc=$throughput_rc (img/s median and ratio to the plain fp32 loop)"
sed -n '/^device/,$p' "$OUT_DIR/throughput.log" | sed 's/^/  /'
echo "30k run:     rc=$run_rc  $run_line"
echo "logs:        $OUT_DIR/"
[ $tests_rc -eq 0 ] && [ $throughput_rc -eq 0 ] && [ $run_rc -eq 0 ]
