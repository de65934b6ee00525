"""``clip:MODEL:TAG_OR_FILE``: open_clip image and text towers (``create_model_and_transforms``).

Arrays: ``image_embed`` / ``text_embed`` (projected, as CLIP compares them), ``image_pooled`` /
``text_pooled`` (before the projection: Hate-CLIPper's input), ``text_truncated`` (text longer
than the context length) and, with ``Options.regions = G``, ``image_regions`` (G*G pooled patch
tokens) + ``region_boxes`` (their normalised x1, y1, x2, y2 in the original image).
The pooled/region arrays need a ViT image tower and a CLIP-style text tower; other towers
(e.g. ModifiedResNet, HF text) provide the projected embeddings only.
"""
from __future__ import annotations

import os

import numpy as np

from memeprobe.errors import ConfigError, WeightsError
from memeprobe.featurize.base import (
    Featurizer,
    ImageTransform,
    cap_text,
    char_limit,
    grid_boxes,
    grid_pool,
    to_numpy,
)
from memeprobe.featurize.weights import (
    LOAD_ERRORS,
    cache_only,
    cached_hub_file,
    check_weights_file,
    ensure_downloadable,
    file_sha256,
    hub_cache_dir,
    refused_file,
    require_hub_files,
    torch_key_error,
    weights_error,
)
from memeprobe.store import ArraySpec

_OPENCLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def _locate_tag(spec, model: str, tag: str) -> str | None:
    """Local file holding ``model``/``tag`` if cached; the one-line error when it is not and we are offline."""
    import open_clip  # lazy: open_clip
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(model, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(model)
        raise WeightsError(
            f"{spec.text}: {tag!r} is neither a pretrained tag of {model} (known: {', '.join(tags) or 'none'}) "
            "nor an existing checkpoint file"
        )
    hint = f"clip:{model}:/path/to/open_clip_pytorch_model.bin"
    if cfg.get("hf_hub"):
        hub = cfg["hf_hub"]
        if hub.endswith("/"):  # open_clip's convention: repo id only, default file names
            repo, names = hub[:-1], _OPENCLIP_FILES
        else:
            repo, name = os.path.split(hub)
            names = (name,)
        path = cached_hub_file(repo, names)
        looked = f"the Hugging Face cache {hub_cache_dir()} for {repo}"
    else:
        path = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(cfg.get("url", "")))
        path = path if os.path.isfile(path) else None
        looked = "~/.cache/clip"
    if path is None:
        ensure_downloadable(spec.text, looked, hint)
    return path


HF_HUB = "hf-hub:"  # open_clip's prefix for a model whose config and weights live in a hub repo


def _locate(spec) -> str | None:
    """Local file of the spec's pretrained weights if cached (a tag, or an ``hf-hub:`` repo); else None or the
    one-line offline error."""
    if not spec.model.startswith(HF_HUB):
        return _locate_tag(spec, spec.model, spec.weights)
    return require_hub_files(spec.text, spec.model[len(HF_HUB):], _OPENCLIP_FILES,
                             "clip:ViT-B-32:/path/to/open_clip_pytorch_model.bin")


def _vit(model):
    """The open_clip ViT image tower of ``model``, or None (e.g. ModifiedResNet)."""
    v = model.visual
    return v if hasattr(v, "_embeds") and hasattr(v, "_pool") and hasattr(v, "grid_size") else None


def _text_tower(model):
    """The module holding the CLIP-style text transformer attributes, or None (e.g. HF text)."""
    t = getattr(model, "text", model)
    return t if hasattr(t, "token_embedding") and hasattr(t, "ln_final") else None


class ClipTextCollate:
    """Picklable open_clip tokeniser that also flags texts longer than the context length."""

    def __init__(self, tokenizer, context_length: int):
        self.tokenizer = tokenizer
        self.context_length = context_length
        vocab = getattr(tokenizer, "encoder", None)  # open_clip's SimpleTokenizer: BPE token -> id
        self.char_limit = char_limit(context_length, vocab) if vocab else None

    def __call__(self, texts: list[str]) -> dict:
        import torch  # lazy: torch

        encode = getattr(self.tokenizer, "encode", None)
        if self.char_limit and encode:  # before tokenising: the cut when it still overflows (see hf._capped)
            texts = [c if cut and len(encode(c)) + 2 > self.context_length else t
                     for t, (c, cut) in ((t, cap_text(t, self.char_limit)) for t in texts)]
        flags = [len(encode(t)) + 2 > self.context_length if encode else False for t in texts]
        return {
            "input_ids": self.tokenizer(texts, context_length=self.context_length),
            "truncated": torch.tensor(flags, dtype=torch.uint8),
        }


class ClipFeaturizer(Featurizer):
    modalities = ("image", "text")

    def __init__(self, spec, options):
        super().__init__(spec, options)
        if os.path.isfile(spec.weights) or spec.weights.startswith(("/", ".", "~")):  # a path, not a tag
            check_weights_file(spec.text, spec.weights, f"clip:{spec.model}:/path/to/existing/ckpt.pt")
            self.checkpoint, self._sha, self._cached = spec.weights, file_sha256(spec.weights), False
        else:
            cached = _locate(spec)
            self.checkpoint, self._cached = None, cached is not None
            self._sha = file_sha256(cached) if cached else f"open_clip:{spec.model}:{spec.weights}"
        self.model = self.preprocess = self.tokenizer = None

    def weights_sha256(self) -> str:
        return self._sha

    def preprocessing(self) -> dict:
        return {
            "downscale": self.options.downscale,
            "regions": self.options.regions,
            "context_length": self.options.max_length,  # None = the model's own (77 for most)
        }

    def _build(self, device, load_weights: bool):
        """open_clip's (model, pre-processing, tokeniser) on ``device``; without weights: architecture only."""
        import open_clip  # lazy: open_clip

        pretrained = self.checkpoint or self.spec.weights or None  # None: an hf-hub model brings its own
        towers = {} if load_weights else dict(pretrained_image=False, pretrained_text=False)
        try:
            with cache_only(self._cached):
                model, _, preprocess = open_clip.create_model_and_transforms(
                    self.spec.model, pretrained=pretrained, load_weights=load_weights, device=device, **towers)
                tokenizer = open_clip.get_tokenizer(self.spec.model)
        except RuntimeError as e:
            if "not found in built-ins" in str(e):
                raise ConfigError(f"{self.spec.text}: open_clip has no model {self.spec.model!r} "
                                  "(see open_clip.list_models())") from None
            raise (torch_key_error(f"{self.spec.text} ({pretrained})", e)
                   or weights_error(self.spec.text, pretrained, f"clip:{self.spec.model}:/path/to/ckpt.pt",
                                    str(e).splitlines()[0][:200])) from None
        except LOAD_ERRORS as e:  # open_clip loads strictly; a pickle with code in it is refused by torch
            raise refused_file(self.spec.text, pretrained, e) from None
        return model.eval(), preprocess, tokenizer

    def load(self, device) -> None:
        super().load(device)
        model, preprocess, tokenizer = self._build(device, load_weights=True)
        self.model = model
        if not self.checkpoint:  # provenance: the cached file actually loaded (it may have been downloaded now)
            cached = _locate(self.spec)
            self._sha, self._cached = (file_sha256(cached), True) if cached else (self._sha, False)
        self._ready(model, preprocess, tokenizer, device)

    def prepare(self) -> None:
        """The architecture on torch's meta device (no weights, no memory) gives the pre-processing, the
        tokeniser and the array shapes."""
        if self.preprocess is not None:
            return
        if not (self.checkpoint or self._cached):  # not local: load() downloads it
            return super().prepare()
        import torch  # lazy: torch

        meta = torch.device("meta")
        with meta:
            self._ready(*self._build(meta, load_weights=False), meta)

    def _ready(self, model, preprocess, tokenizer, device) -> None:
        self.preprocess, self.tokenizer = preprocess, tokenizer
        self.context_length = min(self.options.max_length or model.context_length, model.context_length)
        cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
        self.resize_mode = cfg.get("resize_mode", "shortest")
        embed = model.text_projection.shape[-1] if hasattr(model, "text_projection") else None
        embed = embed or model.encode_text(tokenizer(["x"], context_length=self.context_length).to(device)).shape[-1]
        out = {
            "image_embed": ArraySpec((embed,), "image"),
            "text_embed": ArraySpec((embed,), "text"),
            "text_truncated": ArraySpec((1,), "text", "uint8"),
        }
        vit = _vit(model)
        if vit is not None:
            out["image_pooled"] = ArraySpec((vit.transformer.width,), "image")
            if self.options.regions:
                g = self.options.regions
                out["image_regions"] = ArraySpec((g * g, vit.transformer.width), "image")
                out["region_boxes"] = ArraySpec((g * g, 4), "image")
        text = _text_tower(model)
        if text is not None:
            out["text_pooled"] = ArraySpec((text.transformer.width,), "text")
        self._arrays = out

    def arrays(self) -> dict:
        return self._arrays

    def image_transform(self):
        return ImageTransform(self.preprocess)

    def text_collate(self):
        return ClipTextCollate(self.tokenizer, self.context_length)

    def encode_image(self, batch: dict) -> dict:
        images = batch["pixels"]
        vit = _vit(self.model)
        if vit is None:
            return {"image_embed": to_numpy(self.model.encode_image(images))}
        pooled, tokens = vit._pool(vit.transformer(vit._embeds(images)))
        embed = pooled @ vit.proj if vit.proj is not None else pooled
        out = {"image_embed": to_numpy(embed), "image_pooled": to_numpy(pooled)}
        if self.options.regions:
            g = self.options.regions
            gh, gw = vit.grid_size
            fmap = tokens[:, -gh * gw:].reshape(len(tokens), gh, gw, -1).permute(0, 3, 1, 2)
            out["image_regions"] = to_numpy(grid_pool(fmap, g))
            sizes = batch["size"].tolist()
            out["region_boxes"] = grid_boxes(g, sizes, self.resize_mode)
        return out

    def encode_text(self, batch: dict) -> dict:
        import torch  # lazy: torch
        from open_clip.transformer import text_global_pool

        ids = batch["input_ids"]
        flags = to_numpy(batch["truncated"]).reshape(-1, 1).astype(np.uint8)
        t = _text_tower(self.model)
        if t is None:
            return {"text_embed": to_numpy(self.model.encode_text(ids)), "text_truncated": flags}
        cast = t.transformer.get_cast_dtype()
        x = t.token_embedding(ids).to(cast) + t.positional_embedding[: ids.shape[1]].to(cast)
        mask = t.attn_mask[: ids.shape[1], : ids.shape[1]] if t.attn_mask is not None else None
        x = t.ln_final(t.transformer(x, attn_mask=mask))
        pool_type = getattr(t, "text_pool_type", getattr(t, "pool_type", "argmax"))
        pooled = text_global_pool(x, ids, pool_type, eos_token_id=getattr(t, "text_eos_id", getattr(t, "eos_id", None)))
        pooled = pooled[0] if isinstance(pooled, tuple) else pooled
        proj = t.text_projection
        embed = proj(pooled) if isinstance(proj, torch.nn.Linear) else (pooled @ proj if proj is not None else pooled)
        return {"text_embed": to_numpy(embed), "text_pooled": to_numpy(pooled), "text_truncated": flags}

