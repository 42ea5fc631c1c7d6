#!/usr/bin/env bash
# Trains pixelcnn-mnist and dcgan-mnist together on one GPU inside a fixed wall-clock budget, with the
# project's own CLI and no Qt (how the bundled GPU models were made: see their model cards).
#
#   OUT=dir DATA=torchvision-root BUDGET=seconds tools/gpu_train.sh
#
# 1. Calibration, all three runs at once (the real contention): the PixelCNN for CAL_P steps (a
#    throw-away run) and each DCGAN for its first epochs (the start of its real run).
# 2. The PixelCNN then trains for as many whole epochs as end by BUDGET (its learning rate decays to
#    0 along a cosine over the run, so the run's length must be known at its start).
# 3. Each DCGAN (constant learning rate) is resumed in stages (`train --resume`, same run) up to the
#    epochs in STAGES, the last stage filling what is left of BUDGET; every stage's checkpoint is
#    copied and evaluated (classifier Inception Score, Frechet distance) while the next one trains.
# Every trainer gets SIGINT at BUDGET + GRACE seconds at the latest (it stops after its step and
# writes its checkpoint). Results: $OUT/*.log, and $OUT/results.tar.part-* (split into 15 MiB parts;
# `cat results.tar.part-* | tar x`): the resumable runs (float32, optimizer state), each DCGAN's two
# best stage snapshots (float16 weights), every eval's JSON and the raw logs.
# Variables: OUT, DATA, BUDGET, GRACE, DEVICE, PY, CODE (run the engines from this checkout instead
# of this script's), DATA_GZ (gzipped MNIST raw files, unpacked into $DATA/MNIST/raw when missing),
# P_ARGS, GA_ARGS, GB_ARGS, STAGES, PMAX, EVAL_ARGS, TEST_STEPS (>0: a smoke test, every run capped at
# that many steps per epoch asked for).
set -uo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
cd "${CODE:-$HERE}"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
OUT="$(mkdir -p "${OUT:-runs/gpu}" && cd "${OUT:-runs/gpu}" && pwd)"
DATA="${DATA:-/tmp/data}"
BUDGET="${BUDGET:-450}"
GRACE="${GRACE:-30}"
DEVICE="${DEVICE:-cuda}"
PY="${PY:-python3}"
W="${W:-/tmp/gpu_train}"
CAL_P="${CAL_P:-300}"
PMAX="${PMAX:-40}"
P_ARGS="${P_ARGS:---hidden 64 --layers 15 --batch-size 128 --precision bf16}"
GA_ARGS="${GA_ARGS:---batch-size 128}"                  # the DCGAN paper's settings (latent 64, Adam 2e-4)
GB_ARGS="${GB_ARGS:---latent-dim 100 --batch-size 64}"  # latent 100, batch 64: twice the updates per epoch
GA_CAL="${GA_CAL:-2}"   # epochs of each DCGAN's first stage (its calibration)
GB_CAL="${GB_CAL:-1}"
STAGES="${STAGES:-5 10 20 30 45 60 80 100 130 160 200 250 300}"
EVAL_ARGS="${EVAL_ARGS:-}"
TEST_STEPS="${TEST_STEPS:-0}"
T0=$(date +%s)
now() { echo $(( $(date +%s) - T0 )); }
say() { echo "[$(now) s] $*" | tee -a "$OUT/gpu_train.log"; }
le() { "$PY" -c "import sys; from engines.cli import main; sys.exit(main(sys.argv[1:]))" "$@"; }
# run NAME LOG ARGS...: a trainer bounded by the hard deadline (SIGINT: clean stop with a checkpoint)
hard_left() { local left=$(( BUDGET + GRACE - $(now) )); echo $(( left > 5 ? left : 5 )); }
train() { local log=$1; shift; timeout -s INT -k 60 "$(hard_left)" "$PY" -c \
  "import sys; from engines.cli import main; sys.exit(main(sys.argv[1:]))" train "$@" >>"$log" 2>&1; }
cap() { [ "$TEST_STEPS" -gt 0 ] && echo "--max-steps $(( $1 * TEST_STEPS ))"; }
meta() { "$PY" -c "import json, sys; from engines.checkpoint import read_metadata; m = read_metadata(sys.argv[1]); \
t = m.get('training', m); print(t['step'], t['seconds'])" "$1"; }
# the kept part of a trainer's log: epoch lines, errors, the end line
brief() { tr '\r' '\n' <"$1" | grep -E "^epoch|rror|^completed|^stopped|^diverged|Traceback|^  File" ; }

mkdir -p "$W/snap" "$W/evals" "$DATA/MNIST/raw"
: >"$OUT/gpu_train.log"
say "gpu_train: budget ${BUDGET} s (+${GRACE} s grace), device $DEVICE, code $(pwd), out $OUT"
if [ -n "${DATA_GZ:-}" ]; then
  for f in "$DATA_GZ"/*.gz; do
    dst="$DATA/MNIST/raw/$(basename "$f" .gz)"; [ -s "$dst" ] || gunzip -c "$f" >"$dst"
  done
fi
ls -la "$DATA/MNIST/raw" >>"$OUT/gpu_train.log"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/gpu_train.log"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" 2>&1 | tee -a "$OUT/gpu_train.log"

GAN_COMMON=(--model gan --dataset mnist --data-root "$DATA" --device "$DEVICE" --checkpoint-every 2000)
PIX=(--model pixelcnn --dataset mnist --data-root "$DATA" --device "$DEVICE" $P_ARGS --checkpoint-every 1000)

# --- 1. calibration: all three at once ---------------------------------------------------------------
say "calibration: pixelcnn $CAL_P steps; dcgan-a $GA_CAL epochs; dcgan-b $GB_CAL epochs"
train "$W/cal_pixelcnn.log" "${PIX[@]}" --max-steps "$CAL_P" --out "$W/cal_pixelcnn.safetensors" &
cal_p=$!
train "$W/dcgan_a.log" "${GAN_COMMON[@]}" $GA_ARGS --epochs "$GA_CAL" $(cap "$GA_CAL") --out "$W/dcgan_a.safetensors" &
cal_a=$!
train "$W/dcgan_b.log" "${GAN_COMMON[@]}" $GB_ARGS --epochs "$GB_CAL" $(cap "$GB_CAL") --out "$W/dcgan_b.safetensors" &
cal_b=$!
wait $cal_p; rc_p=$?
say "pixelcnn calibration rc $rc_p: $(brief "$W/cal_pixelcnn.log" | tail -3 | tr '\n' ' ')"
read -r p_steps p_secs < <(meta "$W/cal_pixelcnn.safetensors") || { say "no calibration checkpoint"; p_steps=1; p_secs=1; }
p_elapsed=$(now)

# --- 2. the PixelCNN: whole epochs that end by BUDGET ------------------------------------------------
# epoch time: 468 steps (60,000 // 128) at the calibrated rate, +15% for the held-out pass (float32)
# and contention, +6 s for the sample grid and checkpoint; start-up: what calibration took beyond its steps
P_EPOCHS=$("$PY" -c "
import sys
steps, secs, elapsed, budget, pmax = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
per_step = secs / max(steps, 1)
spe = 60000 // int(sys.argv[6])
epoch = spe * per_step * 1.15 + 6
startup = max(elapsed - secs, 10)
print(max(1, min(pmax, int((budget - elapsed - startup) // epoch))))
print(f'per step {per_step*1000:.1f} ms, epoch ~{epoch:.0f} s, start-up ~{startup:.0f} s', file=sys.stderr)
" "$p_steps" "$p_secs" "$p_elapsed" "$BUDGET" "$PMAX" "$(echo "$P_ARGS" | grep -oP '(?<=--batch-size )\d+' || echo 128)" 2>>"$OUT/gpu_train.log")
say "pixelcnn: $P_EPOCHS epochs ($(tail -1 "$OUT/gpu_train.log"))"
train "$W/pixelcnn.log" "${PIX[@]}" --epochs "$P_EPOCHS" $(cap "$P_EPOCHS") --out "$W/pixelcnn-mnist.safetensors" &
pix=$!

# --- 3. the DCGANs: staged, each stage evaluated while the next trains --------------------------------
evaluate() {  # evaluate NAME EPOCHS: snapshot the run's checkpoint and score it in the background
  local snap="$W/snap/$1-e$2.safetensors"
  cp "$W/$1.safetensors" "$snap"
  ( le eval "$snap" --data-root "$DATA" --device "$DEVICE" --json $EVAL_ARGS >"$W/evals/$1-e$2.json" 2>"$W/evals/$1-e$2.err"
    "$PY" -c "import json, sys; m = json.load(open(sys.argv[1]))['samples']; \
print(f\"{sys.argv[2]} after {sys.argv[3]} epochs: IS {m['inception_score']:.3f}, FD {m['fid']:.1f}\")" \
      "$W/evals/$1-e$2.json" "$1" "$2" >>"$OUT/gpu_train.log" 2>&1 ) &
}
stages() {  # stages NAME FIRST_EPOCHS BATCH GAN_ARGS...
  local name=$1 done_epochs=$2 batch=$3; shift 3
  local spe=$(( 60000 / batch ))
  local rate  # seconds per epoch measured so far (wall, including start-up), refreshed after each stage
  local t_start=$T0
  evaluate "$name" "$done_epochs"
  for target in $STAGES; do
    [ "$target" -le "$done_epochs" ] && continue
    read -r steps secs < <(meta "$W/$name.safetensors")
    rate=$("$PY" -c "import sys; print(float(sys.argv[1]) / max(int(sys.argv[2]), 1) * int(sys.argv[3]))" "$secs" "$steps" "$spe")
    # the epochs that still fit before BUDGET (with ~12 s of start-up)
    fit=$("$PY" -c "import sys; print(int(sys.argv[1]) + int(max(0.0, float(sys.argv[2]) - 12) // (float(sys.argv[3]) * 1.1)))" \
      "$done_epochs" "$(( BUDGET - $(now) ))" "$rate")
    [ "$fit" -lt "$target" ] && target=$fit
    if [ "$target" -le "$done_epochs" ]; then break; fi
    echo "[$(now) s] $name: stage to $target epochs (~${rate%.*} s/epoch)" >>"$OUT/gpu_train.log"
    train "$W/$name.log" --resume "$W/$name.safetensors" --data-root "$DATA" --device "$DEVICE" --epochs "$target" $(cap "$target")
    read -r steps secs < <(meta "$W/$name.safetensors")
    done_epochs=$(( TEST_STEPS > 0 ? target : steps / spe ))
    evaluate "$name" "$done_epochs"
    [ "$(now)" -ge "$BUDGET" ] && break
  done
  wait
}
wait $cal_a; say "dcgan-a first stage rc $?: $(brief "$W/dcgan_a.log" | tail -1)"
stages dcgan_a "$GA_CAL" "$(echo "$GA_ARGS" | grep -oP '(?<=--batch-size )\d+' || echo 128)" &
st_a=$!
wait $cal_b; say "dcgan-b first stage rc $?: $(brief "$W/dcgan_b.log" | tail -1)"
stages dcgan_b "$GB_CAL" "$(echo "$GB_ARGS" | grep -oP '(?<=--batch-size )\d+' || echo 128)" &
st_b=$!

wait $pix; say "pixelcnn rc $?"
brief "$W/pixelcnn.log" | tee "$OUT/pixelcnn.log" | tail -4 >>"$OUT/gpu_train.log"
wait $st_a; say "dcgan-a stages done"
wait $st_b; say "dcgan-b stages done"
wait
for n in dcgan_a dcgan_b; do
  { echo "== $n"; brief "$W/$n.log"; } >>"$OUT/dcgan.log"
done

# --- results --------------------------------------------------------------------------------------
mkdir -p "$W/pack/snap"
cp "$W"/pixelcnn-mnist.safetensors "$W"/dcgan_a.safetensors "$W"/dcgan_b.safetensors "$W/pack/" 2>/dev/null
cp -r "$W/evals" "$W/pack/"
cp "$W"/*.log "$W/pack/"
# each DCGAN's two best stages (by this device's Inception Score) as float16 weights
"$PY" - "$W" <<'EOF' >>"$OUT/gpu_train.log" 2>&1
import json, subprocess, sys
from pathlib import Path
w = Path(sys.argv[1])
for name in ("dcgan_a", "dcgan_b"):
    scores = []
    for f in sorted(w.glob(f"evals/{name}-e*.json")):
        try:
            scores.append((json.loads(f.read_text())["samples"]["inception_score"], f.stem))
        except (ValueError, KeyError, OSError):
            pass
    scores.sort(reverse=True)
    print(name, "stages by IS:", ", ".join(f"{s} {v:.3f}" for v, s in scores))
    for _, stem in scores[:2]:
        subprocess.run([sys.executable, "tools/publish_checkpoint.py", str(w / "snap" / f"{stem}.safetensors"),
                        str(w / "pack" / "snap" / f"{stem}-f16.safetensors")], check=False)
EOF
ls -la "$W/pack" "$W/pack/snap" >>"$OUT/gpu_train.log"
tar cf - -C "$W/pack" . | split -b 15m - "$OUT/results.tar.part-"
say "done: $(ls "$OUT" | tr '\n' ' ')"
