"""One dataset contract: every registered format loads, round-trips its ids, splits and labels and refuses a bad
row in one line naming file and row (a sample of each format from tests/helpers.py); every command that reads
a dataset takes the same options (through the CLI), and the Python loader takes the same names; data written
by the tests in the layouts users have."""
import inspect
import json
from collections import Counter

import click
import pytest
from click.testing import CliRunner
from PIL import Image

from memeprobe.cli import main
from memeprobe.data import FORMATS, detect_format, load_dataset
from memeprobe.errors import DatasetError
from tests.helpers import BAD_ROWS, FORMAT_SAMPLES, cli, write_jsonl

HARM = [("not harmful", "none"), ("somewhat harmful", "individual"), ("very harmful", "organization"),
        ("not harmful", "none"), ("somewhat harmful", "community"), ("not harmful", "none")]


def run(args, code=0):
    res = cli(*args, code=code)
    return res.stdout if code == 0 else res.output


def summary(args):
    return json.loads(run(["data", "summary", *args, "--json"]))


# every registered format (a format without a sample in tests/helpers.py fails here until it has one)
FORMAT_CASES = [pytest.param(name, variant, id=f"{name}-{variant}")
                for name in FORMATS for variant in FORMAT_SAMPLES.get(name, {None: None})]


def format_sample(name, variant, root, bad=None):
    if name not in FORMAT_SAMPLES:
        pytest.fail(f"dataset format {name!r} is registered but has no sample: add one to FORMAT_SAMPLES in "
                    "tests/helpers.py")
    root.mkdir()
    return FORMAT_SAMPLES[name][variant](root, bad)


def test_every_format_sample_is_of_a_registered_format():
    assert set(FORMAT_SAMPLES) <= set(FORMATS)


@pytest.mark.parametrize("name, variant", FORMAT_CASES)
def test_every_format_loads_and_round_trips_ids_splits_and_labels(tmp_path, name, variant):
    sample = format_sample(name, variant, tmp_path / "d")
    assert detect_format(sample.path) == name
    for fmt in (None, name):
        ds = load_dataset(sample.path, format=fmt)
        assert ds.format == name and ds.options == {"format": name}
        assert [(m.split, m.id, m.text, m.label, m.labels, m.spans) for m in ds.memes] == sample.memes
        assert ds.splits() == list(dict.fromkeys(split for split, *_ in sample.memes))
    counts = json.loads(cli("data", "summary", sample.path, "--json").stdout)["splits"]
    assert {split: v["n"] for split, v in counts.items()} == Counter(split for split, *_ in sample.memes)


@pytest.mark.parametrize("bad", BAD_ROWS)
@pytest.mark.parametrize("name, variant", FORMAT_CASES)
def test_every_format_refuses_a_bad_row_in_one_line_naming_file_and_row(tmp_path, name, variant, bad):
    sample = format_sample(name, variant, tmp_path / "d", bad)
    for fmt in (None, name):
        with pytest.raises(DatasetError) as e:
            load_dataset(sample.path, format=fmt)
        msg = str(e.value)
        assert msg.startswith(sample.bad_at) and msg[len(sample.bad_at)] in ": " and "\n" not in msg, msg
    out = cli("data", "summary", sample.path, code=2).output
    assert out.startswith(f"error: {msg}") and out.count("\n") == 1, out


def annotations_and_images(root):
    """``annotations/{train,dev}.jsonl`` + ``images/``: image paths relative to ``images/``, list labels."""
    (root / "images").mkdir(parents=True)
    for split, rows in (("train", HARM[:4]), ("dev", HARM[4:])):
        records = []
        for i, labels in enumerate(rows):
            name = f"{split}_{i}.png"
            Image.new("RGB", (24, 24), (40 * i, 90, 200 if split == "dev" else 10)).save(root / "images" / name)
            records.append({"id": f"{split}{i}", "image": name, "text": f"{split} caption {i}", "labels": list(labels)})
        write_jsonl(root / "annotations" / f"{split}.jsonl", records)
    return root


def reading_commands():
    """(path, command) of every CLI command with a DATA argument (a dataset to read)."""
    out = []

    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
        elif any(isinstance(p, click.Argument) and p.name == "data" for p in cmd.params):
            out.append((" ".join(path), cmd))

    walk(main, ())
    return out


def test_every_dataset_command_has_the_same_options_as_load_dataset():
    commands = dict(reading_commands())
    assert {"data summary", "featurize all", "featurize image", "featurize text", "leakage report"} <= set(commands)
    python = set(inspect.signature(load_dataset).parameters) - {"path", "allow_duplicate_ids", "allow_empty_text"}
    for name, cmd in commands.items():
        options = {p.name for p in cmd.params if isinstance(p, click.Option)}
        assert python <= options, (name, python - options)
        fmt = next(p for p in cmd.params if p.name == "format")
        assert list(fmt.type.choices) == ["hateful_memes", "semeval2021_task6", "mami", "generic"], name


def test_image_root_reads_annotations_beside_an_images_folder(tmp_path):
    root = annotations_and_images(tmp_path / "harm")
    plain = summary([root / "annotations", "--label-col", "labels[0]"])
    assert plain["splits"]["train"]["images_missing"] == 4  # relative to annotations/: not there
    s = summary([root / "annotations", "--image-root", root / "images", "--label-col", "labels[0]"])
    assert {k: (v["images_found"], v["images_missing"]) for k, v in s["splits"].items()} == {"train": (4, 0),
                                                                                          "dev": (2, 0)}
    # the same through featurize (pixels are real features of the image files) and leakage report
    out = run(["featurize", "image", root / "annotations", "--image-root", root / "images", "--store",
               tmp_path / "s.h5", "--featurizer", "pixels", "--no-progress", "--label-col", "labels[0]"])
    assert "6 written, 0 failures" in out
    report = json.loads(run(["leakage", "report", root / "annotations", "--image-root", root / "images",
                             "--label-col", "labels[0]", "--out", tmp_path / "rep", "--json"]))
    assert report["skipped"] == {}  # every image found and decoded
    ds = load_dataset(root / "annotations", image_root=root / "images", label_col="labels[0]")
    assert all(ds.image_path(m).is_file() for m in ds.memes)


def test_image_root_keeps_the_outside_root_rules(tmp_path):
    root = annotations_and_images(tmp_path / "harm")
    write_jsonl(root / "annotations" / "train.jsonl", [{"id": "a", "image": "../secret.png", "text": "t"}])
    msg = run(["data", "summary", root / "annotations", "--image-root", root / "images"], code=2)
    assert "points outside the image root" in msg and "(--image-root)" in msg
    Image.new("RGB", (8, 8)).save(tmp_path / "secret.png")
    (root / "images" / "link.png").symlink_to(tmp_path / "secret.png")
    write_jsonl(root / "annotations" / "train.jsonl", [{"id": "a", "image": "link.png", "text": "t"}])
    args = ["data", "summary", root / "annotations", "--image-root", root / "images", "--json"]
    msg = run(args, code=2)
    assert "outside the image root" in msg and msg.rstrip().endswith("(--allow-outside-root)")
    assert json.loads(run([*args, "--allow-outside-root"]))["splits"]["train"]["images_found"] == 1
    for command in (["featurize", "image", "--store", tmp_path / "s.h5", "--featurizer", "pixels"],
                    ["leakage", "report", "--out", tmp_path / "rep"]):
        msg = run([*command, root / "annotations", "--image-root", root / "images"], code=2)
        assert "outside the image root" in msg and "(--allow-outside-root)" in msg
    assert not (tmp_path / "s.h5").exists() and not (tmp_path / "rep").exists()
    # symlinks inside the image root stay fine
    (root / "images" / "link.png").unlink()
    (root / "images" / "link.png").symlink_to(root / "images" / "train_0.png")
    assert json.loads(run(args))["splits"]["train"]["images_found"] == 1
    assert "no such folder" in run(["data", "summary", root / "annotations", "--image-root", tmp_path / "nope"],
                                   code=2)


def test_list_element_label_column_and_label_map(tmp_path):
    root = annotations_and_images(tmp_path / "harm")
    s = summary([root / "annotations", "--label-col", "labels[0]"])
    assert s["label_names"] == ["not harmful", "somewhat harmful", "very harmful"]
    assert s["splits"]["train"]["label_counts"] == {"not harmful": 2, "somewhat harmful": 1, "very harmful": 1}
    target = summary([root / "annotations", "--label-col", "labels[1]"])
    assert target["label_names"] == ["community", "individual", "none", "organization"]
    # merge three classes into a binary label
    s = summary([root / "annotations", "--label-col", "labels[0]", "--label-map",
                 "not harmful=0, somewhat harmful=1,very harmful=1"])
    assert s["binary_name"] == "labels[0]" and s["label_names"] == []
    assert s["splits"]["train"]["label_counts"] == {"0": 2, "1": 2}
    assert s["splits"]["dev"]["label_counts"] == {"0": 1, "1": 1}
    # a map key that matches no value is refused, with the closest value
    msg = run(["data", "summary", root / "annotations", "--label-col", "labels[0]", "--label-map",
               "not harmfull=0"], code=2)
    assert "'not harmfull' match no label value (did you mean 'not harmful'?)" in msg and "(--label-map)" in msg
    assert "not FROM=TO" in run(["data", "summary", root / "annotations", "--label-map", "x"], code=2)
    msg = run(["data", "summary", root / "annotations", "--label-col", "labels[2]"], code=2)
    assert "holds 2 element(s)" in msg and "no element [2]" in msg and "(--label-col)" in msg
    assert "(did you mean 'labels'?)" in run(["data", "summary", root / "annotations", "--label-col", "label[0]"],
                                             code=2)


def test_semicolon_csv_is_sniffed_and_sep_overrides(tmp_path):
    f = tmp_path / "train.csv"
    f.write_text('id;text;label\n1;"hello, world";a\n2;plain text;b\n3;"x; y, z";a\n', encoding="utf-8")
    ds = load_dataset(f)
    assert [m.text for m in ds.memes] == ["hello, world", "plain text", "x; y, z"]
    assert ds.binary_name == "b" and [m.label for m in ds.memes] == [0, 1, 0]
    assert summary([f])["splits"]["train"]["n"] == 3
    pipe = tmp_path / "pipe" / "train.csv"
    pipe.parent.mkdir()
    pipe.write_text("id|text\n1|a, b; c\n2|d\n", encoding="utf-8")
    assert [m.text for m in load_dataset(pipe).memes] == ["a, b; c", "d"]
    msg = run(["data", "summary", f, "--sep", ","], code=2)
    assert "2 fields, the header has 1 (columns separated by ',')" in msg and msg.rstrip().endswith("(--sep)")
    assert summary([f, "--sep", ";"])["splits"]["train"]["n"] == 3
    with pytest.raises(DatasetError) as e:
        load_dataset(f, sep=";;")
    assert e.value.option == "sep"
    tab = tmp_path / "t.tsv"
    tab.write_text("id\ttext\n1\ta;b\n", encoding="utf-8")
    assert summary([tab, "--sep", "tab"])["splits"]["t"]["n"] == 1


def test_format_near_miss_is_suggested_and_generic_options_stay_generic(tmp_path):
    root = annotations_and_images(tmp_path / "harm")
    msg = run(["data", "summary", root / "annotations", "--format", "generc"], code=2)
    assert "did you mean 'generic'?" in msg
    with pytest.raises(DatasetError, match="did you mean 'generic'"):
        load_dataset(root / "annotations", format="generc")
    write_jsonl(tmp_path / "hm" / "train.jsonl", [{"id": "1", "img": "img/1.png", "label": 0, "text": "t"}])
    msg = run(["data", "summary", tmp_path / "hm", "--label-map", "0=no"], code=2)
    assert "only apply to the generic format, not hateful_memes" in msg and "(--label-map)" in msg


def test_leakage_report_takes_the_column_options_its_error_names(tmp_path):
    write_jsonl(tmp_path / "d" / "train.jsonl", [{"meme": "1", "caption": "same words here"},
                                                 {"meme": "2", "caption": "other words"}])
    write_jsonl(tmp_path / "d" / "dev.jsonl", [{"meme": "3", "caption": "same words here"}])
    msg = run(["leakage", "report", tmp_path / "d", "--out", tmp_path / "r", "--no-images"], code=2)
    assert "no id column 'id'" in msg and "(--id-col)" in msg
    out = json.loads(run(["leakage", "report", tmp_path / "d", "--id-col", "meme", "--text-col", "caption",
                          "--out", tmp_path / "r", "--no-images", "--json"]))
    cross = [r for r in out["summary"] if r["scope"] == "cross"]
    assert [(r["split_a"], r["split_b"], r["exact_text"]) for r in cross] == [("train", "dev", 1)]


def test_store_remembers_options_and_refeaturizing_with_another_label_map_updates_labels(tmp_path):
    from memeprobe.store import FeatureStore

    root = annotations_and_images(tmp_path / "harm")
    store = tmp_path / "s.h5"
    base = ["featurize", "image", root / "annotations", "--image-root", root / "images", "--store", store,
            "--featurizer", "pixels", "--no-progress", "--label-col", "labels[0]"]
    run(base)
    with FeatureStore.open(store) as st:
        assert st.label_names == ("not harmful", "somewhat harmful", "very harmful") and st.binary_name is None
        assert st.dataset_options == {"format": "generic", "label_col": "labels[0]",
                                      "image_root": str((root / "images").resolve())}
        before = st.load("pixels", "image_embed")[0]
    assert json.loads(run(["store", "info", store, "--json"]))["dataset"]["options"]["label_col"] == "labels[0]"
    res = CliRunner().invoke(main, [str(a) for a in [*base, "--label-map",
                                                     "not harmful=0,somewhat harmful=1,very harmful=1"]])
    assert res.exit_code == 0, res.output
    assert "labels updated from the dataset" in res.stderr and "0 written" in res.stdout  # features kept
    with FeatureStore.open(store) as st:
        assert st.label_names == () and st.binary_name == "labels[0]"
        assert st.label.tolist() == [0, 1, 1, 0, 1, 0] and st.verify() == []
        assert st.dataset_options["label_map"] == {"not harmful": "0", "somewhat harmful": "1", "very harmful": "1"}
        X, ids, y = st.load("pixels", "image_embed")
        assert (X == before).all() and y.tolist() == [0, 1, 1, 0, 1, 0]
    res = CliRunner().invoke(main, [str(a) for a in [*base, "--label-map",
                                                     "not harmful=0,somewhat harmful=1,very harmful=1"]])
    assert res.exit_code == 0 and "labels updated" not in res.stderr


@pytest.mark.parametrize("kwargs, option", [
    ({"id_col": "meme"}, "id_col"),
    ({"label_col": "labels[5]"}, "label_col"),
    ({"label_col": "labels[0]", "positive_label": "harmless"}, "positive_label"),
    ({"label_map": "nope=1"}, "label_map"),
    ({"format": "hateful"}, "format"),
    ({"image_root": "missing-folder"}, "image_root"),
    ({"sep": "ab"}, "sep"),
])
def test_errors_below_the_cli_name_the_option_not_the_flag(tmp_path, kwargs, option):
    root = annotations_and_images(tmp_path / "harm")
    write_jsonl(root / "annotations" / "train.jsonl", [
        {"id": "a", "image": "train_0.png", "text": "t", "labels": ["not harmful", "none"]},
        {"id": "b", "image": "train_1.png", "text": "u", "labels": ["very harmful", "none"]}])
    kwargs = {k: (str(tmp_path / v) if k == "image_root" else v) for k, v in kwargs.items()}
    with pytest.raises(DatasetError) as e:
        load_dataset(root / "annotations", **kwargs)
    assert e.value.option == option and "--" not in str(e.value)
    args = [a for k, v in kwargs.items() for a in (f"--{k.replace('_', '-')}", v)]
    msg = run(["data", "summary", root / "annotations", *args], code=2)
    assert f"--{option.replace('_', '-')}" in msg
