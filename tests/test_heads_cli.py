"""train-head / predict / sweep / runs on small synthetic feature stores."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from memeprobe.cli import main
from memeprobe.data.records import Dataset, Meme
from memeprobe.heads.submission import read_submission
from memeprobe.store import ArraySpec, FeatureStore

D = 8
SPLITS = (("train", 500), ("dev_seen", 200), ("test_unseen", 150))


def make_store(path, fmt="hateful_memes", classes=(), binary="hateful", encoder="synthetic:v1", seed=0, text="text",
               absent_in_dev=()):
    """A store whose binary label needs image[0] * text[0] and whose classes follow image[1..K] (the classes at
    ``absent_in_dev`` without positives in dev_seen)."""
    rng = np.random.default_rng(seed)
    n = sum(m for _, m in SPLITS)
    a, b = rng.normal(size=(n, D)), rng.normal(size=(n, D))
    y = ((a[:, 0] + b[:, 0]) > 0).astype(int)
    Y = (a[:, 1:1 + len(classes)] + 0.3 * rng.normal(size=(n, len(classes))) > 0.8).astype(int)
    Y[SPLITS[0][1]:SPLITS[0][1] + SPLITS[1][1], list(absent_in_dev)] = 0
    memes, i = [], 0
    for split, m in SPLITS:
        for _ in range(m):
            test = split == "test_unseen"
            memes.append(Meme(f"{i:05d}", split, f"{text} {i}", f"img/{i:05d}.png",
                              None if test or binary is None else int(y[i]),
                              None if test or not classes else tuple(int(v) for v in Y[i])))
            i += 1
    ds = Dataset(path.parent, fmt, memes, label_names=tuple(classes), binary_name=binary)
    st = FeatureStore.create(path, ds)
    st.add_feature_set("img", {"image_embed": ArraySpec((D,), "image")}, {"encoder": encoder})
    st.add_feature_set("txt", {"text_embed": ArraySpec((D,), "text")}, {"encoder": "synthetic:text"})
    st.write_rows("img", np.arange(n), {"image_embed": a.astype(np.float16)}, "image")
    st.write_rows("txt", np.arange(n), {"text_embed": b.astype(np.float16)}, "text")
    st.close()
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def hm(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("hm") / "hm.h5")


def test_train_head_predict_hateful_memes(hm, tmp_path):
    model = tmp_path / "lr.pt"
    r = run("train-head", "logreg", "--store", hm, "--feature-set", "img", "--feature-set", "txt/text_embed",
            "--out", model, "--bootstrap", 100)
    assert r.exit_code == 0, r.output
    assert "dev_seen" in r.output and "auroc" in r.output
    runs = [json.loads(line) for line in (hm.parent / "runs.jsonl").read_text().splitlines()]
    last = runs[-1]
    assert last["feature_sets"] == ["img:image_embed", "txt:text_embed"] and len(last["store_checksum"]) == 64
    assert last["metrics"]["dev_seen"]["auroc"] > 0.8  # the label is linear in img[0] + txt[0]
    sub = tmp_path / "sub.csv"
    r = run("predict", model, "--store", hm, "--split", "test_unseen", "--out", sub)
    assert r.exit_code == 0, r.output
    rows = read_submission(sub, "hateful_memes")
    with FeatureStore.open(hm) as st:
        expected = list(st.ids[st.rows(["test_unseen"])])
    assert [i for i, _, _ in rows] == expected  # every id once, as stored (zero-padded)
    t = last["thresholds"][0]
    assert all(lab == int(p >= t) for _, p, lab in rows)


def test_predict_refuses_other_features(hm, tmp_path):
    model = tmp_path / "m.pt"
    assert run("train-head", "logreg", "--store", hm, "--feature-set", "img", "--out", model,
               "--bootstrap", 0).exit_code == 0
    other = make_store(tmp_path / "other.h5", encoder="synthetic:v2")
    r = CliRunner().invoke(main, ["predict", str(model), "--store", str(other), "--split", "test_unseen",
                                  "--out", str(tmp_path / "x.csv")])
    assert r.exit_code == 2 and "error:" in r.output and "other features" in r.output and "img" in r.output
    assert not (tmp_path / "x.csv").exists()
    r = CliRunner().invoke(main, ["predict", str(tmp_path / "nope.pt"), "--store", str(hm), "--split", "test_unseen",
                                  "--out", str(tmp_path / "x.csv")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_fusion_seeds_ensemble_clean_ids_plots(hm, tmp_path):
    with FeatureStore.open(hm) as st:
        dev_ids = list(st.ids[st.rows(["dev_seen"])])
    (tmp_path / "leak" / "clean_ids").mkdir(parents=True)
    (tmp_path / "leak" / "clean_ids" / "dev_seen.txt").write_text("\n".join(dev_ids[:120]) + "\n")
    r = run("train-head", "fusion", "--store", hm, "--image", "img", "--text", "txt", "--fusion", "concat",
            "--epochs", 3, "--hidden", "32", "--seeds", 2, "--ensemble", "--clean-ids", tmp_path / "leak",
            "--plots", tmp_path / "plots", "--bootstrap", 50, "--out", tmp_path / "f.pt")
    assert r.exit_code == 0, r.output
    assert "dev_seen@clean" in r.output and "±std" in r.output
    last = json.loads((hm.parent / "runs.jsonl").read_text().splitlines()[-1])
    assert last["metrics"]["dev_seen@clean"]["n"] == 120 and last["ensemble"] is True
    assert {p.name for p in (tmp_path / "plots").iterdir()} >= {"dev_seen_roc.png", "dev_seen_pr.png",
                                                                 "dev_seen_calibration.png"}
    r = CliRunner().invoke(main, ["train-head", "fusion", "--store", str(hm), "--feature-set", "img"])
    assert r.exit_code == 2 and "--image" in r.output


def test_sweep_and_runs_best(tmp_path):
    store = make_store(tmp_path / "s.h5")
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"logreg": {"C": [0.001, 1.0, 100.0]},
                                 "mlp": {"epochs": [1], "hidden": [[8]], "dropout": [0.1, 0.5]}}))
    r = run("sweep", "--store", store, "--feature-set", "img", "--feature-set", "txt", "--space", space,
            "--search", "grid", "--jobs", 2, "--top", 3)
    assert r.exit_code == 0, r.output
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert len(runs) == 5 and {r["head"] for r in runs} == {"logreg", "mlp"}
    best = max(runs, key=lambda r: r["metrics"]["dev_seen"]["auroc"])
    r = run("runs", "best", "--store", store, "--metric", "dev_seen.auroc", "--top", 2)
    assert r.exit_code == 0 and f'"run": "{best["run_id"]}"' in r.output
    r = run("runs", "list", "--store", store)
    assert r.exit_code == 0 and all(x["run_id"] in r.output for x in runs)
    r = CliRunner().invoke(main, ["runs", "best", "--store", str(store), "--metric", "dev_seen.nothing"])
    assert r.exit_code == 2 and "no run has metric" in r.output


def test_semeval_multilabel_json(tmp_path):
    names = ("Smears", "Loaded Language", "Name calling/Labeling")
    store = make_store(tmp_path / "se.h5", fmt="semeval2021_task6", classes=names, binary=None)
    r = run("train-head", "logreg", "--store", store, "--feature-set", "img", "--dev-split", "dev_seen",
            "--out", tmp_path / "ml.pt")
    assert r.exit_code == 0, r.output
    assert "micro_f1" in r.output and "per-class F1" in r.output and "Loaded Language" in r.output
    r = run("predict", tmp_path / "ml.pt", "--store", store, "--split", "test_unseen", "--out", tmp_path / "p.json")
    assert r.exit_code == 0, r.output
    sub = read_submission(tmp_path / "p.json", "semeval2021")
    assert len(sub) == 150 and all(set(labels) <= set(names) for _, labels in sub)
    assert any(labels for _, labels in sub)


def test_mami_answer_txt(tmp_path):
    store = make_store(tmp_path / "mami.h5", fmt="mami", binary="misogynous",
                       classes=("shaming", "stereotype", "objectification", "violence"))
    r = run("train-head", "mlp", "--store", store, "--feature-set", "img", "--feature-set", "txt",
            "--target", "all", "--epochs", 3, "--out", tmp_path / "mami.pt")
    assert r.exit_code == 0, r.output
    assert "mami_b_f1" in r.output
    r = run("predict", tmp_path / "mami.pt", "--store", store, "--split", "test_unseen", "--out", tmp_path / "answer.txt")
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "answer.txt").read_text().splitlines()
    assert len(lines) == 150 and all(len(line.split("\t")) == 6 for line in lines)
    assert read_submission(tmp_path / "answer.txt", "mami")[0][0] == "00700"


def test_python_api_matches_the_cli(hm, tmp_path):
    """memeprobe.train_head with the CLI's defaults gives the numbers train-head prints; memeprobe.predict writes
    the same file."""
    import memeprobe as api
    from memeprobe.heads._report import metrics_table

    r = run("train-head", "logreg", "--store", hm, "--feature-set", "img", "--bootstrap", 50)
    assert r.exit_code == 0, r.output
    assert "model: not saved (give --out FILE" in r.output
    t = api.train_head(hm, "logreg", ["img"], n_boot=50, out=tmp_path / "m.pt", log_run=False)
    assert metrics_table(t.metrics, t.seeds, t.baselines, t.in_sample) in r.stdout
    assert t.dev_split == "dev_seen" and t.untouched == ["dev_seen"] and t.runs_file is None
    p = api.predict(tmp_path / "m.pt", hm, "test_unseen", tmp_path / "a.csv")
    run("predict", tmp_path / "m.pt", "--store", hm, "--split", "test_unseen", "--out", tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert p.fmt == "hateful_memes" and p.metrics is None and p.unlabeled and len(p.ids) == 150


def test_feature_set_did_you_mean_and_registry_choices(hm):
    from memeprobe.heads.choices import FUSIONS
    from memeprobe.heads.kinds import HEAD_NAMES

    r = CliRunner().invoke(main, ["train-head", "logreg", "--store", str(hm), "--feature-set", "im:g"])
    assert r.exit_code == 2 and "no feature set 'im'" in r.output and "did you mean 'img'?" in r.output
    r = CliRunner().invoke(main, ["train-head", "--help"])
    assert "{" + "|".join(HEAD_NAMES) + "}" in r.output and {"ensemble", "span"} <= set(HEAD_NAMES)
    assert "[" + "|".join(FUSIONS) + "]" in r.output
    r = CliRunner().invoke(main, ["train-head", "svm", "--store", str(hm)])
    assert r.exit_code == 2 and "'svm' is not one of 'logreg'" in r.output


def test_feature_set_spec_suggests_the_set_name(tmp_path):
    from memeprobe.store.features import did_you_mean

    assert did_you_mean("st:minilm", ["st-minilm", "pixels"]) == " (did you mean 'st-minilm'?)"
    assert did_you_mean("pixel", ["st-minilm", "pixels"]) == " (did you mean 'pixels'?)"
    assert did_you_mean("zzz", ["st-minilm", "pixels"]) == ""


def test_training_epochs_report_progress_as_plain_lines_off_a_terminal(hm):
    r = CliRunner().invoke(main, ["train-head", "mlp", "--store", str(hm), "--feature-set", "img", "--epochs", "2",
                                  "--hidden", "8", "--bootstrap", "0"])
    assert r.exit_code == 0, r.output
    lines = [line for line in r.stderr.splitlines() if line.startswith("mlp: ")]
    assert lines and all(line.startswith("mlp: 2/2 epochs, training loss ") for line in lines)
    assert "epochs, training loss" not in r.stdout  # progress goes to stderr only


def test_sweep_saves_the_best_model_and_prints_a_command_that_reproduces_it(tmp_path):
    import shlex

    store = make_store(tmp_path / "s.h5")
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"logreg": {"C": [0.001, 1.0], "norm": ["l2", "none"]}}))
    r = run("sweep", "--store", store, "--feature-set", "img", "--feature-set", "txt", "--space", space,
            "--search", "grid", "--jobs", 1, "--out", tmp_path / "best.pt")
    assert r.exit_code == 0, r.output
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    best = max(runs, key=lambda x: x["metrics"]["cv"]["auroc"])  # ranked out-of-fold, as train-head selects
    command = next(line for line in r.output.splitlines() if line.startswith("reproduce it with: "))
    args = shlex.split(command.removeprefix("reproduce it with: "))
    assert args[:3] == ["memeprobe", "train-head", "logreg"] and args[-2:] == ["--out", str(tmp_path / "best.pt")]
    sub_a = tmp_path / "a.csv"
    assert run("predict", tmp_path / "best.pt", "--store", store, "--split", "dev_seen", "--out", sub_a).exit_code == 0
    args[-1] = str(tmp_path / "again.pt")
    r = run(*args[1:], "--bootstrap", 0)
    assert r.exit_code == 0, r.output
    again = json.loads((tmp_path / "runs.jsonl").read_text().splitlines()[-1])
    assert again["metrics"]["dev_seen"]["auroc"] == best["metrics"]["dev_seen"]["auroc"]
    sub_b = tmp_path / "b.csv"
    assert run("predict", tmp_path / "again.pt", "--store", store, "--split", "dev_seen", "--out", sub_b).exit_code == 0
    assert sub_a.read_bytes() == sub_b.read_bytes()  # the saved best model is the one the command rebuilds


def test_runs_of_a_store_are_those_of_its_dataset(tmp_path):
    a = make_store(tmp_path / "a.h5")
    b = make_store(tmp_path / "b.h5", text="caption")  # another dataset beside it: one runs.jsonl
    for store in (a, b, b):
        assert run("train-head", "logreg", "--store", store, "--feature-set", "img", "--bootstrap", 0).exit_code == 0
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    ids = {s: [x["run_id"] for x in runs if x["store"] == str(s.resolve())] for s in (a, b)}
    assert len(ids[a]) == 1 and len(ids[b]) == 2 and len({x["dataset_fingerprint"] for x in runs}) == 2
    out = run("runs", "list", "--store", a).output
    assert ids[a][0] in out and not any(i in out for i in ids[b])
    out = run("runs", "best", "--store", b, "--top", 5).output
    assert all(i in out for i in ids[b]) and ids[a][0] not in out
    assert all(x["run_id"] in run("runs", "list", "--runs", tmp_path / "runs.jsonl").output for x in runs)


def test_generic_dataset_gets_a_prediction_csv(tmp_path):
    store = make_store(tmp_path / "g.h5", fmt="generic", binary="toxic")
    assert run("train-head", "logreg", "--store", store, "--feature-set", "img", "--feature-set", "txt",
               "--out", tmp_path / "g.pt", "--bootstrap", 0).exit_code == 0
    r = run("predict", tmp_path / "g.pt", "--store", store, "--split", "test_unseen", "--out", tmp_path / "p.csv")
    assert r.exit_code == 0 and "(csv format)" in r.output, r.output
    assert (tmp_path / "p.csv").read_text().splitlines()[0] == "id,label,proba_toxic"
    rows = read_submission(tmp_path / "p.csv", "csv")
    t = json.loads((tmp_path / "runs.jsonl").read_text().splitlines()[-1])["thresholds"][0]
    assert len(rows) == 150 and {lab for _, lab, _ in rows} == {"toxic", "not_toxic"}
    assert all((lab == "toxic") == (p["toxic"] >= t) for _, lab, p in rows)
    # classes: one probability column per class, the label the predicted class names
    names = ("red", "green", "blue")
    (tmp_path / "m").mkdir()
    multi = make_store(tmp_path / "m" / "m.h5", fmt="generic", classes=names, binary=None)
    assert run("train-head", "logreg", "--store", multi, "--feature-set", "img", "--out", tmp_path / "m.pt",
               "--bootstrap", 0).exit_code == 0
    assert run("predict", tmp_path / "m.pt", "--store", multi, "--split", "test_unseen", "--out",
               tmp_path / "m.csv").exit_code == 0
    rows = read_submission(tmp_path / "m.csv", "csv")
    assert list(rows[0][2]) == list(names)
    assert all(set(filter(None, lab.split("|"))) <= set(names) for _, lab, _ in rows)


def test_training_epochs_show_a_tqdm_bar_on_a_terminal(hm):
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # tqdm draws nothing 0 columns wide
    proc = subprocess.Popen([sys.executable, "-c", "from memeprobe.cli import main; main()", "train-head", "mlp",
                             "--store", str(hm), "--feature-set", "img", "--epochs", "3", "--hidden", "8",
                             "--bootstrap", "0"], stdout=subprocess.DEVNULL, stderr=slave,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    os.close(slave)
    chunks = []
    while True:  # read while it runs: the terminal's buffer is small
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    err = b"".join(chunks).decode("utf-8", "replace")
    assert "mlp epochs:" in err and "/3 [" in err and "epoch/s" in err and "training loss" not in err


@pytest.mark.parametrize("command", ["train-head", "predict", "sweep", "runs"])
def test_help_of_the_heads_commands_loads_no_torch_and_no_sklearn(command):
    import subprocess
    import sys

    code = ("import sys\nfrom memeprobe.cli import main\ntry:\n    main([%r, '--help'], prog_name='memeprobe')\n"
            "except SystemExit:\n    pass\nprint(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'sklearn')))"
            % command)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Usage: memeprobe" in out and out.strip().splitlines()[-1] == "[]", out


@pytest.mark.parametrize("args,message", [
    (["train-head", "logreg", "--store", "{missing}", "--feature-set", "img"], "does not exist"),
    (["train-head", "logreg", "--store", "{store}", "--feature-set", "imgg"], "has no feature set 'imgg' (did you mean 'img'?)"),
    (["train-head", "mlp", "--store", "{store}", "--feature-set", "img", "--eval-split", "nope"], "has no split nope"),
    (["train-head", "fusion", "--store", "{store}", "--image", "img/image_embed", "--text", "txt/nope"], "nope"),
    (["sweep", "--store", "{store}", "--feature-set", "txt", "--dev-split", "nope"], "has no split nope"),
    (["predict", "{missing}", "--store", "{store}", "--split", "dev_seen"], "model file"),
    (["predict", "{model}", "--store", "{store}", "--split", "nope"], "has no split nope"),
])
def test_a_wrong_path_or_name_is_one_line_before_torch_and_sklearn_load(hm, tmp_path, args, message):
    import subprocess
    import sys

    import torch

    model = tmp_path / "m.pt"
    torch.save({"not": "checked this early"}, model)  # a torch file: its contents are checked after the imports
    args = [a.format(missing=tmp_path / "missing.h5", store=hm, model=model) for a in args] + ["--out", str(tmp_path / "o")]
    code = ("import sys\nfrom memeprobe.cli import main\ntry:\n    main(%r, prog_name='memeprobe')\n"
            "except SystemExit as e:\n    print('exit', e.code)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'sklearn')))" % args)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.splitlines()[-2:] == ["exit 2", "[]"], run.stdout + run.stderr
    errors = run.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0], run.stderr


@pytest.mark.parametrize("kind,args,config", [
    ("logreg", (), {}),
    ("mlp", ("--epochs", "3", "--hidden", "16"), {"epochs": 3, "hidden": (16,)}),
    ("ensemble", ("--members", "logreg,retrieval"), {"members": ["logreg", "retrieval"]}),
])
@pytest.mark.parametrize("target", ["label", "labels"])
def test_create_head_fit_predict_decides_as_the_saved_model(tmp_path, kind, args, config, target):
    """A Python user's create_head(...).fit(X, y).predict(X) on the rows train-head trained on, with the same seed,
    gives the saved model's thresholds, decision rule and decisions."""
    from memeprobe.heads import create_head, load_model
    from memeprobe.store.features import label_names, load_features

    store = make_store(tmp_path / "s.h5", fmt="mami", binary="misogynous",
                       classes=("shaming", "stereotype", "objectification", "violence"))
    model = tmp_path / "m.pt"
    r = run("train-head", kind, "--store", store, "--feature-set", "img", "--feature-set", "txt", "--target", target,
            "--seed", 3, "--bootstrap", 0, "--out", model, *args)
    assert r.exit_code == 0, r.output
    with FeatureStore.open(store) as st:
        train = load_features(st, ["img", "txt"], ["train"], target)
        test = load_features(st, ["img", "txt"], ["test_unseen"], target)
        names = label_names(st, target)
    head = create_head(kind, label_names=names, seed=3, blocks=tuple(train.blocks), **config).fit(train.X, train.y)
    saved, meta = load_model(model)
    assert meta["label_names"] == names
    np.testing.assert_array_equal(head.thresholds_, saved.thresholds_)
    assert head.rule_ == saved.rule_
    np.testing.assert_array_equal(head.predict(test.X), saved.predict(test.X))
    # (a loaded retrieval index is normalised once more: its similarities move by ~1e-8)
    np.testing.assert_allclose(head.positive_proba(test.X), saved.positive_proba(test.X), rtol=1e-6)
    sub = tmp_path / "sub.txt"
    assert run("predict", model, "--store", store, "--split", "test_unseen", "--out", sub).exit_code == 0
    pred = head.predict(test.X)
    written = np.array([v for _, v in read_submission(sub, "mami")])
    expected = pred[:, None] if pred.ndim == 1 else np.hstack([pred.max(1, keepdims=True), pred]) \
        if pred.shape[1] == 4 else pred
    expected[:, 1:] *= expected[:, :1]
    np.testing.assert_array_equal(written, expected)
