"""Bad annotation input: a MemeprobeError naming the file/line/id and the fix; exit 2 without traceback."""
import json

import click
import pytest
from click.testing import CliRunner

from memeprobe.data import load_dataset
from memeprobe.data.loading import load_with
from memeprobe.data.cli_options import dataset_options
from memeprobe.errors import MemeprobeError
from tests.helpers import cli, write_jsonl, write_table


def hm_rows(n=3, **over):
    rows = [{"id": f"{i:05d}", "img": f"img/{i:05d}.png", "label": i % 2, "text": f"meme {i}"} for i in range(n)]
    for i, fields in over.items():
        rows[int(i[1:])].update(fields)
    return rows


def cli_error(args):
    """Runs the CLI, checks exit 2 + ``error:`` + no traceback; returns the message."""
    res = cli(*args, code=2)
    assert isinstance(res.exception, SystemExit)
    assert res.output.startswith("error: "), res.output
    return res.output


def test_missing_folder_and_file(tmp_path):
    for path in (tmp_path / "nope", tmp_path / "nope.jsonl"):
        with pytest.raises(MemeprobeError, match="no such file or folder"):
            load_dataset(path)
        assert str(path) in cli_error(["data", "summary", path])
    with pytest.raises(MemeprobeError, match="no Hateful Memes split files"):
        load_dataset(tmp_path, format="hateful_memes")


def test_truncated_jsonl_line_names_file_and_line(tmp_path):
    f = tmp_path / "train.jsonl"
    write_jsonl(f, hm_rows(3))
    lines = f.read_text().splitlines()
    f.write_text("\n".join([lines[0], lines[1][:20], lines[2]]) + "\n")
    with pytest.raises(MemeprobeError, match=r"train\.jsonl line 2: invalid or truncated JSON"):
        load_dataset(tmp_path)
    assert f"{f} line 2" in cli_error(["data", "summary", tmp_path])
    f.write_text(lines[0] + "\n" + "[1, 2]\n")
    with pytest.raises(MemeprobeError, match="line 2: expected a JSON object"):
        load_dataset(tmp_path)


def test_non_utf8_bytes_name_line_and_offset(tmp_path):
    f = tmp_path / "train.jsonl"
    write_jsonl(f, hm_rows(3))
    data = f.read_bytes()
    bad = data.index(b"meme 2")
    f.write_bytes(data[:bad] + "m\u00e9me".encode("latin-1") + data[bad + 4:])
    with pytest.raises(MemeprobeError, match=rf"line 3 \(byte offset {bad + 1}\): not valid UTF-8"):
        load_dataset(tmp_path)
    assert "not valid UTF-8" in cli_error(["data", "summary", tmp_path])


def test_empty_text_refused_listing_ids_then_kept_on_request(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", hm_rows(4, r1={"text": ""}, r3={"text": "  \n"}))
    with pytest.raises(MemeprobeError, match=r"2 meme\(s\) have empty text: id '00001' at .*train\.jsonl line 2; "
                                             r"id '00003' at .*line 4; fill in the text") as e:
        load_dataset(tmp_path)
    assert e.value.option == "allow_empty_text"
    ds = load_dataset(tmp_path, allow_empty_text=True)
    assert len(ds.memes) == 4 and "2 meme(s) have empty text (kept)" in ds.notes
    assert json.loads(cli("data", "summary", tmp_path, "--json").output)["splits"]["train"]["empty_text"] == 2


def test_allow_empty_text_flag_of_shared_dataset_options(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", hm_rows(2, r0={"text": ""}))

    @click.command()
    @click.argument("path")
    @dataset_options()
    def count(path, dataset_options):
        click.echo(len(load_with(path, dataset_options).memes))

    runner = CliRunner()
    assert runner.invoke(count, [str(tmp_path), "--allow-empty-text"]).output.strip() == "2"
    res = runner.invoke(count, [str(tmp_path)])
    assert isinstance(res.exception, MemeprobeError) and "empty text" in str(res.exception)


def test_duplicate_id_within_split_named_with_file(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", hm_rows(3, r2={"id": "00000"}))
    with pytest.raises(MemeprobeError, match=r"train\.jsonl line 3: duplicate id '00000' in split 'train' "
                                             r"\(first at .*line 1\)"):
        load_dataset(tmp_path)
    assert json.loads(cli("data", "summary", tmp_path, "--json").output)["splits"]["train"]["duplicate_ids"] == 1


def test_unknown_label_values(tmp_path):
    hm = tmp_path / "hm"
    write_jsonl(hm / "train.jsonl", hm_rows(3, r2={"label": 2}))
    msg = r"train\.jsonl line 3 \(id 00002\): unknown label value 2; allowed values: 0, 1"
    with pytest.raises(MemeprobeError, match=msg):
        load_dataset(hm)
    assert "unknown label value 2" in cli_error(["data", "summary", hm])

    mami = tmp_path / "mami"
    write_table(mami / "train.tsv", ["file_name", "label", "text"], [["1.jpg", "0", "a"], ["2.jpg", "yes", "b"]])
    with pytest.raises(MemeprobeError, match=r"train\.tsv line 3 \(id 2\.jpg\): unknown label value 'yes'"):
        load_dataset(mami)

    gen = tmp_path / "gen.jsonl"
    write_jsonl(gen, [{"id": 1, "text": "a", "labels": ["x"]}, {"id": 2, "text": "b", "labels": ["x", "q"]}])
    with pytest.raises(MemeprobeError, match=r"line 2 \(id 2\): unknown label value 'q'; allowed values: x, y"):
        load_dataset(gen, label_names=["x", "y"])
    assert "unknown label value 'q'" in cli_error(["data", "summary", gen, "--label-names", "x,y"])


def test_unknown_technique_names_id_and_file(tmp_path):
    (tmp_path / "train").mkdir()
    recs = [{"id": "41", "labels": ["Smears"], "text": "a", "image": "41.png"},
            {"id": "42", "labels": ["Smear"], "text": "b", "image": "42.png"}]
    (tmp_path / "train" / "labels.json").write_text(json.dumps(recs))
    with pytest.raises(MemeprobeError, match=r"labels\.json record 2 \(id 42\): unknown technique 'Smear' "
                                             r"\(did you mean 'Smears'\?\)"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("image", ["../x.png", "img/../../x.png", "/etc/passwd"])
def test_image_path_outside_root(tmp_path, image):
    write_jsonl(tmp_path / "train.jsonl", hm_rows(2, r1={"img": image}))
    with pytest.raises(MemeprobeError, match=r"line 2: image path .* points outside the dataset root"):
        load_dataset(tmp_path)
    assert "outside the dataset root" in cli_error(["data", "summary", tmp_path])


def test_ragged_csv_row_and_missing_columns(tmp_path):
    f = tmp_path / "train.csv"
    f.write_text("id,text,label\n1,a,0\n2,b,1,extra\n")
    with pytest.raises(MemeprobeError, match=r"train\.csv line 3: 4 fields, the header has 3"):
        load_dataset(f)
    f.write_text("id,caption\n1,a\n")
    with pytest.raises(MemeprobeError, match="no text column 'text'") as e:
        load_dataset(f)
    assert e.value.option == "text_col" and "--" not in str(e.value)
    assert cli_error(["data", "summary", f]).rstrip().endswith("name the right text column (--text-col)")
    with pytest.raises(MemeprobeError, match="no label column 'lbl'"):
        load_dataset(f, text_col="caption", label_col="lbl")


def test_generic_options_refused_for_other_formats(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", hm_rows(2))
    assert "--id-col" in cli_error(["data", "summary", tmp_path, "--id-col", "x"])
