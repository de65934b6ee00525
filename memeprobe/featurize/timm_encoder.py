"""``timm:MODEL[:FILE]``: any timm image model, frozen.

``timm:resnet50`` loads timm's default pretrained weights (``pretrained=True``; from the Hugging
Face cache when offline); ``timm:resnet50:/path/w.pth`` loads a local file through the same call
(``pretrained_cfg_overlay=dict(file=...)``). Arrays: ``image_embed`` (the pre-logits pooled vector)
and, with ``Options.regions = G``, ``image_regions`` (last feature map pooled to GxG) + ``region_boxes``.
"""
from __future__ import annotations

import os

from memeprobe.errors import MemeprobeError
from memeprobe.featurize.base import Featurizer, ImageTransform, grid_boxes, grid_pool, to_numpy
from memeprobe.featurize.weights import (
    cache_only,
    cached_hub_file,
    ensure_downloadable,
    file_sha256,
    hub_cache_dir,
    weights_error,
)

_HUB_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def _locate_default_weights(spec) -> tuple[str | None, bool]:
    """(cached file of timm's default weights for ``spec.model``, whether it is in the HF cache);
    the one-line error when it is not cached and cannot be downloaded."""
    import timm
    from timm.models import get_pretrained_cfg

    if not timm.is_model(spec.model.split(".")[0]):
        raise MemeprobeError(f"{spec.text}: timm has no model {spec.model!r} (see timm.list_models())")
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
        if spec.weights:
            if not os.path.isfile(spec.weights):
                raise weights_error(spec.text, spec.weights, f"timm:{spec.model}:/path/to/existing/weights.pth", "no such file")
            self.file, self._sha, self._cached = spec.weights, file_sha256(spec.weights), False
        else:
            cached, self._cached = _locate_default_weights(spec)
            self.file, self._sha = None, (file_sha256(cached) if cached else f"timm:{spec.model}")
        self.model = self.transform = None

    def weights_sha256(self) -> str:
        return self._sha

    def preprocessing(self) -> dict:
        return {"downscale": self.options.downscale, "regions": self.options.regions}

    def load(self, device) -> None:
        super().load(device)
        import timm
        from timm.data import create_transform, resolve_model_data_config

        overlay = {"file": self.file} if self.file else None
        try:
            with cache_only(self._cached):
                model = timm.create_model(self.spec.model, pretrained=True, pretrained_cfg_overlay=overlay, num_classes=0)
        except RuntimeError as e:
            if "Unknown model" in str(e):
                raise MemeprobeError(f"{self.spec.text}: timm has no model {self.spec.model!r}") from None
            raise weights_error(self.spec.text, self.file or "timm's pretrained source",
                                f"timm:{self.spec.model}:/path/to/weights.pth", str(e).splitlines()[0][:200]) from None
        except (OSError, ValueError) as e:
            raise weights_error(self.spec.text, self.file or "timm's pretrained source",
                                f"timm:{self.spec.model}:/path/to/weights.pth", str(e).splitlines()[0][:200]) from None
        self.model = model.eval().to(device)
        self.data_cfg = resolve_model_data_config(model)
        self.transform = create_transform(**self.data_cfg, is_training=False)

    def _feature_map(self, feats):
        """(B, C, H, W) view of forward_features' output (CNN maps as-is, ViT tokens reshaped)."""
        if feats.ndim == 4:
            return feats
        grid = getattr(getattr(self.model, "patch_embed", None), "grid_size", None)
        if feats.ndim == 3 and grid is not None:
            gh, gw = grid
            return feats[:, -gh * gw:].reshape(len(feats), gh, gw, -1).permute(0, 3, 1, 2)
        raise MemeprobeError(f"{self.spec.text}: cannot arrange its features {tuple(feats.shape)} into regions; "
                             "run without --regions")

    def arrays(self) -> dict:
        import torch

        from memeprobe.store import ArraySpec

        c, h, w = self.data_cfg["input_size"]
        with torch.inference_mode():
            probe = self.encode_image({"pixels": torch.zeros(1, c, h, w, device=self.device),
                                       "size": torch.tensor([[w, h]])})
        return {k: ArraySpec(v.shape[1:], "image") for k, v in probe.items()}

    def image_transform(self):
        return ImageTransform(self.transform)

    def encode_image(self, batch: dict) -> dict:
        feats = self.model.forward_features(batch["pixels"])
        out = {"image_embed": to_numpy(self.model.forward_head(feats, pre_logits=True))}
        if self.options.regions:
            g = self.options.regions
            out["image_regions"] = to_numpy(grid_pool(self._feature_map(feats), g))
            crop = float(self.data_cfg.get("crop_pct") or 1.0)  # eval transform: resize shortest, centre crop
            out["region_boxes"] = grid_boxes(g, batch["size"].tolist(), "shortest", crop)
        return out
