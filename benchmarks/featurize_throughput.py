"""Image featurize throughput: is the end-to-end run limited by decoding (CPU) or by the model (device)?

For each image featurizer, in one run and one table:
  decode   images/s of the DataLoader alone (image decode + preprocess in worker processes, no model)
  model    images/s of ``encode_image`` alone on pre-decoded batches already on the device
  e2e      images/s of ``memeprobe featurize image`` (runner: workers, device copies, store writes)
  e2e/min  e2e / min(decode, model): how close the pipeline gets to its tighter limit (goal >= 0.9)
  e2e/ser  e2e / (1 / (1/decode + 1/model)): on a CPU-only machine decoding and the model share the
           same cores, so this serial bound is the one a CPU run can reach (on CUDA it is a floor)

Featurizers are given as the CLI's spec strings (default: the offline preset's image featurizers,
``pixels`` and ``timm:tf_efficientnet_lite0:packaged``); ``--clip-models`` adds open_clip models with
random-init weights (same FLOPs as real ones) saved to a temp file and loaded via ``clip:MODEL:/path``.
On CUDA the default adds ViT-B-32 and ViT-L-14. Images: ``make_sample`` PNGs at --image-size px.

    python benchmarks/featurize_throughput.py [--n 192] [--specs pixels,...] [--clip-models ViT-B-32] [--device auto]

``--busy N`` instead times ``memeprobe featurize`` (local engine, a fresh store each run) of the 670 SemEval-2021
T6 memes in ``--data`` (default ../shared/data) with pixels, EfficientNet-Lite0 and MiniLM, quiet and beside N
CPU-bound neighbours, under the thread plan, ``OMP_NUM_THREADS=1`` and the fixed ``--threads CORES``
(benchmarks/_busy.py).

    python benchmarks/featurize_throughput.py --busy 2 [--rounds 1] [--data ../shared/data]
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

import _busy  # benchmarks/_busy.py (this script's folder is on sys.path)
import memeprobe.featurize  # noqa: F401  (torchvision shim first)
import torch

from memeprobe.data import load_dataset
from memeprobe.demo.synthetic import make_sample
from memeprobe.data.images import DEFAULT_MAX_PIXELS
from memeprobe.featurize.batching import CPU_BATCH
from memeprobe.featurize.encoder import resolve_device, to_device
from memeprobe.featurize.reader import Collate, ImageItems
from memeprobe.featurize.runner import RunConfig, featurize
from memeprobe.featurize.spec import PRESETS, Options, create_featurizer

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


def _loader(featurizer, dataset, batch, workers):
    from torch.utils.data import DataLoader

    rows = list(range(len(dataset.memes)))
    paths = [dataset.image_path(m) for m in dataset.memes]
    items = ImageItems(rows, paths, featurizer.image_transform(), DEFAULT_MAX_PIXELS, None)
    return DataLoader(items, batch_size=batch, num_workers=workers, collate_fn=Collate(),
                      pin_memory=featurizer.device.type == "cuda")


def decode_rate(featurizer, dataset, batch, workers) -> float:
    t0, n = time.perf_counter(), 0
    for ok, inputs, bad in _loader(featurizer, dataset, batch, workers):
        n += len(ok) + len(bad)
    return n / (time.perf_counter() - t0)


def model_rate(featurizer, dataset, batch, steps, channels_last) -> float:
    """encode_image alone on one real pre-decoded batch, ``steps`` times (outputs copied back to the host)."""
    _, inputs, _ = next(iter(_loader(featurizer, dataset, batch, 0)))
    inputs = to_device(inputs, featurizer.device, channels_last)
    amp = featurizer.device.type == "cuda"

    def run():
        with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=amp):
            featurizer.encode_image(inputs)

    run()  # warm-up
    if amp:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        run()
    if amp:
        torch.cuda.synchronize()
    return len(inputs[next(iter(inputs))]) * steps / (time.perf_counter() - t0)


BUSY_RUNS = {"featurize image pixels": ("image", "pixels"),
             "featurize image Lite0": ("image", "timm:tf_efficientnet_lite0:packaged"),
             "featurize text MiniLM": ("text", "st:minilm")}


def busy_main(busy: int, rounds: int, data: Path) -> int:
    data = data / "semeval2021_task6"
    if not data.is_dir():
        print(f"--busy needs the real data: {data} is absent")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "busy.h5"
        commands = {name: ["featurize", modality, str(data), "--store", str(store), "--featurizer", spec,
                           "--no-progress"] for name, (modality, spec) in BUSY_RUNS.items()}
        start = "%.2f %.2f %.2f" % os.getloadavg()
        times = _busy.compare(commands, busy, rounds, reset=lambda name: store.unlink(missing_ok=True))
    print(f"670 SemEval-2021 T6 memes (train + dev); load average at start {start}, at end "
          + "%.2f %.2f %.2f" % os.getloadavg() + "\n")
    print(_busy.table(times, busy, rounds))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=None, help="images (default 192 on CPU, 4096 on CUDA)")
    p.add_argument("--image-size", type=int, default=500)
    p.add_argument("--specs", default=",".join(s for s in PRESETS["offline"].specs if not s.startswith(("st:", "hf:"))),
                   help="comma-separated image featurizer specs (default: the offline preset's)")
    p.add_argument("--clip-models", default=None, help="comma-separated open_clip models with random weights")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=None, help="default 32 on CPU, 256 on CUDA")
    p.add_argument("--workers", type=int, default=None, help="default: the runner's (min(4, CPUs))")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--steps", type=int, default=None, help="model-only batches to time")
    p.add_argument("--busy", type=int, default=None, metavar="N",
                   help="Time featurize quiet and beside N CPU-bound neighbours instead.")
    p.add_argument("--rounds", type=int, default=1, help="--busy: alternating rounds (median shown)")
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = p.parse_args(argv)
    if args.busy is not None:
        return busy_main(args.busy, args.rounds, args.data)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    clip_models = args.clip_models.split(",") if args.clip_models else (["ViT-B-32", "ViT-L-14"] if cuda else [])
    n = args.n or (4096 if cuda else 192)
    batch = args.batch_size or (256 if cuda else CPU_BATCH["image"])
    workers = args.workers if args.workers is not None else min(4, os.cpu_count() or 1)
    steps = args.steps or (20 if cuda else 3)
    machine = torch.cuda.get_device_name(device) if cuda else f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    load = "load average %.1f %.1f %.1f" % os.getloadavg()
    print(f"# featurize_throughput: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads, n={n} PNGs at {args.image_size}px, batch {batch}, workers {workers}, "
          f"channels_last={args.channels_last}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}, {load}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        make_sample(tmp / "data", n=n, seed=0, image_size=args.image_size)
        print(f"# made {n} sample images in {time.perf_counter() - t0:.1f} s")
        dataset = load_dataset(tmp / "data")
        specs = [s for s in args.specs.split(",") if s] + [f"clip:{m}:{random_checkpoint(m, tmp)}" for m in clip_models]
        header = (f"| {'featurizer':<36} | {'device':<6} | {'decode img/s':>12} | {'model img/s':>11} | {'e2e img/s':>9} "
                  f"| {'e2e/min':>7} | {'e2e/ser':>7} |")
        print(header)
        print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
        for spec in specs:
            f = create_featurizer(spec, Options())
            f.load(device)
            if args.channels_last and getattr(f, "model", None) is not None:
                f.model.to(memory_format=torch.channels_last)
            decode = decode_rate(f, dataset, batch, workers)
            model = model_rate(f, dataset, batch, steps, args.channels_last)
            cfg = RunConfig(device=str(device), batch_size=batch, workers=workers, progress=False,
                            channels_last=args.channels_last)
            summary = featurize(dataset, tmp / f"{f.name}.h5", [spec], Options(), ("image",), cfg, log=lambda m: None)
            rows, seconds = summary.timings[f"{f.name}/image"]
            e2e = rows / seconds
            serial = 1 / (1 / decode + 1 / model)
            label = spec if not spec.startswith("clip:") else f"clip:{spec.split(':')[1]} (random)"
            print(f"| {label:<36} | {device.type:<6} | {decode:>12.1f} | {model:>11.1f} | {e2e:>9.1f} "
                  f"| {e2e / min(decode, model):>7.2f} | {e2e / serial:>7.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
