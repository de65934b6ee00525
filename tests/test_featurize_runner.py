"""``memeprobe featurize``: end to end on make-sample data, resume (also after SIGKILL), bad images,
provenance refusal, real SemEval images."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from memeprobe.cli import main
from memeprobe.demo.synthetic import make_sample
from memeprobe.store import DONE, FAILED, TODO, FeatureStore
from tests.test_featurize_encoders import save_tiny_clip
from tests.test_featurize_images import write_bad_images

N = 60


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    d = tmp_path_factory.mktemp("sample")
    make_sample(d, n=N, seed=0)
    return d


def featurize(*args):
    result = CliRunner().invoke(main, ["featurize", *map(str, args), "--no-progress"])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _all_arrays(path):
    with FeatureStore.open(path) as st:
        return {(name, a): st.read(name, a) for name in st.feature_sets() for a in st.arrays(name)}


def test_featurize_all_offline_then_rerun_does_no_model_work(sample, tmp_path):
    store = tmp_path / "s.h5"
    first = featurize("all", sample, "--store", store, "--preset", "offline")
    assert first.exit_code == 0, first.output
    assert "st-minilm/text: 60 rows to do" in first.output and "pixels/image: 60 rows to do" in first.output
    truth = json.loads((sample / "ground_truth.json").read_text())
    with FeatureStore.open(store) as st:
        assert st.feature_sets() == ["pixels", "st-minilm", "timm-tf_efficientnet_lite0-packaged"]
        assert (st.status("timm-tf_efficientnet_lite0-packaged", "image") == DONE).all()
        assert (st.status("st-minilm", "text") == DONE).all() and (st.status("pixels", "image") == DONE).all()
        row = {(s, i): r for r, (s, i) in enumerate(zip(st.splits, st.ids))}
        text, image, phash = st.read("st-minilm", "text_embed"), st.read("pixels", "image_embed"), st.read("pixels", "image_phash")
        assert text.shape == (N, 384) and image.shape[0] == N and phash.shape == (N, 64)
        assert st.provenance("st-minilm")["encoder"] == "st:minilm"
    for pair in truth["pairs"]:
        a, b = row[pair["a"]["split"], pair["a"]["id"]], row[pair["b"]["split"], pair["b"]["id"]]
        if pair["text_relation"] == "identical":
            np.testing.assert_array_equal(text[a], text[b])
        if pair["image_relation"] == "identical":
            np.testing.assert_array_equal(image[a], image[b])
        if pair["image_relation"] == "near":
            assert (phash[a] != phash[b]).sum() < (phash[a] != phash[(a + 1) % N]).sum()
    again = featurize("all", sample, "--store", store, "--preset", "offline")
    assert again.exit_code == 0, again.output
    assert "st-minilm/text: 0 rows to do" in again.output and "pixels/image: 0 rows to do" in again.output
    assert "rows in" not in again.output  # no encoding pass ran
    assert "0 written" in again.output


def test_two_offline_runs_are_bit_identical(sample, tmp_path):
    for name in ("a.h5", "b.h5"):
        result = featurize("all", sample, "--store", tmp_path / name, "--preset", "offline", "--limit", "12")
        assert result.exit_code == 0, result.output
    a, b = _all_arrays(tmp_path / "a.h5"), _all_arrays(tmp_path / "b.h5")
    assert a.keys() == b.keys() and ("timm-tf_efficientnet_lite0-packaged", "image_embed") in a
    for key in a:
        assert a[key][:12].tobytes() == b[key][:12].tobytes(), key
    assert np.abs(a["timm-tf_efficientnet_lite0-packaged", "image_embed"][:12]).sum() > 0


def test_one_modality_limit_and_provenance_refusal(sample, tmp_path):
    store = tmp_path / "p.h5"
    text_only = featurize("text", sample, "--store", store, "--preset", "offline", "--limit", "10")
    assert text_only.exit_code == 0, text_only.output
    assert "pixels: skipped" in text_only.output
    with FeatureStore.open(store) as st:
        assert st.feature_sets() == ["st-minilm"]
        assert st.status("st-minilm", "text").tolist() == [DONE] * 10 + [TODO] * (N - 10)
    assert featurize("image", sample, "--store", store, "--featurizer", "pixels", "--limit", "10").exit_code == 0
    refused = featurize("image", sample, "--store", store, "--featurizer", "pixels", "--downscale", "64")
    assert refused.exit_code == 2
    assert "error:" in refused.output and "'pixels'" in refused.output and "--overwrite" in refused.output
    replaced = featurize("image", sample, "--store", store, "--featurizer", "pixels", "--downscale", "64", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    with FeatureStore.open(store) as st:
        assert st.provenance("pixels")["preprocessing"]["downscale"] == 64
        assert (st.status("pixels", "image") == DONE).all()


def test_bad_images_never_stop_the_run(sample, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sample, data)
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    write_bad_images(tmp_path)
    bad = {}
    for r, name in zip(rows, ["corrupt.png", "empty.png", "truncated.png", "bomb.png", "jpeg_bytes.png"]):
        shutil.copyfile(tmp_path / name, data / r["img"])
        bad[r["id"]] = name
    os.remove(data / rows[5]["img"])
    bad[rows[5]["id"]] = "missing"
    store = tmp_path / "bad.h5"
    result = featurize("all", data, "--store", store, "--preset", "offline", "--workers", "2", "--batch-size", "8")
    assert result.exit_code == 3, result.output
    assert "completed with 10 failures" in result.output  # 5 bad images x 2 image featurizers
    with FeatureStore.open(store) as st:
        assert (st.status("st-minilm", "text") == DONE).all()  # the text half is written for every meme
        failures = {st.ids[r]: why for r, mod, why in st.failures("pixels")}
        assert failures == {st.ids[r]: why for r, mod, why in st.failures("timm-tf_efficientnet_lite0-packaged")}
        status = dict(zip(st.ids, st.status("pixels", "image")))
    expected = {i: n for i, n in bad.items() if n != "jpeg_bytes.png"}
    assert set(failures) == set(expected)
    for i, reason in [("corrupt.png", "not an image"), ("empty.png", "empty file"), ("truncated.png", "corrupt image"),
                      ("bomb.png", "decompression bomb"), ("missing", "missing file")]:
        meme = next(k for k, v in bad.items() if v == i)
        assert reason in failures[meme]
        assert f"train/{meme} pixels/image" in result.output
    jpeg_meme = next(k for k, v in bad.items() if v == "jpeg_bytes.png")
    assert status[jpeg_meme] == DONE
    assert sum(v == FAILED for v in status.values()) == 5
    again = featurize("all", data, "--store", store, "--preset", "offline")
    assert again.exit_code == 3 and "pixels/image: 0 rows to do" in again.output


def test_resume_after_sigkill_equals_a_clean_run(sample, tmp_path):
    rows = 30
    args = ["featurize", "all", str(sample), "--featurizer", "st:minilm", "--featurizer", "pixels",
            "--limit", str(rows), "--batch-size", "1", "--workers", "0", "--no-progress"]
    killed = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, "-c", "from memeprobe.cli import main; main()", *args, "--store", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = 0
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            with FeatureStore.open(killed) as st:
                done = int((st.status("st-minilm", "text") == DONE).sum()) if "st-minilm" in st.feature_sets() else 0
        except Exception:  # the file is still being created
            done = 0
        if 0 < done < rows // 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < done < rows, "the featurize subprocess was not caught mid-run"
    resumed = featurize(*args[1:], "--store", killed)
    assert resumed.exit_code == 0, resumed.output
    todo = int(resumed.output.split("st-minilm/text: ")[1].split(" rows to do")[0])
    assert 0 < todo <= rows - done
    clean = tmp_path / "clean.h5"
    assert featurize(*args[1:], "--store", clean).exit_code == 0
    got, want = _all_arrays(killed), _all_arrays(clean)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=str(key))


def test_ctrl_c_says_what_was_saved_and_exits_130(sample, tmp_path):
    rows = 30
    args = ["featurize", "text", str(sample), "--featurizer", "st:minilm", "--limit", str(rows),
            "--batch-size", "1", "--workers", "0", "--no-progress", "--store", str(tmp_path / "s.h5")]
    # a shell's background job starts with SIGINT ignored, and Python then keeps ignoring it: the child restores
    # Python's own handler first (in the child itself, not in a preexec_fn forked from this threaded process)
    child = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); from memeprobe.cli import main; main()"
    proc = subprocess.Popen([sys.executable, "-c", child, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    done, deadline = 0, time.time() + 120
    while time.time() < deadline and proc.poll() is None and not 0 < done < rows // 2:
        try:
            with FeatureStore.open(tmp_path / "s.h5") as st:
                done = int((st.status("st-minilm", "text") == DONE).sum()) if "st-minilm" in st.feature_sets() else 0
        except Exception:  # the file is still being created
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert 0 < done < rows, "the featurize subprocess was not caught mid-run"
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "re-run the same command to resume" in err
    with FeatureStore.open(tmp_path / "s.h5") as st:
        saved = int((st.status("st-minilm", "text") == DONE).sum())
    assert f"interrupted: {saved} done rows saved in {tmp_path / 's.h5'} (st-minilm/text {saved} of {N})" in err
    resumed = featurize(*args[1:])
    assert resumed.exit_code == 0 and f"st-minilm/text: {rows - saved} rows to do" in resumed.output


def test_image_text_featurizer_still_writes_the_text_of_a_meme_without_image(sample, tmp_path):
    _, ckpt = save_tiny_clip(tmp_path)
    data = tmp_path / "data"
    shutil.copytree(sample, data)
    first = json.loads((data / "train.jsonl").read_text().splitlines()[0])
    os.remove(data / first["img"])
    store = tmp_path / "clip.h5"
    result = featurize("all", data, "--store", store, "--featurizer", f"clip:mp-tiny-clip:{ckpt}", "--regions", "2",
                       "--limit", "12", "--batch-size", "4")
    assert result.exit_code == 3, result.output
    assert "completed with 1 failures" in result.output and f"train/{first['id']} clip-mp-tiny-clip-tiny/image" in result.output
    with FeatureStore.open(store) as st:
        name = "clip-mp-tiny-clip-tiny"
        row = list(st.ids).index(first["id"])
        assert st.status(name, "text")[:12].tolist() == [DONE] * 12
        image = st.status(name, "image")[:12]
        assert image[row] == FAILED and (np.delete(image, row) == DONE).all()
        assert st.read(name, "image_regions").shape == (N, 4, 64)
        assert st.read(name, "text_embed")[row].any()  # the text half of the imageless meme is real


def test_hateful_memes_texts_without_images(shared_data, tmp_path):
    result = featurize("all", shared_data / "hateful_memes", "--store", tmp_path / "hm.h5", "--preset", "offline",
                       "--limit", "50")
    assert result.exit_code == 0, result.output
    assert result.output.count("has an image file") == 1
    assert "note: none of the 50 selected memes has an image file on disk: featurizing texts only" in result.output
    assert "0 failures" in result.output
    with FeatureStore.open(tmp_path / "hm.h5") as st:
        assert st.status("st-minilm", "text")[:50].tolist() == [DONE] * 50
        assert "pixels" not in st.feature_sets()


def test_semeval_jpeg_bytes_in_png(shared_data, tmp_path):
    store = tmp_path / "sem.h5"
    result = featurize("all", shared_data / "semeval2021_task6", "--store", store, "--featurizer", "pixels",
                       "--limit", "40")
    assert result.exit_code == 0, result.output
    with FeatureStore.open(store) as st:
        assert st.status("pixels", "image")[:40].tolist() == [DONE] * 40


def test_store_writer_groups_back_to_back_batches_and_reports_only_committed_rows(tmp_path):
    from memeprobe.data.records import Dataset, Meme
    from memeprobe.featurize.runner import Summary
    from memeprobe.featurize.writer import COMMIT_ROWS, StoreWriter
    from memeprobe.store import ArraySpec

    n, batch = 3 * COMMIT_ROWS, 32
    memes = [Meme(id=str(i), split="train", text="t") for i in range(n)]
    values = np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32)
    with FeatureStore.create(tmp_path / "s.h5", Dataset(tmp_path, "jsonl", memes)) as st:
        st.add_feature_set("f", {"v": ArraySpec(shape=(8,), modality="text", dtype="float32")},
                           {"encoder": "test", "weights_sha256": "", "preprocessing": {}})
        reported = []
        writer = StoreWriter(st, "f", "text", Summary(), progress=reported.append)
        order = np.random.default_rng(1).permutation(n)  # rows in any order, as length-sorted texts come
        for start in range(0, COMMIT_ROWS + batch, batch):  # the first batch at once, then one commit once
            rows = order[start:start + batch]                # COMMIT_ROWS rows wait (back to back)
            assert (st.status("f", "text")[rows] == TODO).all()
            writer.write(rows, {"v": values[rows]})
        assert reported == [batch, COMMIT_ROWS]
        assert (st.status("f", "text")[order[:COMMIT_ROWS + batch]] == DONE).sum() == COMMIT_ROWS + batch
        writer.committed -= 3600  # a slow encoder: a batch after COMMIT_SECONDS is committed at once
        rows = order[COMMIT_ROWS + batch:COMMIT_ROWS + 2 * batch]
        writer.write(rows, {"v": values[rows]})
        assert reported == [batch, COMMIT_ROWS, batch]
        rest = order[COMMIT_ROWS + 2 * batch:COMMIT_ROWS + 3 * batch]
        writer.write(rest, {"v": values[rest]})
        assert (st.status("f", "text")[rest] == TODO).all()  # waiting, not reported
        writer.flush()
        assert reported == [batch, COMMIT_ROWS, batch, batch] and writer.summary.written == COMMIT_ROWS + 3 * batch
        done = order[:COMMIT_ROWS + 3 * batch]
        np.testing.assert_array_equal(st.read("f", "v")[np.sort(done)], values[np.sort(done)])
