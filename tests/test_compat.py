"""The torchvision/CPU-torch compatibility shim."""
import subprocess
import sys

import torch

from memeprobe._compat import ensure_torchvision_ops, nms_reference


def test_heavy_libraries_import_in_a_fresh_interpreter():
    code = (
        "import memeprobe\n"
        "import open_clip, timm, transformers, torchvision\n"
        "import torch\n"
        "b = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60.]])\n"
        "print(torch.ops.torchvision.nms(b, torch.tensor([.9, .8, .7]), 0.5).tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[0, 2]"


def test_second_call_is_a_no_op():
    ensure_torchvision_ops()
    assert ensure_torchvision_ops() is False


def test_nms_reference_matches_brute_force_greedy():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(60, 2, generator=g) * 100
    wh = torch.rand(60, 2, generator=g) * 30 + 1
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(60, generator=g)
    keep = nms_reference(boxes, scores, 0.3).tolist()

    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
        return inter / (area(a) + area(b) - inter)

    expected = []
    for i in sorted(range(60), key=lambda i: -scores[i].item()):
        if all(iou(boxes[i].tolist(), boxes[j].tolist()) <= 0.3 for j in expected):
            expected.append(i)
    assert keep == expected
    assert len(keep) < 60  # the boxes overlap enough that suppression happened
