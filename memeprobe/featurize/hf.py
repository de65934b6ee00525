"""``hf:ID_OR_DIR``: a transformers text encoder (AutoTokenizer + AutoModel.from_pretrained).

Writes ``text_pooled`` (the [CLS]/first-token hidden state), ``text_embed`` (attention-masked mean
of the last hidden states), ``text_truncated`` (1 when the text exceeded the token limit) and, with
``Options.text_tokens``, the per-token arrays of :func:`token_arrays`.
"""
from __future__ import annotations

import json
import os

from memeprobe.errors import WeightsError
from memeprobe.featurize.base import Featurizer, cap_text, char_limit, to_numpy
from memeprobe.featurize.weights import (
    LOAD_ERRORS,
    cache_only,
    cached_hub_file,
    dir_weights_sha256,
    file_sha256,
    key_mismatch,
    refused_file,
    require_hub_files,
    weights_error,
)
from memeprobe.store import ArraySpec

HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
UNUSED_MODULES = ("pooler.",)  # outputs memeprobe never reads: their weights may be missing


def refuse_remote_code(spec, source: str) -> None:
    """WeightsError when the model's config.json asks for Python code shipped with the model (``auto_map``)."""
    config = os.path.join(source, "config.json") if os.path.isdir(source) else cached_hub_file(source, ("config.json",))
    try:
        with open(config) as f:
            needs_code = "auto_map" in json.load(f)
    except (TypeError, OSError, ValueError):
        return  # no readable config: transformers reports that itself
    if needs_code:
        raise WeightsError(f"{spec.text}: {config} has 'auto_map', i.e. the model needs Python code shipped with "
                           "it; memeprobe never runs model code (trust_remote_code=False): use a model transformers "
                           "implements")


def load_hf_model(spec, source: str, cached: bool):
    """``AutoModel.from_pretrained`` without remote code, checked strictly: a missing weight (other than
    :data:`UNUSED_MODULES`), a mis-shaped one, or a leftover key of the model's own modules is an error
    (leftover keys of other heads, e.g. ``cls.predictions``, are dropped by name)."""
    import transformers  # lazy: transformers

    refuse_remote_code(spec, source)
    verbosity = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_error()  # its load report would repeat what is checked below
    try:
        with cache_only(cached):
            model, info = transformers.AutoModel.from_pretrained(source, trust_remote_code=False,
                                                                 output_loading_info=True)
    except LOAD_ERRORS as e:
        raise refused_file(spec.text, source, e) from None
    finally:
        transformers.utils.logging.set_verbosity(verbosity)
    own = {name.split(".")[0] for name, _ in model.named_modules() if name}
    own |= {name.split(".")[0] for name, _ in model.named_parameters()}
    missing = sorted(k for k in info["missing_keys"] if not k.startswith(UNUSED_MODULES))
    error = key_mismatch(
        f"{spec.text} ({source})",
        missing,
        sorted(k for k in info["unexpected_keys"] if missing or k.split(".")[0] in own),  # renamed, or leftovers
        sorted(k[0] if isinstance(k, tuple) else k for k in info["mismatched_keys"]),
    )
    if error:
        raise error
    return model


def _capped(tokenizer, text: str, limit: int, max_length: int, offsets: bool = False) -> str:
    """The text cut by :func:`cap_text` when the cut still has more than ``max_length`` tokens (same tokens
    kept, same truncation flag); the whole text in the rare case it does not (words too long for the
    vocabulary become one unknown token each). With ``offsets`` the cut is a plain prefix (no whitespace
    collapsed), so character offsets still point into the original text."""
    capped, cut = (text[:limit], len(text) > limit) if offsets else cap_text(text, limit)
    if cut and len(tokenizer(capped, add_special_tokens=True, verbose=False)["input_ids"]) > max_length:
        return capped
    return text


def token_arrays(max_length: int, hidden: int) -> dict:
    """Per-token arrays (``--tokens``): hidden states (zero on padding), attention mask, and each token's
    character offsets ``[start, end)`` into the text ((0, 0) for special and padding tokens)."""
    return {
        "text_tokens": ArraySpec(shape=(max_length, hidden), modality="text", dtype="float16"),
        "text_mask": ArraySpec(shape=(max_length,), modality="text", dtype="uint8"),
        "text_offsets": ArraySpec(shape=(max_length, 2), modality="text", dtype="int32"),
    }


def token_values(hidden, batch: dict, max_length: int) -> dict:
    """The :func:`token_arrays` values of a batch from the last hidden states (B, T, hidden), T <= max_length
    (the batch is run padded to its longest text only; the stored rows are zero-padded to max_length)."""
    import torch.nn.functional as F  # lazy: torch

    mask = batch["attention_mask"]
    pad = max_length - mask.shape[1]
    return {
        "text_tokens": to_numpy(F.pad(hidden * mask.unsqueeze(-1).to(hidden.dtype), (0, 0, 0, pad))),
        "text_mask": to_numpy(F.pad(mask, (0, pad))).astype("uint8"),
        "text_offsets": F.pad(batch["offsets"], (0, 0, 0, pad)).cpu().numpy().astype("int32"),
    }


class TokenizeCollate:
    """Picklable batch tokeniser: pads to the longest text, truncates at ``max_length`` and flags it;
    ``offsets`` adds each token's character offsets."""

    def __init__(self, tokenizer, max_length: int, offsets: bool = False):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.offsets = offsets
        self.char_limit = char_limit(max_length, tokenizer.get_vocab())

    def __call__(self, texts: list[str]) -> dict:
        import torch  # lazy: torch

        texts = [_capped(self.tokenizer, t, self.char_limit, self.max_length, self.offsets) for t in texts]  # before tokenising
        full = self.tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]
        lengths = [len(ids) for ids in full]
        enc = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
            return_offsets_mapping=self.offsets,
        )
        batch = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        if self.offsets:
            batch["offsets"] = enc["offset_mapping"]
        batch["truncated"] = torch.tensor([n > self.max_length for n in lengths], dtype=torch.uint8)
        return batch


def resolve_model_dir(spec, ident: str, filenames=HF_WEIGHT_FILES) -> tuple[str, str, bool]:
    """(what to pass to from_pretrained, weights sha256, found in the hub cache) for a folder or a hub id.

    A hub id that is not cached fails at once (offline or hub unreachable) with the one-line error.
    """
    hint = f"{spec.family}:/path/to/folder (a folder written by save_pretrained)"
    if os.path.isdir(ident):
        return ident, dir_weights_sha256(ident), False
    if ident.startswith(("/", ".", "~")) or ident.count("/") > 1:
        raise weights_error(spec.text, ident, hint, "no such folder")
    path = require_hub_files(spec.text, ident, filenames, hint)
    if path is None:
        return ident, f"hub:{ident}", False  # online and not cached: from_pretrained downloads it
    return ident, file_sha256(path), True


class HFTextFeaturizer(Featurizer):
    modalities = ("text",)

    def __init__(self, spec, options):
        super().__init__(spec, options)
        self.source, self._sha, self._cached = resolve_model_dir(spec, spec.model)
        self.model = self.tokenizer = self.config = None

    def weights_sha256(self) -> str:
        return self._sha

    def max_length(self) -> int:
        if self.options.max_length:
            return self.options.max_length
        cfg = os.path.join(self.source, "config.json")
        if os.path.isfile(cfg):
            with open(cfg) as f:
                return min(int(json.load(f).get("max_position_embeddings", 512)), 512)
        return 512

    def preprocessing(self) -> dict:
        return {"max_length": self.max_length(), "text_tokens": self.options.text_tokens}

    def load(self, device) -> None:
        super().load(device)
        import transformers  # lazy: transformers

        transformers.utils.logging.disable_progress_bar()
        self.model = load_hf_model(self.spec, self.source, self._cached)
        self._load_tokenizer()
        self.model.eval().to(device)
        self.config = self.model.config
        self.source, self._sha, self._cached = resolve_model_dir(self.spec, self.spec.model)  # what was loaded

    def prepare(self) -> None:
        """The model's config (the hidden size) and its tokeniser, no weights."""
        if self.tokenizer is not None:
            return
        if not (os.path.isdir(self.source) or self._cached):  # not local: load() downloads it
            return super().prepare()
        import transformers  # lazy: transformers

        refuse_remote_code(self.spec, self.source)
        try:
            with cache_only(self._cached):
                self.config = transformers.AutoConfig.from_pretrained(self.source, trust_remote_code=False)
        except (OSError, ValueError) as e:
            raise weights_error(self.spec.text, self.source, "hf:/path/to/folder", str(e).splitlines()[0]) from None
        self._load_tokenizer()

    def _load_tokenizer(self) -> None:
        import transformers  # lazy: transformers

        try:
            with cache_only(self._cached):
                self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.source, trust_remote_code=False)
        except OSError as e:
            raise weights_error(self.spec.text, self.source, "hf:/path/to/folder", str(e).splitlines()[0]) from None

    def arrays(self) -> dict:
        hidden = self.config.hidden_size
        out = {
            "text_embed": ArraySpec(shape=(hidden,), modality="text", dtype="float16"),
            "text_pooled": ArraySpec(shape=(hidden,), modality="text", dtype="float16"),
            "text_truncated": ArraySpec(shape=(1,), modality="text", dtype="uint8"),
        }
        if self.options.text_tokens:
            out.update(token_arrays(self.max_length(), hidden))
        return out

    def text_collate(self):
        tokens = self.options.text_tokens
        return TokenizeCollate(self.tokenizer, self.max_length(), offsets=tokens)

    def encode_text(self, batch: dict) -> dict:
        inputs = {k: v for k, v in batch.items() if k not in ("truncated", "offsets")}
        hidden = self.model(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        out = {
            "text_embed": to_numpy(mean),
            "text_pooled": to_numpy(hidden[:, 0]),
            "text_truncated": to_numpy(batch["truncated"]).reshape(-1, 1).astype("uint8"),
        }
        if self.options.text_tokens:
            out.update(token_values(hidden, batch, self.max_length()))
        return out
