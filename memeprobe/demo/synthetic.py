"""Synthetic Hateful-Memes-format sample with a two-modality label rule and planted leakage.

``make_sample(out_dir, n=1000, seed=0, image_size=256, overwrite=False)`` (40 <= n <= 99999;
out_dir new or empty unless ``overwrite``; written to a temporary sibling, then moved) writes
``train.jsonl`` (~70 %),
``dev_seen.jsonl`` (~15 %), ``test_unseen.jsonl`` (~15 %, no ``label`` key), one PNG per meme under
``img/`` (ids are distinct zero-padded 5-digit strings, ``{"id","img","label","text"}`` rows) and
``ground_truth.json``; the same seed gives byte-identical files. Pillow draws every image: a
two-colour gradient background, random shapes and the caption in meme style (white, black outline).
Captions come from templates filled with topic words (subjects, objects, verb phrases, places).

Latent attributes and rule:
- ``image_attr``: the background hue family, ``"warm"`` (red-orange-yellow) or ``"cool"``
  (cyan-blue); colour histograms see it, text does not.
- ``text_attr``: the caption topic, ``"pets"`` or ``"office"``; sentence embeddings see it.
- ``label = (image_attr == "warm") XOR (text_attr == "office")``, then flipped for about 3 % of the
  memes that are in no planted pair (``label_noise``). Neither attribute alone predicts the label.

Planted pairs (every meme is in at most one pair, so no transitive duplicates; "a" is the source):
- ``exact_image``: b has a's picture pixel for pixel (so a's rendered caption) and its own text;
  variant ``"copy"`` (same bytes) or ``"recompressed"`` (other PNG compression and a text chunk:
  other bytes, same pixels).
- ``near_image``: b's picture is a's after ``"jpeg"`` (JPEG round trip saved as PNG),
  ``"jpeg_bytes"`` (JPEG bytes inside the .png file), ``"resize"``, ``"crop"`` (a few % off the
  edges), ``"brightness"`` or ``"recolour"`` (desaturated); b has its own text.
- ``exact_text``: b's text equals a's (``"identical"``) or equals it after :func:`memeprobe.data.text.normalize_text`
  (``"normalised"``: case, whitespace, punctuation differ); b has its own picture.
- ``near_text``: a's text with ``"word_changed"`` or ``"word_added"``; b has its own picture.
- ``confounder``: b has exactly a's text and a picture of the other hue family, so a flipped label.
Unplanted pairs are kept apart: normalised texts are unique and share few words (word-set
Jaccard <= 0.45; <= 0.6 for near-text copies; no three of subject, object, act, place in
common), pictures differ by phash Hamming distance >= 14 (>= 13 for near-image copies).

``ground_truth.json`` keys:
- ``version`` (1), ``seed``, ``n``, ``image_size``, ``rule`` (text), ``label_noise_rate``;
- ``attributes``: ``{"image_attr": ["cool", "warm"], "text_attr": ["pets", "office"]}``;
- ``memes``: one entry per meme in file order ``{"split", "id", "image_attr", "text_attr",
  "label", "label_noise"}`` (``label`` = the final label, also for test_unseen);
- ``test_labels``: ``{id: label}`` for test_unseen;
- ``pairs``: ``{"kind", "variant", "a": {"split", "id"}, "b": {"split", "id"},
  "text_relation": "identical"|"normalised"|"near"|null, "image_relation": "identical"|"near"|null}``;
- ``counts``: pairs per kind; ``min_phash_distance`` and ``max_text_jaccard`` of the generator.
"""
from __future__ import annotations

import colorsys
import io
import itertools
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, PngImagePlugin

from memeprobe.data.images import phash_bits  # the hash the leakage report and `pixels` compute
from memeprobe.atomic import atomic_dir
from memeprobe.errors import ConfigError, DatasetError
from memeprobe.outputs import check_output
from memeprobe.data.text import tokens  # the leakage report's normalisation defines 'normalised-identical'

SPLITS = (("train", 0.70), ("dev_seen", 0.15), ("test_unseen", 0.15))
IMAGE_ATTRS = ("cool", "warm")
TEXT_ATTRS = ("pets", "office")
LABEL_NOISE = 0.03
MAX_JACCARD = 0.45
MAX_JACCARD_NEAR = 0.6
MIN_PHASH = 14
MIN_PHASH_NEAR = 13
# pairs per meme and the variants cycled through, per kind
PLAN = (
    ("exact_image", 0.008, ("copy", "recompressed")),
    ("near_image", 0.012, ("jpeg", "jpeg_bytes", "resize", "crop", "brightness", "recolour")),
    ("exact_text", 0.008, ("identical", "normalised")),
    ("near_text", 0.008, ("word_changed", "word_added")),
    ("confounder", 0.008, ("same_text",)),
)
# (split of a, split of b) for planted pairs, cycled; about a fifth lie within one split
PAIR_SPLITS = (("train", "dev_seen"), ("train", "test_unseen"), ("dev_seen", "test_unseen"),
               ("train", "train"), ("test_unseen", "train"), ("dev_seen", "train"),
               ("train", "test_unseen"), ("dev_seen", "dev_seen"), ("train", "dev_seen"),
               ("test_unseen", "test_unseen"))

TEMPLATES = (
    "when {s} {a} {t}",
    "nobody: absolutely nobody: {s} {a} {p}",
    "me trying to explain to {s} why {o} is {j}",
    "{s} after seeing {o} {p} {t}",
    "that moment {s} realises {o} was {j} all along",
    "{s} be like: i found {o} {p}",
    "pov: you left {o} {p} and {s} noticed",
    "how it started: {o}. how it's going: {s} {a}",
    "i asked {s} for one thing and got {o} instead",
    "{t} {s} {a} and honestly i feel {e}",
    "not {s} stealing {o} {p} again",
    "they told me {o} was {j} but {s} disagrees",
    "me {t}: {e}. {s} {p}: {a}",
    "if {s} {a} one more time i will lose it",
    "plot twist: {o} belonged to {s} the whole time",
    "nothing makes me feel {e} like {s} who {a}",
)
TOPIC_WORDS = {
    "pets": {
        "s": ("my cat", "the neighbour's dog", "our hamster", "the parrot", "my goldfish",
              "the kitten", "grandma's poodle", "the golden retriever", "our bunny", "the tabby",
              "my iguana", "the corgi", "a stray cat", "the guinea pig", "my ferret", "the beagle",
              "our tortoise", "the husky", "the chihuahua", "my cockatoo", "the dachshund",
              "the persian cat", "our labrador", "the gerbil", "my pug", "the dalmatian",
              "our chinchilla", "the siamese", "my hedgehog", "the sheepdog"),
        "o": ("the catnip toy", "a squeaky bone", "the litter box", "a bag of kibble",
              "the chew toy", "the scratching post", "a tennis ball", "the fish tank",
              "the dog bed", "a salmon treat", "the leash", "the hamster wheel", "a feather wand",
              "the bird cage", "the food bowl", "a rubber duck", "the flea collar",
              "a pile of fur", "the water dish", "a pet carrier", "the dog biscuit", "a tuna can",
              "the laser pointer", "the vet bill", "a rawhide", "the cat tree", "a box of treats",
              "the grooming brush", "the kennel", "a ball of yarn"),
        "a": ("knocked over the vase", "barked at the mailman", "chased its own tail",
              "ate the sofa cushion", "hid under the bed", "meowed at 3am", "dug up the garden",
              "licked the window", "shed fur everywhere", "ignored the new toy",
              "napped in the sunbeam", "howled at the vacuum", "stole a sock",
              "sat on the keyboard", "refused the vet", "fetched the stick", "wagged its tail",
              "hissed at the cucumber", "purred on my lap", "jumped on the counter",
              "rolled in mud", "begged for treats", "scratched the door", "chewed my slippers",
              "zoomed around the house"),
        "v": ("chewed", "knocked over", "hid", "sniffed", "buried", "stole", "licked", "dragged",
              "sat on", "pounced on", "guarded", "shredded", "carried off", "batted at", "drooled on"),
        "p": ("in the backyard", "at the dog park", "under the couch", "at the vet clinic",
              "on the windowsill", "in the kennel", "by the aquarium", "at the pet shop",
              "in the garden", "near the bird feeder", "on the porch", "in the doghouse"),
    },
    "office": {
        "s": ("my boss", "the intern", "the new manager", "our accountant", "the it guy",
              "my coworker", "the hr lady", "the team lead", "the ceo", "the receptionist",
              "our project manager", "the sales rep", "the consultant", "my supervisor",
              "the janitor", "the payroll clerk", "our recruiter", "the office admin",
              "the data analyst", "the senior developer", "the marketing director",
              "our legal counsel", "the product owner", "the auditor", "my deskmate",
              "the shift supervisor", "the finance director", "our scrum master",
              "the help desk tech", "the regional manager"),
        "o": ("the quarterly report", "a broken printer", "the spreadsheet", "the meeting invite",
              "a stapler", "the coffee machine", "the expense form", "the slide deck",
              "a sticky note", "the payroll file", "the conference call", "the performance review",
              "a paper jam", "the vpn password", "the budget sheet", "the deadline", "a memo",
              "the server key", "the timesheet", "the invoice", "the whiteboard",
              "the team calendar", "an email chain", "the office fridge", "the filing cabinet",
              "a laptop charger", "the swivel chair", "the project plan", "the sprint board",
              "the fax machine"),
        "a": ("scheduled another meeting", "replied all to the email", "jammed the printer",
              "missed the deadline", "booked the boardroom", "forgot the password",
              "approved the budget", "called in sick", "rebooted the server",
              "cancelled the standup", "microwaved fish", "took my stapler",
              "filed the report late", "shared their screen", "muted the call",
              "asked for overtime", "updated the spreadsheet", "drank all the coffee",
              "sent a calendar invite", "stayed late again", "pinged me on slack",
              "blamed the intern", "reorganised the files", "skipped the training",
              "printed fifty copies"),
        "v": ("printed", "lost", "emailed", "deleted", "rescheduled", "forwarded", "broke", "signed",
              "approved", "photocopied", "misplaced", "reviewed", "cancelled", "shredded", "hoarded"),
        "p": ("in the break room", "at the staff meeting", "in the cubicle", "at the front desk",
              "in the conference room", "by the copier", "in the server room",
              "at the office party", "on the zoom call", "in the elevator",
              "at the water cooler", "in the parking garage"),
    },
}
SHARED_WORDS = {
    "t": ("on monday morning", "every single day", "at midnight", "before lunch", "on a friday",
          "during the holidays", "at 5am", "right now", "last weekend", "twice a week",
          "on my birthday", "after dinner"),
    "j": ("totally fine", "a bad idea", "overrated", "absolutely necessary", "suspicious",
          "a disaster", "perfect", "too expensive", "brand new", "completely useless"),
    "m": ("grumpy", "sleepy", "chaotic", "tiny", "dramatic", "suspicious", "chonky", "ancient",
          "overconfident", "anxious", "sneaky", "fancy", "loud", "clumsy", "smug", "fluffy",
          "hungry", "judgemental", "lazy", "hyper"),
    "e": ("betrayed", "proud", "exhausted", "confused", "blessed", "defeated", "amused",
          "nervous"),
}
WORD_SWAPS = {"my": "our", "our": "my", "the": "that", "a": "one", "is": "was", "was": "is",
              "and": "so", "me": "us", "on": "upon", "at": "near", "in": "inside", "i": "we"}
ADDED_WORDS = ("literally", "honestly", "basically", "lowkey", "seriously", "actually")
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
_FONTS: dict[int, ImageFont.FreeTypeFont] = {}


class _TextIndex:
    """Word sets of the accepted texts; rejects candidates that overlap one too much (Jaccard)."""

    def __init__(self):
        self.sizes: list[int] = []
        self.postings: dict[str, list[int]] = {}
        self.triples: set[tuple] = set()  # three content phrases (subject, object, act, place) seen together

    def max_jaccard(self, tokens, exclude=()) -> float:
        hits = [self.postings[t] for t in tokens if t in self.postings]
        if not hits:
            return 0.0
        inter = np.bincount(np.concatenate(hits), minlength=len(self.sizes)).astype(float)
        jac = inter / (np.asarray(self.sizes, dtype=float) + len(tokens) - inter)
        jac[list(exclude)] = 0.0
        return float(jac.max())

    def add(self, tokens) -> None:
        for t in tokens:
            self.postings.setdefault(t, []).append(len(self.sizes))
        self.sizes.append(len(tokens))


class _HashIndex:
    """64-bit perceptual hashes of the accepted pictures, compared by Hamming distance."""

    def __init__(self, capacity: int):
        self.hashes = np.zeros((capacity, 8), dtype=np.uint8)
        self.n = 0

    def min_distance(self, h: np.ndarray, exclude=()) -> int:
        if not self.n:
            return 64
        dist = _POPCOUNT[np.bitwise_xor(self.hashes[: self.n], h)].sum(axis=1)
        dist[list(exclude)] = 64
        return int(dist.min())

    def add(self, h: np.ndarray) -> None:
        self.hashes[self.n] = h
        self.n += 1


def _phash(img: Image.Image) -> np.ndarray:
    return np.packbits(phash_bits(img))


def _fresh_text(rng, topic: str, index: _TextIndex) -> str:
    """A caption sharing few words with the accepted ones and no three content phrases with one."""
    words = {**TOPIC_WORDS[topic], **SHARED_WORDS}
    for _ in range(10000):
        template = TEMPLATES[rng.integers(len(TEMPLATES))]
        fill = {k: v[rng.integers(len(v))] for k, v in words.items()}
        if rng.random() < 0.6:  # compose the act from a verb and another object
            fill["a"] = f"{fill['v']} {words['o'][rng.integers(len(words['o']))]}"
        content = [(k, fill[k]) for k in "soap" if "{%s}" % k in template]
        if rng.random() < 0.6:  # an adjective after the subject's determiner
            det, _, rest = fill["s"].partition(" ")
            fill["s"] = f"{det} {fill['m']} {rest}"
        text = template.format(**fill)
        triples = set(itertools.combinations(content, 3))
        if not triples & index.triples and index.max_jaccard(tokens(text)) <= MAX_JACCARD:
            index.triples |= triples
            return text
    raise ConfigError(f"cannot generate {topic!r} captions distinct enough: ask for fewer memes", option="n")


def _near_text(rng, text: str, variant: str) -> str:
    words = text.split(" ")
    if variant == "word_added":
        words.insert(int(rng.integers(1, len(words) + 1)), ADDED_WORDS[rng.integers(len(ADDED_WORDS))])
    else:
        spots = [i for i, w in enumerate(words) if w in WORD_SWAPS]
        i = spots[rng.integers(len(spots))] if spots else len(words) - 1
        words[i] = WORD_SWAPS.get(words[i], "again")
    return " ".join(words)


def _normalised_variant(rng, text: str) -> str:
    out = text.upper() if rng.random() < 0.5 else text.title()
    return "  ".join(out.replace(":", " -").split(" ")) + ("!!" if rng.random() < 0.5 else " ?!")


def _font(size: int) -> ImageFont.FreeTypeFont:
    if size not in _FONTS:
        _FONTS[size] = ImageFont.load_default(size=size)
    return _FONTS[size]


def _hsv(h, s, v) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


def _picture(rng, attr: str, size: int) -> Image.Image:
    """Gradient background in the hue family of ``attr`` plus random shapes of any colour."""
    hue = rng.uniform(-0.06, 0.14) if attr == "warm" else rng.uniform(0.47, 0.70)
    c1 = _hsv(hue, rng.uniform(0.5, 1.0), rng.uniform(0.35, 1.0))
    c2 = _hsv(hue + rng.uniform(-0.04, 0.04), rng.uniform(0.5, 1.0), rng.uniform(0.35, 1.0))
    angle = rng.uniform(0, 2 * np.pi)
    grid = np.linspace(0.0, 1.0, 32)
    t = np.cos(angle) * grid[None, :] + np.sin(angle) * grid[:, None]
    t = (t - t.min()) / (np.ptp(t) + 1e-9)
    arr = c1 * (1 - t[..., None]) + c2 * t[..., None]
    img = Image.fromarray(arr.astype(np.uint8), "RGB").resize((size, size), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 7))):
        w, h = rng.uniform(0.12, 0.38, size=2) * size
        x, y = rng.uniform(0, size - w), rng.uniform(0, size - h)
        shape_hue = hue + rng.uniform(-0.1, 0.1) if rng.random() < 0.7 else rng.random()
        colour = tuple(int(c) for c in _hsv(shape_hue, rng.uniform(0, 1), rng.uniform(0.05, 1)))
        kind = rng.integers(4)
        if kind == 0:
            draw.ellipse((x, y, x + w, y + h), fill=colour)
        elif kind == 1:
            draw.rectangle((x, y, x + w, y + h), fill=colour)
        elif kind == 2:
            pts = rng.uniform(0, 1, size=(3, 2)) * (w, h) + (x, y)
            draw.polygon([tuple(p) for p in pts], fill=colour)
        else:
            draw.line((x, y, x + w, y + h), fill=colour, width=max(2, size // 25))
    return img


def _dilate(mask: Image.Image, r: int) -> Image.Image:
    """Grey-level dilation by a (2r+1)-square: the caption's black outline."""
    a = np.asarray(mask)
    out = a.copy()
    for d in range(1, r + 1):
        np.maximum(out[:, d:], a[:, :-d], out=out[:, d:])
        np.maximum(out[:, :-d], a[:, d:], out=out[:, :-d])
    rows = out.copy()
    for d in range(1, r + 1):
        np.maximum(out[d:], rows[:-d], out=out[d:])
        np.maximum(out[:-d], rows[d:], out=out[:-d])
    return Image.fromarray(out, "L")


def _caption(text: str, size: int) -> tuple[Image.Image, Image.Image]:
    """Meme-style caption masks (white text, black outline): wrapped lines split top/bottom."""
    font = _font(max(9, size // 16))
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and font.getlength(trial) > 0.92 * size:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    step = int(font.size * 1.15)
    half = (len(lines) + 1) // 2
    mask = Image.new("L", (size, size))
    draw = ImageDraw.Draw(mask)
    for i, ln in enumerate(lines):
        y = 4 + i * step if i < half else size - 6 - (len(lines) - i) * step
        draw.text((size / 2, y), ln, font=font, fill=255, anchor="ma")
    return mask, _dilate(mask, max(1, size // 128))


def _png(img: Image.Image, level: int = 1, note: str | None = None) -> bytes:
    buf = io.BytesIO()
    info = None
    if note is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", note)
    img.save(buf, "PNG", compress_level=level, pnginfo=info)
    return buf.getvalue()


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _near_image(rng, img: Image.Image, variant: str) -> tuple[Image.Image, bytes]:
    """A near copy of ``img`` as (decoded picture, file bytes)."""
    size = img.width
    if variant == "jpeg_bytes":
        data = _jpeg(img, int(rng.integers(70, 90)))
        return Image.open(io.BytesIO(data)).convert("RGB"), data
    if variant == "jpeg":
        out = Image.open(io.BytesIO(_jpeg(img, int(rng.integers(55, 80))))).convert("RGB")
    elif variant == "resize":
        new = int(size * rng.uniform(0.75, 0.9))
        out = img.resize((new, new), Image.Resampling.BILINEAR)
    elif variant == "crop":
        l, t, r, b = (int(size * f) for f in rng.uniform(0.01, 0.04, size=4))
        out = img.crop((l, t, size - r, size - b))
    elif variant == "brightness":
        out = ImageEnhance.Brightness(img).enhance(rng.uniform(1.12, 1.25))
    else:  # recolour: desaturate, the hue family stays
        out = ImageEnhance.Color(img).enhance(rng.uniform(0.6, 0.8))
    return out, _png(out)


def _pair_counts(n: int) -> list[tuple[str, str]]:
    """(kind, variant) of every planted pair, about 4.4 % of n pairs (>= one per kind)."""
    plan = []
    for kind, rate, variants in PLAN:
        k = max(1, round(rate * n)) if n < 150 else max(len(variants), round(rate * n))
        plan += [(kind, variants[i % len(variants)]) for i in range(k)]
    return plan


def _assign_splits(rng, n: int, pairs: list[dict]) -> dict[int, str]:
    """Split per meme: pair members first (cycling PAIR_SPLITS), the rest fill the ~70/15/15 quotas."""
    quota = {name: int(round(frac * n)) for name, frac in SPLITS[1:]}
    quota["train"] = n - sum(quota.values())
    split_of = {}
    for i, pair in enumerate(pairs):
        for idx, s in zip((pair["a"], pair["b"]), PAIR_SPLITS[i % len(PAIR_SPLITS)]):
            s = s if quota[s] > 0 else "train"
            split_of[idx] = s
            quota[s] -= 1
    rest = [int(i) for i in rng.permutation(n) if int(i) not in split_of]
    pool = [s for s, _ in SPLITS for _ in range(max(0, quota[s]))]
    split_of.update(zip(rest, pool))
    return split_of


def make_sample(out_dir, n: int = 1000, seed: int = 0, image_size: int = 256,
                overwrite: bool = False) -> dict:
    """Write the synthetic dataset to ``out_dir`` and return its ground truth (see the module docs)."""
    out_dir = Path(out_dir)
    if not 40 <= n <= 99999:
        raise ConfigError(f"make-sample: n={n} is out of range; choose 40 <= n <= 99999", option="n")
    if not 64 <= image_size <= 2048:
        raise ConfigError(f"make-sample: image_size={image_size} is out of range; choose 64..2048")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise DatasetError(f"make-sample: {out_dir} is not empty; choose a new directory or overwrite")
    check_output(out_dir, "sample")
    rng = np.random.default_rng(seed)
    texts, hashes = _TextIndex(), _HashIndex(n)
    plan = _pair_counts(n)
    n_base = n - len(plan)
    memes = []  # dicts: text, text_attr, image_attr, img (decoded), data (file bytes)

    def fresh_picture(attr, text):
        mask, outline = _caption(text, image_size)
        for _ in range(1000):
            img = _picture(rng, attr, image_size)
            img.paste((0, 0, 0), mask=outline)
            img.paste((255, 255, 255), mask=mask)
            h = _phash(img)
            if hashes.min_distance(h) >= MIN_PHASH:
                return img, h
        raise ConfigError("cannot draw pictures distinct enough: ask for fewer memes", option="n")

    def add(text, text_attr, image_attr, img=None, data=None, h=None):
        """Append a meme; text and picture hash indices stay aligned with ``memes``."""
        if img is None:
            img, h = fresh_picture(image_attr, text)
        texts.add(tokens(text))
        hashes.add(h)
        memes.append({"text": text, "text_attr": text_attr, "image_attr": image_attr,
                      "img": img, "data": data if data is not None else _png(img)})
        return len(memes) - 1

    attrs = rng.permutation(np.arange(n_base) % 4)
    for code in attrs:
        ta = TEXT_ATTRS[code % 2]
        add(_fresh_text(rng, ta, texts), ta, IMAGE_ATTRS[code // 2])

    pairs = []
    sources = iter(rng.permutation(n_base))
    for kind, variant in plan:
        while True:
            a = int(next(sources))
            src = memes[a]
            if kind in ("exact_image", "near_image"):
                if kind == "exact_image":
                    img, h = src["img"], hashes.hashes[a]
                    data = src["data"] if variant == "copy" else _png(img, 9, "re-saved")
                else:
                    img, data = _near_image(rng, src["img"], variant)
                    h = _phash(img)
                    if hashes.min_distance(h, exclude=[a]) < MIN_PHASH_NEAR:
                        continue
                ta = TEXT_ATTRS[rng.integers(2)]
                b = add(_fresh_text(rng, ta, texts), ta, src["image_attr"], img, data, h)
            else:
                if kind == "near_text":
                    text = _near_text(rng, src["text"], variant)
                    if texts.max_jaccard(tokens(text), exclude=[a]) > MAX_JACCARD_NEAR:
                        continue
                elif variant == "normalised":
                    text = _normalised_variant(rng, src["text"])
                else:
                    text = src["text"]
                ia = src["image_attr"]
                if kind == "confounder":
                    ia = IMAGE_ATTRS[1 - IMAGE_ATTRS.index(ia)]
                elif kind == "exact_text":
                    ia = IMAGE_ATTRS[rng.integers(2)]
                b = add(text, src["text_attr"], ia)
            relation = {"exact_image": (None, "identical"), "near_image": (None, "near"),
                        "exact_text": (variant, None), "near_text": ("near", None),
                        "confounder": ("identical", None)}[kind]
            pairs.append({"kind": kind, "variant": variant, "a": a, "b": b,
                          "text_relation": relation[0], "image_relation": relation[1]})
            break

    split_of = _assign_splits(rng, n, pairs)
    in_pair = {p["a"] for p in pairs} | {p["b"] for p in pairs}
    noise = rng.random(n) < LABEL_NOISE
    ids = [f"{i:05d}" for i in rng.choice(np.arange(1, 100000), size=n, replace=False)]
    order = [int(i) for i in rng.permutation(n)]
    for i, m in enumerate(memes):
        rule = int((m["image_attr"] == "warm") != (m["text_attr"] == "office"))
        m["label_noise"] = bool(noise[i] and i not in in_pair)
        m["label"] = rule ^ int(m["label_noise"])
        m["id"], m["split"] = ids[i], split_of[i]

    truth = {
        "version": 1, "seed": seed, "n": n, "image_size": image_size,
        "rule": "label = (image_attr == 'warm') XOR (text_attr == 'office'), flipped where label_noise",
        "label_noise_rate": LABEL_NOISE,
        "attributes": {"image_attr": list(IMAGE_ATTRS), "text_attr": list(TEXT_ATTRS)},
        "memes": [{k: memes[i][k] for k in ("split", "id", "image_attr", "text_attr", "label",
                                            "label_noise")} for i in order],
        "test_labels": {memes[i]["id"]: memes[i]["label"] for i in order
                        if memes[i]["split"] == "test_unseen"},
        "pairs": [{**p, "a": {"split": memes[p["a"]]["split"], "id": memes[p["a"]]["id"]},
                   "b": {"split": memes[p["b"]]["split"], "id": memes[p["b"]]["id"]}} for p in pairs],
        "counts": {kind: sum(p["kind"] == kind for p in pairs) for kind, _, _ in PLAN},
        "min_phash_distance": MIN_PHASH, "max_text_jaccard": MAX_JACCARD,
    }
    _write(out_dir, memes, order, truth)
    return truth


def _write(out_dir: Path, memes, order, truth) -> None:
    """Write everything into a temporary sibling directory that then replaces ``out_dir`` as a whole."""
    with atomic_dir(out_dir, "sample") as tmp:
        (tmp / "img").mkdir()
        rows = {s: [] for s, _ in SPLITS}
        for i in order:
            m = memes[i]
            (tmp / "img" / f"{m['id']}.png").write_bytes(m["data"])
            row = {"id": m["id"], "img": f"img/{m['id']}.png", "label": m["label"], "text": m["text"]}
            if m["split"] == "test_unseen":
                del row["label"]
            rows[m["split"]].append(json.dumps(row, ensure_ascii=False))
        for split, lines in rows.items():
            (tmp / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        (tmp / "ground_truth.json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
