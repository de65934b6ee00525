"""``Featurizer.prepare()`` (what a Ray run does on the driver's node) reads no weights where the family
allows, and gives the arrays, provenance and pre-processing that ``load()`` gives."""
import numpy as np
import pytest

import memeprobe.featurize  # noqa: F401  (torchvision shim before open_clip/timm/transformers)
from memeprobe.errors import WeightsError
from memeprobe.featurize.base import Prepared, Preprocess
from memeprobe.featurize.spec import Options, create_featurizer
from tests.test_featurize_encoders import _image, save_tiny_clip, tiny_albert  # noqa: F401  (fixture)

torch = pytest.importorskip("torch")
CPU = torch.device("cpu")
TEXTS = ["a short one", "a somewhat longer caption about a cat and a very large dog " * 3, ""]


def _same_preprocessing(prepared, loaded):
    """Both featurizers pre-process an image and tokenise texts identically."""
    a, b = Preprocess.of(prepared), Preprocess.of(loaded)
    if a.transform is not None:
        x, y = a.transform(_image(5, (120, 70))), b.transform(_image(5, (120, 70)))
        assert x.keys() == y.keys()
        for k in x:
            torch.testing.assert_close(x[k], y[k], rtol=0, atol=0)
    if a.collate is not None:
        x, y = a.collate(TEXTS), b.collate(TEXTS)
        assert x.keys() == y.keys()
        for k in x:
            torch.testing.assert_close(x[k], y[k], rtol=0, atol=0)


@pytest.mark.parametrize("name, regions", [("test_vit", 2), ("test_resnet", 3), ("test_efficientnet", 0)])
def test_timm_prepares_on_the_meta_device_what_it_loads(tmp_path, name, regions):
    import timm

    torch.save(timm.create_model(name, num_classes=0).state_dict(), tmp_path / "w.pth")
    spec = f"timm:{name}:{tmp_path / 'w.pth'}"
    prepared, loaded = create_featurizer(spec, Options(regions=regions)), create_featurizer(spec, Options(regions=regions))
    prepared.prepare()
    assert prepared.model is None and prepared.device is None  # no weights read, nothing to encode with
    loaded.load(CPU)
    assert Prepared.of(prepared) == Prepared.of(loaded)
    assert ("image_regions" in prepared.arrays()) == bool(regions)
    _same_preprocessing(prepared, loaded)


def test_prepare_reads_no_weights_and_load_still_refuses_bad_ones(tmp_path):
    import timm

    state = timm.create_model("test_resnet", num_classes=0).state_dict()
    del state["conv1.0.weight"]
    torch.save(state, tmp_path / "holed.pth")
    f = create_featurizer(f"timm:test_resnet:{tmp_path / 'holed.pth'}")
    f.prepare()
    assert f.arrays()["image_embed"].shape == (timm.create_model("test_resnet", num_classes=0).num_features,)
    with pytest.raises(WeightsError, match=r"missing 1 \(conv1.0.weight\)"):
        create_featurizer(f"timm:test_resnet:{tmp_path / 'holed.pth'}").load(CPU)


def test_packaged_lite0_prepares_what_it_loads():
    prepared, loaded = create_featurizer("timm:tf_efficientnet_lite0:packaged"), create_featurizer(
        "timm:tf_efficientnet_lite0:packaged")
    prepared.prepare()
    loaded.load(CPU)
    assert Prepared.of(prepared) == Prepared.of(loaded) and prepared.arrays()["image_embed"].shape == (1280,)
    _same_preprocessing(prepared, loaded)


def test_clip_prepares_on_the_meta_device_what_it_loads(tmp_path):
    _, ckpt = save_tiny_clip(tmp_path)
    spec = f"clip:mp-tiny-clip:{ckpt}"
    prepared, loaded = create_featurizer(spec, Options(regions=2)), create_featurizer(spec, Options(regions=2))
    prepared.prepare()
    assert prepared.model is None
    loaded.load(CPU)
    assert Prepared.of(prepared) == Prepared.of(loaded)
    assert {"image_regions", "text_pooled", "image_pooled"} <= set(prepared.arrays())
    _same_preprocessing(prepared, loaded)


def test_hf_prepares_from_its_config_and_tokeniser(tiny_albert):  # noqa: F811  (fixture)
    _, _, folder = tiny_albert
    prepared, loaded = (create_featurizer(f"hf:{folder}", Options(text_tokens=True, max_length=12)) for _ in range(2))
    prepared.prepare()
    assert prepared.model is None
    loaded.load(CPU)
    assert Prepared.of(prepared) == Prepared.of(loaded)
    _same_preprocessing(prepared, loaded)


@pytest.mark.parametrize("spec", ["st:minilm", "pixels"])
def test_families_without_a_weight_free_path_prepare_by_loading(spec):
    prepared, loaded = create_featurizer(spec), create_featurizer(spec)
    prepared.prepare()
    loaded.load(CPU)
    assert Prepared.of(prepared) == Prepared.of(loaded)
    _same_preprocessing(prepared, loaded)
    if spec == "pixels":
        np.testing.assert_array_equal(Preprocess.of(prepared).transform(_image(1))["image_embed"],
                                      Preprocess.of(loaded).transform(_image(1))["image_embed"])
