"""``zslkit viz attention`` end to end: a real MSDN checkpoint, a timm backbone, and the PNG read back.

The picture is checked by its pixels. The image is uniform grey, so each panel's colour is
``(1 - alpha) grey + alpha jet(v)`` with ``v`` the displayed map value; inverting the blend
and the ``jet`` colour map recovers ``v`` on the panel's 64 x 64 grid. The expected panels
come from the checkpoint's tensors (read with safetensors) and MSDN's formulas written out
here in plain torch (docs/msdn.md), not from zslkit's model or its viz code.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

import zslkit
import zslkit.viz
from zslkit.cli import main
from zslkit.datasets import ZSLDataset
from zslkit.training import TrainConfig, load_model, train
from zslkit.viz import top_attribute_maps

GREY, ALPHA, SIZE, TOP_K = 128, 0.5, 64, 3  # the CLI's overlay opacity and its --image-size / --top-k here


def expected_panels(tensors: dict[str, torch.Tensor], fmap: torch.Tensor) -> dict[str, list[tuple[int, torch.Tensor]]]:
    """Branch -> the top-``TOP_K`` attributes by score with their ``(h, w)`` maps, from MSDN's formulas."""
    _, h, w = fmap.shape
    f = fmap.reshape(fmap.shape[0], h * w).double()
    f = f / f.norm(dim=0, keepdim=True)  # (C, R), unit length per region
    V = tensors["model.V"].double()  # (I, D)
    W1, W2 = tensors["model.branches.a2v.W1"].double(), tensors["model.branches.a2v.W2"].double()
    U1, U2 = tensors["model.branches.v2a.U1"].double(), tensors["model.branches.v2a.U2"].double()
    a2v = torch.softmax(V @ W2 @ f, dim=1)  # (I, R): each attribute over the regions
    a2v_scores = (a2v * (V @ W1 @ f)).sum(1)
    v2a = torch.softmax(V @ U2 @ f, dim=0)  # (I, R): each region over the attributes
    v2a_scores = (v2a * (V @ U1.T @ f)).sum(1)
    return {
        branch: [(int(i), maps[i].reshape(h, w)) for i in torch.topk(scores, TOP_K).indices]
        for branch, maps, scores in (("a2v", a2v, a2v_scores), ("v2a", v2a, v2a_scores))
    }


def displayed(map_hw: torch.Tensor) -> np.ndarray:
    """What a panel shows: the map upsampled bilinearly to the crop, scaled to [0, 1] (flat maps: 0)."""
    up = F.interpolate(map_hw[None, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)[0, 0].numpy()
    spread = up.max() - up.min()
    return np.zeros_like(up) if spread <= 1e-4 * np.abs(up).max() else (up - up.min()) / spread


def corner(panel: np.ndarray, region: int) -> np.ndarray:
    """The panel's pixels in the outer corner of region ``region`` of the 2 x 2 grid (away from the frame)."""
    row, col = divmod(region, 2)
    rows = slice(3, SIZE // 4) if row == 0 else slice(SIZE - SIZE // 4, SIZE - 3)
    cols = slice(3, SIZE // 4) if col == 0 else slice(SIZE - SIZE // 4, SIZE - 3)
    return panel[rows, cols]


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def decode_panels(png: np.ndarray) -> list[list[np.ndarray]]:
    """Rows x columns of ``(SIZE, SIZE)`` displayed values, read from the panels' pixels.

    Panels are found as the saturated areas (text, frame and background are grey/black/white).
    """
    rgb = png[..., :3].astype(np.float64) / 255
    coloured = rgb.max(-1) - rgb.min(-1) > 0.12
    rows = [r for r in runs(coloured.sum(1) > 20) if r[1] - r[0] > SIZE]
    cols = [c for c in runs(coloured.sum(0) > 20) if c[1] - c[0] > SIZE]
    lut = matplotlib.colormaps["jet"](np.linspace(0, 1, 256))[:, :3]
    panels = []
    for top, bottom in rows:
        panels.append([])
        for left, right in cols:
            ys = (top + (np.arange(SIZE) + 0.5) * (bottom - top) / SIZE).astype(int)
            xs = (left + (np.arange(SIZE) + 0.5) * (right - left) / SIZE).astype(int)
            colour = (rgb[np.ix_(ys, xs)] - (1 - ALPHA) * GREY / 255) / ALPHA  # (SIZE, SIZE, 3): jet(v)
            nearest = ((colour[:, :, None, :] - lut[None, None]) ** 2).sum(-1).argmin(-1)
            panels[-1].append(nearest / 255)
    return panels


def test_viz_attention_on_a_trained_msdn_checkpoint(tmp_path, monkeypatch):
    Image.fromarray(np.full((40, 52, 3), GREY, dtype=np.uint8)).save(tmp_path / "grey.png")
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 3)
    names = [f"has_part{i}_color::c{i}" for i in range(5)]
    channels = 96  # test_resnet's
    data = ZSLDataset(
        name="tiny",
        labels=labels,
        class_attributes=rng.uniform(size=(4, 5)),
        splits={"trainval": np.arange(6), "test_seen": np.arange(6), "test_unseen": np.arange(6, 12)},
        features=rng.normal(size=(12, channels, 2, 2)).astype(np.float32),
        attribute_names=names,
        attribute_embeddings=rng.normal(size=(5, 8)),
    )
    train(data, "msdn", TrainConfig(epochs=2, batch_size=6, lr=0.02), out_dir=tmp_path / "run", progress=False)
    model = load_model(tmp_path / "run")
    assert model.attribute_names == names  # names travel with the checkpoint

    seen = {}  # the feature map the CLI's own backbone extracted, caught on its way to the drawing
    draw = zslkit.viz.attention_figure

    def catch(model, image, features, **kwargs):
        seen["features"] = features.detach().clone()
        return draw(model, image, features, **kwargs)

    monkeypatch.setattr(zslkit.viz, "attention_figure", catch)
    out = tmp_path / "maps.png"
    torch.manual_seed(0)  # the CLI's random-init backbone: the same features on every run
    assert main([
        "viz", "attention", "--checkpoint", str(tmp_path / "run"), "--image", str(tmp_path / "grey.png"),
        "--backbone", "test_resnet", "--random-init", "--image-size", str(SIZE), "--top-k", str(TOP_K), "--out", str(out),
    ]) == 0
    assert seen["features"].shape == (channels, 2, 2)
    expected = expected_panels(load_file(tmp_path / "run" / "epoch_002.safetensors"), seen["features"])

    # the panels are the model's own top-3 attributes per branch, on the backbone's grid,
    # in the order of the scores computed from the checkpoint's tensors
    chosen = top_attribute_maps(model, seen["features"], top_k=TOP_K)
    assert list(chosen) == ["a2v", "v2a"]
    scores = model(seen["features"][None]).attribute_scores["a2v"][0]
    assert [p.attribute for p in chosen["a2v"]] == torch.topk(scores, TOP_K).indices.tolist()
    for branch in chosen:
        assert [p.attribute for p in chosen[branch]] == [i for i, _ in expected[branch]]
        assert all(p.map.shape == (2, 2) for p in chosen[branch])

    with Image.open(out) as picture:
        assert picture.size[0] > 100 and picture.size[1] > 100
        panels = decode_panels(np.asarray(picture.convert("RGB")))
    assert [len(row) for row in panels] == [TOP_K, TOP_K], "one row per branch with maps, top-k panels each"
    inner = slice(3, SIZE - 3)  # away from the panel frame
    peaked = 0
    for row, branch in zip(panels, ("a2v", "v2a")):
        for drawn, (_, map_hw) in zip(row, expected[branch]):
            want = displayed(map_hw.float())
            np.testing.assert_allclose(drawn[inner, inner], want[inner, inner], atol=0.03)
            if want.max() > 0:
                peaked += 1
                # the panel is brightest (hottest) in the corner of the region where the checkpoint's map
                # peaks, and darkest in that of its lowest region (corners: plateaus of the upsampling)
                assert corner(drawn, int(map_hw.argmax())).min() > 0.97
                assert corner(drawn, int(map_hw.argmin())).max() < 0.03
    assert peaked >= TOP_K  # at least the attribute->visual row has real (non-flat) maps
