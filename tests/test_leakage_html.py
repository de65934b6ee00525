"""The HTML report in headless Chromium: no console errors, every pair reachable by paging, search, filters
for kind and label flips, groups as groups, pictures enlarged (skips without chromium)."""
import json
import os
import re
import shutil
import warnings


from memeprobe.data import load_dataset
from memeprobe.demo.synthetic import make_sample
from memeprobe.leakage.analysis import analyze
from memeprobe.leakage.report import write_report
from tests.chromium import chromium, console, needs_chromium
from tests.test_leakage_groups import CAPTION, crowd

def dom(html, tmp_path, fragment="") -> str:
    """The page's DOM after its script ran, opened at ``#fragment``; fails on any console message."""
    run = chromium(["--dump-dom", html.as_uri() + (f"#{fragment}" if fragment else "")], tmp_path / "profile")
    assert run.returncode == 0, run.stderr[-2000:]
    assert console(run) == []
    assert 'data-ready="1"' in run.stdout and '<div id="js-errors"></div>' in run.stdout
    return run.stdout


def shown(page) -> int:
    return int(re.search(r'<span id="shown">(\d+)</span>', page).group(1))


def listed(page) -> list[int]:
    return [int(k) for k in re.findall(r'<tr class="pair" data-pair="(\d+)"', page)]


def report(root, out, **options):
    ds = load_dataset(root, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = analyze(ds)
    return ds, result, write_report(result, ds, out)["html"]


@needs_chromium
def test_report_renders_without_console_errors(tmp_path):
    make_sample(tmp_path / "s", n=120, seed=2)
    _, result, html = report(tmp_path / "s", tmp_path / "out")
    kind = "same_image_other_text"
    want = int((result.pairs.kind == kind).sum())
    assert 0 < want < len(result.pairs)
    page = dom(html, tmp_path, f"kind={kind}")
    assert shown(page) == want and len(listed(page)) == want
    assert set(re.findall(r'<tr class="pair"[^>]*data-kind="([a-z_]+)"', page)) == {kind}
    shot = chromium(["--window-size=1200,1600", f"--screenshot={tmp_path / 'shot.png'}", html.as_uri()],
                    tmp_path / "profile")
    assert shot.returncode == 0 and (tmp_path / "shot.png").stat().st_size > 10_000


@needs_chromium
def test_every_pair_is_reachable_searchable_and_filterable(tmp_path):
    crowd(tmp_path / "d", 2000, 500, same_image=200)
    outside = tmp_path / "outside.png"
    shutil.copy(tmp_path / "d" / "img" / "0.png", outside)
    rows = [json.loads(line) for line in (tmp_path / "d" / "train.jsonl").read_text().splitlines()]
    os.symlink(outside, tmp_path / "d" / "img" / "link.png")  # a picture that leaves the dataset folder
    rows[5]["img"] = "img/link.png"
    (tmp_path / "d" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds, result, html = report(tmp_path / "d", tmp_path / "out", allow_outside_root=True)
    n = len(result.pairs)
    assert n > 1000  # more than the old page's first 1000
    first = dom(html, tmp_path)
    assert shown(first) == n and listed(first) == list(range(100))
    last = -(-n // 500)
    page = dom(html, tmp_path, f"size=500&page={last}")
    assert listed(page) == list(range((last - 1) * 500, n)) and f'<span id="pages">{last}</span>' in page
    # filters: label flips of one kind, and a search over ids and texts
    kind = "same_text_other_image"
    want = int(((result.pairs.kind == kind) & (result.pairs.label_relation == "flip")).sum())
    page = dom(html, tmp_path, f"kind={kind}&label=flip&size=500")
    assert 0 < want == shown(page) and len(listed(page)) == min(want, 500)
    assert set(re.findall(r'data-relation="(\w*)"', page)) == {"flip"}
    texts = {(m.split, m.id): m.text for m in ds.memes}
    has = [CAPTION in texts[(p.split_a, p.id_a)] or CAPTION in texts[(p.split_b, p.id_b)]
           for p in result.pairs.itertuples()]
    assert shown(dom(html, tmp_path, "q=EVERYONE%20shares")) == sum(has) > 0
    one = result.pairs.id_b.iloc[-1]
    page = dom(html, tmp_path, f"q={one}&scope=train-eval")
    want = ((result.pairs.scope == "train-eval") & result.pairs.apply(
        lambda p: one in p.id_a or one in p.id_b or one.lower() in texts[(p.split_a, p.id_a)].lower()
        or one.lower() in texts[(p.split_b, p.id_b)].lower(), axis=1)).sum()
    assert shown(page) == want > 0
    # groups as groups
    page = dom(html, tmp_path, "view=groups")
    assert shown(page) == len(result.groups)
    assert f'data-group="0"><h3>group 0: {result.groups[0]["size"]} memes' in page  # the caption's 500 + the link
    assert result.groups[0]["size"] == 501 and page.count('<div class="member">') >= 60
    # the full picture of a meme whose image is inside the folder; none for the one that leaves it
    inside = next(m for m in ds.memes if m.image and m.split == "train" and m.id == "0")
    page = dom(html, tmp_path, f"enlarge=train/{inside.id}")
    assert re.search(r'<div id="overlay"[^>]*class="open"', page)
    assert f'src="{(tmp_path / "d" / inside.image).resolve().as_uri()}"' in page
    doc = html.read_text()
    assert str(outside) not in doc and outside.as_uri() not in doc
    data = re.search(r'<script type="application/json" id="data">(.*?)</script>', doc, re.S).group(1)
    memes = json.loads(data)["memes"]
    linked = next(m for m in memes if m["id"] == rows[5]["id"] and m["split"] == "train")  # (a copy of a group picture)
    assert linked["thumb"] is None and linked["full"] is None and "outside" in linked["note"]
    assert "http://" not in doc and "https://" not in doc


@needs_chromium
def test_texts_and_ids_are_shown_as_text_never_run(tmp_path):
    evil = '</script><img src=x onerror="document.body.dataset.pwned=1"> & \u2028'
    crowd(tmp_path / "d", 200, 20, same_image=5, caption=evil)
    _, result, html = report(tmp_path / "d", tmp_path / "out")
    page = dom(html, tmp_path, "q=onerror")
    assert shown(page) == int(result.pairs.id_a.size) > 0
    assert "data-pwned" not in page and '<img src="x"' not in page
    assert "&lt;/script&gt;&lt;img src=x onerror=" in page
