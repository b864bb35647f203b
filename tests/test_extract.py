"""Feature extraction into a store: equals a direct forward pass; interruptions resume to the same store."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from zslkit.backbones import TimmBackbone
from zslkit.datasets import IncompleteStoreError, MissingImagesError, open_store, resolve_images
from zslkit.datasets.store import store_status
from zslkit.extract import extract_features, preprocessing

SIZE = 64
MODEL = "test_resnet"  # a 0.5M-parameter timm ResNet made for tests
# test_resnet's data config: mean = std = 0.5 per channel, bilinear resizing
_CONFIG = timm.create_model(MODEL).pretrained_cfg
MEAN, STD = np.array(_CONFIG["mean"]), np.array(_CONFIG["std"])


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "test_resnet.pth"
    torch.save(timm.create_model(MODEL).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(40, 56), (72, 48), (64, 64), (50, 90), (33, 47), (80, 60)]):
        paths.append(folder / "images" / f"class{i % 2}" / f"img{i}.jpg")
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def manual_preprocess(path, size, resample):
    """Resize the shorter side to ``size``, center crop, normalise -- written out by hand."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    new = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    image = image.resize(new, resample)
    left, top = int(round((new[0] - size) / 2)), int(round((new[1] - size) / 2))
    pixels = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float64) / 255
    return torch.tensor(((pixels - MEAN) / STD).transpose(2, 0, 1), dtype=torch.float32)


def direct_forward(paths, weights, interpolation="bilinear"):
    model = timm.create_model(MODEL)
    model.load_state_dict(torch.load(weights, weights_only=True))
    batch = torch.stack([manual_preprocess(p, SIZE, {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[interpolation]) for p in paths])
    with torch.no_grad():
        return model.eval().forward_features(batch).numpy()


def test_preprocessing_is_resize_center_crop_normalise(images, weights):
    backbone = TimmBackbone(MODEL, weights=weights)
    for interpolation, resample in (("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)):
        transform, config = preprocessing(backbone, SIZE, interpolation=interpolation)
        assert config["crop_pct"] == 1.0 and config["input_size"] == [3, SIZE, SIZE]
        for path in images[:3]:
            expected = manual_preprocess(path, SIZE, resample)
            torch.testing.assert_close(transform(Image.open(path).convert("RGB")), expected, atol=1e-5, rtol=0)


def test_store_equals_direct_forward_pass(images, weights, tmp_path):
    store = extract_features(images, TimmBackbone(MODEL, weights=weights), tmp_path / "s32", image_size=SIZE,
                             interpolation="bilinear", batch_size=4, dtype="float32", progress=False)
    expected = direct_forward(images, weights)
    assert store.shape == (6, 96, 2, 2) and store.complete
    np.testing.assert_allclose(store[:], expected, rtol=1e-4, atol=1e-5)
    meta = store.metadata
    assert meta["backbone"]["model"] == MODEL and meta["backbone"]["weights"] == "test_resnet.pth"
    assert len(meta["backbone"]["weights_sha256"]) == 64 and meta["image_size"] == SIZE
    assert meta["preprocessing"]["interpolation"] == "bilinear" and meta["files"] == [str(p) for p in images]
    half = extract_features(images, TimmBackbone(MODEL, weights=weights), tmp_path / "s16", image_size=SIZE,
                            interpolation="bilinear", batch_size=4, format="safetensors", progress=False)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half[:].astype(np.float32), expected, rtol=2**-10, atol=1e-4)


def test_interrupted_extraction_resumes_to_the_same_store(images, weights, tmp_path):
    def run(out, **kw):
        return extract_features(images, TimmBackbone(MODEL, weights=weights), out, image_size=SIZE,
                                batch_size=2, progress=False, **kw)

    reference = run(tmp_path / "reference")[:]

    def stop_after_first_batch(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "s", on_batch=stop_after_first_batch)
    assert store_status(tmp_path / "s")["done"] == 2
    with pytest.raises(IncompleteStoreError):
        open_store(tmp_path / "s")
    seen = []
    resumed = run(tmp_path / "s", on_batch=lambda done, total: seen.append(done))
    assert seen == [4, 6]  # only the missing batches ran
    np.testing.assert_array_equal(resumed[:], reference)


def test_crash_between_writing_rows_and_recording_progress(images, weights, tmp_path, monkeypatch):
    import zslkit.datasets.store as store_module

    real = store_module._write_json_atomic
    calls = {"progress": 0}

    def crash_on_second_progress(path, content):
        if path.name == "progress.json" and content.get("done", 0) > 0:
            calls["progress"] += 1
            if calls["progress"] == 2:
                raise OSError("power cut")
        real(path, content)

    monkeypatch.setattr(store_module, "_write_json_atomic", crash_on_second_progress)
    with pytest.raises(OSError, match="power cut"):
        extract_features(images, TimmBackbone(MODEL, weights=weights), tmp_path / "s", image_size=SIZE, batch_size=2, progress=False)
    monkeypatch.setattr(store_module, "_write_json_atomic", real)
    assert store_status(tmp_path / "s")["done"] == 2  # rows 2-3 reached the disk, but were not recorded
    resumed = extract_features(images, TimmBackbone(MODEL, weights=weights), tmp_path / "s", image_size=SIZE, batch_size=2, progress=False)
    np.testing.assert_allclose(resumed[:].astype(np.float32), direct_forward(images, weights), rtol=2**-10, atol=1e-4)


def test_killed_process_resumes_to_the_same_store(images, weights, tmp_path):
    script = textwrap.dedent(f"""
        import os, signal
        from zslkit.backbones import TimmBackbone
        from zslkit.extract import extract_features
        paths = {[str(p) for p in images]!r}
        def kill(done, total):
            if done == 4:
                os.kill(os.getpid(), signal.SIGKILL)
        extract_features(paths, TimmBackbone("test_resnet", weights={str(weights)!r}), {str(tmp_path / "s")!r},
                         image_size={SIZE}, batch_size=2, progress=False, on_batch=kill)
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert child.returncode == -9, child.stderr
    assert store_status(tmp_path / "s") | {"shape": None} == {"complete": False, "done": 4, "total": 6, "shape": None,
                                                               "dtype": "float16", "format": "npy", "bytes": 6 * 96 * 4 * 2}
    resumed = extract_features([str(p) for p in images], TimmBackbone(MODEL, weights=weights), tmp_path / "s",
                               image_size=SIZE, batch_size=2, progress=False)
    reference = extract_features([str(p) for p in images], TimmBackbone(MODEL, weights=weights), tmp_path / "reference",
                                 image_size=SIZE, batch_size=2, progress=False)
    np.testing.assert_array_equal(resumed[:], reference[:])


def test_resume_with_other_settings_is_refused(images, weights, tmp_path):
    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_features(images, TimmBackbone(MODEL, weights=weights), tmp_path / "s", image_size=SIZE, batch_size=2,
                         progress=False, on_batch=stop)
    with pytest.raises(ValueError, match=r"unfinished extraction with other settings \(metadata.image_size: 64 in the store, 96 now\)"):
        extract_features(images, TimmBackbone(MODEL, weights=weights), tmp_path / "s", image_size=96, progress=False)


def test_missing_images_stop_before_anything_is_written(images, weights, tmp_path):
    listed = [f"/authors/images/{p.parent.name}/{p.name}" for p in images] + ["/authors/images/class0/gone.jpg"]
    image_list = resolve_images(listed, images[0].parent.parent.parent)
    with pytest.raises(MissingImagesError, match=r"1 of 7 images not found under .*images \(first: .*gone.jpg\)"):
        extract_features(image_list, TimmBackbone(MODEL, weights=weights), tmp_path / "s", image_size=SIZE)
    assert not (tmp_path / "s").exists()
