"""Image featurize throughput: is the end-to-end run limited by decoding (CPU) or by the model (device)?

For each model, in one run and one table:
  decode   images/s of the DataLoader alone (PNG decode + preprocess in worker processes, no model)
  model    images/s of the encoder alone on pre-made tensors already on the device
  e2e      images/s of ``memeprobe featurize image`` (runner: workers, device copies, store writes)
  e2e/min  e2e / min(decode, model): how close the pipeline gets to its tighter limit (goal >= 0.9)
  e2e/ser  e2e / (1 / (1/decode + 1/model)): on a CPU-only machine decoding and the model share the
           same cores, so this serial bound is the one a CPU run can reach (on CUDA it is a floor)

Models are random-init (same FLOPs as real weights) saved to a temp file and loaded through the
same ``clip:MODEL:/path/ckpt.pt`` spec the CLI uses. Images: ``make_sample`` PNGs at --image-size px.
Default: CUDA when available with ViT-B-32 and ViT-L-14 at 224 px; otherwise CPU with a tiny ViT
(width 128, 4 layers, patch 32, 224 px) so it finishes in about a minute on 2 cores.

    python benchmarks/featurize_throughput.py [--n 192] [--models ViT-B-32,ViT-L-14] [--device auto]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import memeprobe.featurize  # noqa: F401  (torchvision shim first)
import torch

from memeprobe.data import load_dataset
from memeprobe.data.synthetic import make_sample
from memeprobe.data.images import DEFAULT_MAX_PIXELS
from memeprobe.featurize.runner import CPU_BATCH, Collate, ImageItems, RunConfig, featurize, resolve_device
from memeprobe.featurize.spec import Options, create_featurizer

TINY = {"embed_dim": 64, "vision_cfg": {"image_size": 224, "layers": 4, "width": 128, "patch_size": 32, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1}}


def random_checkpoint(model_name: str, folder: Path) -> Path:
    import open_clip

    if model_name == "bench-tiny-vit":
        (folder / "bench-tiny-vit.json").write_text(json.dumps(TINY))
        open_clip.add_model_config(folder / "bench-tiny-vit.json")
    torch.manual_seed(0)
    logging.disable(logging.WARNING)  # "No pretrained weights loaded": random init is the point here
    model = open_clip.create_model(model_name)
    logging.disable(logging.NOTSET)
    path = folder / f"{model_name}-random.pt"
    torch.save(model.state_dict(), path)
    return path


def decode_rate(featurizer, dataset, batch, workers) -> float:
    from torch.utils.data import DataLoader

    rows = list(range(len(dataset.memes)))
    paths = [dataset.image_path(m) for m in dataset.memes]
    items = ImageItems(rows, paths, featurizer.image_transform(), DEFAULT_MAX_PIXELS, None)
    loader = DataLoader(items, batch_size=batch, num_workers=workers, collate_fn=Collate(),
                        pin_memory=featurizer.device.type == "cuda")
    t0, n = time.perf_counter(), 0
    for ok, inputs, bad in loader:
        n += len(ok) + len(bad)
    return n / (time.perf_counter() - t0)


def model_rate(featurizer, batch, steps) -> float:
    device = featurizer.device
    size = featurizer.model.visual.image_size
    size = size if isinstance(size, tuple) else (size, size)
    inputs = {"pixels": torch.randn(batch, 3, *size, device=device), "size": torch.tensor([list(size)] * batch)}
    amp = device.type == "cuda"

    def run():
        with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=amp):
            featurizer.encode_image(inputs)  # includes the copy of the outputs back to the host

    run()  # warm-up
    if amp:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        run()
    if amp:
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=None, help="images (default 192 on CPU, 4096 on CUDA)")
    p.add_argument("--image-size", type=int, default=500)
    p.add_argument("--models", default=None, help="comma-separated open_clip model names")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=None, help="default 32 on CPU, 256 on CUDA")
    p.add_argument("--workers", type=int, default=None, help="default: min(16, CPUs)")
    p.add_argument("--steps", type=int, default=None, help="model-only batches to time")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    models = (args.models or ("ViT-B-32,ViT-L-14" if cuda else "bench-tiny-vit")).split(",")
    n = args.n or (4096 if cuda else 192)
    batch = args.batch_size or (256 if cuda else CPU_BATCH["image"])
    workers = args.workers if args.workers is not None else min(16, os.cpu_count() or 1)
    steps = args.steps or (20 if cuda else 3)
    machine = torch.cuda.get_device_name(device) if cuda else f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    print(f"# featurize_throughput: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine}, torch {torch.__version__}, "
          f"n={n} PNGs at {args.image_size}px, batch {batch}, workers {workers}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        make_sample(tmp / "data", n=n, seed=0, image_size=args.image_size)
        print(f"# made {n} sample images in {time.perf_counter() - t0:.1f} s")
        dataset = load_dataset(tmp / "data")
        header = (f"| {'model':<16} | {'device':<6} | {'decode img/s':>12} | {'model img/s':>11} | {'e2e img/s':>9} "
                  f"| {'e2e/min':>7} | {'e2e/ser':>7} |")
        print(header)
        print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
        for name in models:
            ckpt = random_checkpoint(name, tmp)
            spec = f"clip:{name}:{ckpt}"
            f = create_featurizer(spec, Options())
            f.load(device)
            decode = decode_rate(f, dataset, batch, workers)
            model = model_rate(f, batch, steps)
            cfg = RunConfig(device=str(device), batch_size=batch, workers=workers, progress=False)
            summary = featurize(dataset, tmp / f"{name}.h5", [spec], Options(), ("image",), cfg, log=lambda m: None)
            rows, seconds = summary.timings[f"{f.name}/image"]
            e2e = rows / seconds
            serial = 1 / (1 / decode + 1 / model)
            print(f"| {name:<16} | {device.type:<6} | {decode:>12.1f} | {model:>11.1f} | {e2e:>9.1f} "
                  f"| {e2e / min(decode, model):>7.2f} | {e2e / serial:>7.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
