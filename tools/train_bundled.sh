#!/usr/bin/env bash
# Trains the bundled generative models with the project's own CLI, on real MNIST (../shared/datasets,
# torchvision layout) and the procedural faces dataset. Each run writes a resumable checkpoint to
# runs/; tools/publish_checkpoint.py then copies it into checkpoints/ without optimizer state.
# Usage: tools/train_bundled.sh [name ...]   (default: all, in this order)
# Epochs are what fitted a shared 2-core CPU in one working session (vae-mnist-2d was stopped with
# Ctrl+C after 6.97 of its 10 epochs); more epochs or a GPU do better.
set -euo pipefail
cd "$(dirname "$0")/.."
LE="${LE:-latent-explorer}"
DATA="${DATA:-../shared/datasets}"
mkdir -p runs

declare -A CMD=(
  [vae-mnist-2d]="train --model vae --dataset mnist --data-root $DATA --latent-dim 2 --epochs 10 --out runs/vae-mnist-2d.safetensors"
  [vae-mnist-16d]="train --model vae --dataset mnist --data-root $DATA --latent-dim 16 --epochs 3 --out runs/vae-mnist-16d.safetensors"
  [dcgan-mnist]="train --model gan --dataset mnist --data-root $DATA --epochs 2 --out runs/dcgan-mnist.safetensors"
  [vae-faces]="train --model vae --dataset faces --image-size 32 --latent-dim 16 --epochs 3 --out runs/vae-faces.safetensors"
  [dcgan-faces]="train --model gan --dataset faces --image-size 32 --epochs 2 --out runs/dcgan-faces.safetensors"
  [lenet-mnist]="train --model classifier --dataset mnist --data-root $DATA --epochs 6 --out runs/lenet-mnist.safetensors"
  [attributes-faces]="train --model classifier --dataset faces --image-size 32 --epochs 2 --out runs/attributes-faces.safetensors"
  [pixelcnn-mnist]="train --model pixelcnn --dataset mnist --data-root $DATA --epochs 1 --out runs/pixelcnn-mnist.safetensors"
)
ORDER=(lenet-mnist attributes-faces vae-mnist-2d vae-mnist-16d dcgan-mnist vae-faces dcgan-faces pixelcnn-mnist)
# This session shipped the two classifiers, vae-mnist-2d, vae-mnist-16d, dcgan-mnist and vae-faces; dcgan-faces and
# pixelcnn-mnist did not fit its CPU time.
for name in "${@:-${ORDER[@]}}"; do
  echo "== $name: $LE ${CMD[$name]}"
  start=$(date +%s)
  $LE ${CMD[$name]} 2> >(tr '\r' '\n' | grep -E "^epoch|error|skipped" >&2)
  echo "== $name took $(( $(date +%s) - start )) s on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
done
