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
