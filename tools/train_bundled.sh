#!/usr/bin/env bash
# Trains the bundled generative models with the project's own CLI, on real MNIST (../shared/datasets,
# torchvision layout) and the procedural faces dataset. Each run writes a resumable checkpoint to
# runs/; tools/publish_checkpoint.py then copies it into checkpoints/ without optimizer state.
# Usage: tools/train_bundled.sh [name ...]   (default: all, in this order)
# Epochs are what fitted a shared 2-core CPU in two working sessions (vae-mnist-2d was stopped with
# Ctrl+C after 6.97 of its 10 epochs; dcgan-mnist and vae-faces were resumed with --resume FILE
# --epochs N from shorter runs); more epochs or a GPU do better. Each model card has its exact command.
# pixelcnn-mnist was trained on a GPU (one NVIDIA H200, in a 15-minute loan) by
# tools/gpu_train.sh, beside the plain DCGAN that dcgan-mnist then was, inside a time budget (the PixelCNN's epochs chosen from a calibration,
# the DCGAN resumed in stages, each stage scored), as
#   OUT=runs/gpu-h200 DATA=/tmp/data DATA_GZ=<gzipped MNIST raw files> BUDGET=450 tools/gpu_train.sh
# its entry below is the same settings as one run, on $GPU (default cuda). The CPU model it replaced:
# pixelcnn-mnist --hidden 32 --layers 10 --batch-size 64 --epochs 6 --precision bf16 (86.48 nats).
# dcgan-mnist was a plain DCGAN of 59 epochs on that GPU (IS 8.11); it is now the InfoGAN-coded run below,
# on the CPU: 30 epochs, resumed to 45, 60, 80 and 100 (the first 60 with the code's first, softmax version).
# Publishing (MNIST models also carry 1000 test images for machines without MNIST):
#   python tools/publish_checkpoint.py runs/X.safetensors checkpoints/X.safetensors [--sample 1000]
#   latent-explorer eval checkpoints/X.safetensors [--data-root $DATA] --save
#   python tools/model_card.py checkpoints/X.safetensors --notes "..."
# The CIFAR-10 models train on the JPEG folders of ../shared/datasets/cifar10-jpg.tar.gz, unpacked with
#   mkdir -p /tmp/cifar10 && tar -xzf ../shared/datasets/cifar10-jpg.tar.gz -C /tmp/cifar10
# (train/<class>/ and test/<class>/; the class subfolders label the images), and are published and
# evaluated with their folders named:
#   python tools/publish_checkpoint.py runs/classifier-cifar10.safetensors checkpoints/classifier-cifar10.safetensors
#   latent-explorer eval checkpoints/classifier-cifar10.safetensors --data-root $CIFAR/test --save
# and the generators with 500 test images spread over the classes, judged by that classifier:
#   python tools/publish_checkpoint.py runs/X.safetensors checkpoints/X.safetensors --data-root $CIFAR/test --sample 500
#   latent-explorer eval checkpoints/X.safetensors --data-root $CIFAR/test --train-data-root $CIFAR/train \
#       --classifier checkpoints/classifier-cifar10.safetensors --save
set -euo pipefail
cd "$(dirname "$0")/.."
LE="${LE:-latent-explorer}"
DATA="${DATA:-../shared/datasets}"
CIFAR="${CIFAR:-/tmp/cifar10}"
GPU="${GPU:-cuda}"
mkdir -p runs

declare -A CMD=(
  [vae-mnist-2d]="train --model vae --dataset mnist --data-root $DATA --latent-dim 2 --epochs 10 --out runs/vae-mnist-2d.safetensors"
  [vae-mnist-32d]="train --model vae --dataset mnist --data-root $DATA --latent-dim 32 --binarize stochastic --epochs 40 --out runs/vae-mnist-32d.safetensors"
  [dcgan-mnist]="train --model gan --dataset mnist --data-root $DATA --code-classes 10 --epochs 100 --out runs/dcgan-mnist.safetensors"  # 30 epochs, then --resume to 45, 60, 80 and 100 (see its card)
  [vae-faces]="train --model vae --dataset faces --image-size 32 --latent-dim 16 --epochs 35 --out runs/vae-faces.safetensors"
  [dcgan-faces]="train --model gan --gan-loss wgan-gp --d-steps 2 --dataset faces --image-size 32 --epochs 16 --sample-every 100 --ema 0.999 --out runs/dcgan-faces-ema.safetensors"  # the ns loss collapsed here; trained as 8 epochs, then resumed to 16 (a resume is exact)
  [stylegan-faces]="train --model stylegan --dataset faces --image-size 32 --batch-size 32 --epochs 30 --sample-every 250 --checkpoint-every 250 --out runs/stylegan-faces.safetensors"  # stopped with Ctrl+C (see its card)
  [cdcgan-mnist]="train --model gan --dataset mnist --conditional --data-root $DATA --epochs 12 --out runs/cdcgan-mnist.safetensors"  # 3 epochs, then --resume to 12 (see its card); OMP_NUM_THREADS=1 beside another job
  [lenet-mnist]="train --model classifier --dataset mnist --data-root $DATA --epochs 6 --out runs/lenet-mnist.safetensors"
  [classifier-cifar10]="train --model classifier --dataset folder --data-root $CIFAR/train --image-size 32 --channels 3 --epochs 15 --out runs/classifier-cifar10.safetensors"
  [vae-cifar10]="train --model vae --dataset folder --data-root $CIFAR/train --image-size 32 --channels 3 --latent-dim 64 --epochs 20 --checkpoint-every 500 --out runs/vae-cifar10.safetensors"
  [dcgan-cifar10]="train --model gan --dataset folder --data-root $CIFAR/train --image-size 32 --channels 3 --epochs 15 --checkpoint-every 500 --out runs/dcgan-cifar10.safetensors"
  [attributes-faces]="train --model classifier --dataset faces --image-size 32 --epochs 2 --out runs/attributes-faces.safetensors"
  [pixelcnn-mnist]="train --model pixelcnn --dataset mnist --data-root $DATA --device $GPU --hidden 64 --layers 15 --batch-size 128 --epochs 15 --precision bf16 --out runs/pixelcnn-mnist.safetensors"
)
ORDER=(lenet-mnist attributes-faces classifier-cifar10 vae-cifar10 dcgan-cifar10 vae-mnist-2d vae-mnist-32d dcgan-mnist cdcgan-mnist vae-faces dcgan-faces stylegan-faces pixelcnn-mnist)
for name in "${@:-${ORDER[@]}}"; do
  echo "== $name: $LE ${CMD[$name]}"
  start=$(date +%s)
  $LE ${CMD[$name]} 2> >(tr '\r' '\n' | grep -E "^epoch|error|skipped" >&2)
  echo "== $name took $(( $(date +%s) - start )) s on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
done
