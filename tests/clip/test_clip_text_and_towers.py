"""CLIP as semantics (``zslkit embed-attributes --clip``) and as a backbone (timm's CLIP towers from an open_clip file)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import zslkit
from zslkit.cli import main
from zslkit.clip import TINY_CLIP_CONFIG

open_clip = pytest.importorskip("open_clip")


def tiny(seed: int = 0):
    torch.manual_seed(seed)
    return open_clip.CLIP(**TINY_CLIP_CONFIG).eval()


def test_embed_attributes_with_clip_writes_attribute_and_class_vectors(tmp_path, capsys):
    names, classes = tmp_path / "attributes.txt", tmp_path / "classes.txt"
    names.write_text("1 has_bill_shape::curved_(up_or_down)\n2 has_wing_color::blue\n")
    classes.write_text("1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")
    out, class_out = tmp_path / "att.npy", tmp_path / "cls.npy"
    assert main(["embed-attributes", str(names), "--clip", "zslkit-tiny", "--random-init", "--dataset", "cub",
                 "--out", str(out), "--class-names", str(classes), "--class-out", str(class_out)]) == 0
    assert "wrote" in capsys.readouterr().out
    tokenizer = open_clip.SimpleTokenizer(context_length=32)
    prompts = ["a photo of a bird with bill shape curved up or down.", "a photo of a bird with wing color blue.",
               "a photo of a Black footed Albatross, a type of bird.", "a photo of a Laysan Albatross, a type of bird."]
    with torch.no_grad():
        expected = F.normalize(tiny().encode_text(tokenizer(prompts)), dim=-1).numpy()
    np.testing.assert_allclose(np.load(out), expected[:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(class_out), expected[2:], rtol=1e-5, atol=1e-6)
    assert np.load(out).dtype == np.float32


@pytest.mark.parametrize(("flags", "message"), [
    (["--ensemble"], "--ensemble is for CLIP text embeddings: give --clip MODEL too"),
    (["--model", "m", "--clip", "zslkit-tiny", "--random-init"], "both name the text encoder"),
    (["--clip", "zslkit-tiny"], "exactly one of --weights PATH"),
    (["--clip", "zslkit-tiny", "--random-init", "--class-names", "c.txt"], "go together"),
    (["--clip", "ViT-B-16", "--weights", "missing.bin"], "is not a file"),
])
def test_embed_attributes_refuses_in_one_line(tmp_path, capsys, flags, message):
    names = tmp_path / "attributes.txt"
    names.write_text("red\n")
    assert main(["embed-attributes", str(names), "--out", str(tmp_path / "a.npy"), *flags]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


@pytest.mark.parametrize("backbone", ["timm", "timm_tokens"])
def test_timm_clip_tower_reads_an_open_clip_checkpoint(tmp_path, backbone):
    """Patch tokens of timm's CLIP ViT loaded from a whole open_clip file equal open_clip's own tower's tokens."""
    model = tiny(5)
    torch.save(model.state_dict(), tmp_path / "open_clip_model.pt")
    tower = zslkit.create("backbone", backbone, model_name="vit_base_patch16_clip_224", weights=tmp_path / "open_clip_model.pt",
                          embed_dim=32, depth=2, num_heads=2, patch_size=8, img_size=32).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        model.visual.output_tokens = True
        _, tokens = model.visual(images)  # tokens after ln_post, (B, 16, 32)
        out = tower(images)
    patches = out.patches if backbone == "timm_tokens" else out.flatten(2).transpose(1, 2)
    torch.testing.assert_close(patches, tokens, rtol=1e-5, atol=1e-5)


def test_clip_rows_read_a_store_of_clip_embeddings(tmp_path):
    """``zslkit extract --clip``'s backbone writes unit CLIP embeddings; the CLIP rows read them as the images'."""
    import dataclasses

    import timm.data
    from PIL import Image

    from zslkit.bench import available_cases
    from zslkit.datasets.synthetic import make_synthetic_images
    from zslkit.extract import extract_features

    data = make_synthetic_images(num_classes=8, images_per_class=4, image_size=28)
    paths = []
    for i in range(data.num_images):
        pixels = (np.asarray(data.features[i]) * 0.25 + 0.5).clip(0, 1)
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray((pixels.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(paths[-1])
    backbone = zslkit.create("backbone", "clip_image", model="zslkit-tiny", random_init=True)
    store = extract_features(paths, backbone, tmp_path / "store", image_size=32, dtype="float32", progress=False)
    transform = timm.data.create_transform(input_size=(3, 32, 32), interpolation="bicubic", crop_pct=1.0,
                                           mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711))
    with torch.no_grad():
        batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths[:3]])
        expected = F.normalize(tiny().encode_image(batch), dim=-1)
    torch.testing.assert_close(torch.as_tensor(np.asarray(store[:3]))[:, :, 0, 0], expected, rtol=1e-4, atol=1e-5)

    on_store = dataclasses.replace(data, features=store, metadata={k: v for k, v in data.metadata.items() if k != "form"},
                                   global_features=np.ones((data.num_images, 5), np.float32))  # as res101 beside a store
    runner = available_cases()["clip_names"].runner(clip={"model": "zslkit-tiny", "random_init": True})
    scores = runner.scores(runner.fit(on_store, {}, seed=0).predictor, on_store, np.arange(data.num_images))
    tokenizer = open_clip.SimpleTokenizer(context_length=32)
    prompts = [f"a picture of a {n.replace('_', ' ')}, a kind of toy bird." for n in data.class_names]
    with torch.no_grad():
        classes = F.normalize(tiny().encode_text(tokenizer(prompts)), dim=-1).double().numpy()
    rows = np.asarray(store[:]).reshape(data.num_images, -1).astype(np.float64)
    np.testing.assert_allclose(scores, rows @ classes.T, rtol=1e-4, atol=1e-5)
    other = available_cases()["clip_names"].runner(clip={"model": "zslkit-tiny", "random_init": True, "seed": 1})
    with pytest.raises(ValueError, match="its CLIP embeddings come from .*not from the run's CLIP model"):
        other.fit(on_store, {}, seed=0)


def test_extract_refuses_clip_with_a_backbone(tmp_path, capsys):
    assert main(["extract", "--dataset-root", str(tmp_path), "--xlsa17", str(tmp_path), "--out", str(tmp_path / "s"),
                 "--clip", "ViT-B-16", "--backbone", "resnet50", "--random-init"]) == 2
    assert "--backbone resnet50 and --clip ViT-B-16 both name the image model" in capsys.readouterr().err
