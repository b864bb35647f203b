"""``zslkit.clip``: the tiny random-init CLIP, weights from a local file, prompts, and the one-line refusals."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zslkit.clip import (
    TINY_CLIP,
    TINY_CLIP_CONFIG,
    ClipError,
    class_phrase,
    class_prompts,
    load_clip,
    prompt_embeddings,
    templates_for,
)

open_clip = pytest.importorskip("open_clip")
OPENAI_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
OPENAI_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def reference_model(seed: int):
    """The tiny CLIP as open_clip builds it from the config, seeded here."""
    torch.manual_seed(seed)
    return open_clip.CLIP(**TINY_CLIP_CONFIG).eval()


def test_tiny_clip_encodes_as_open_clip_does():
    encoder, model = load_clip(TINY_CLIP, random_init=True, seed=3), reference_model(3)
    pixels = torch.rand(2, 3, 20, 20)
    resized = F.interpolate(pixels, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        expected = F.normalize(model.encode_image((resized - OPENAI_MEAN) / OPENAI_STD), dim=-1)
        tokens = open_clip.SimpleTokenizer(context_length=32)(["a photo of a red bird.", "a wing."])
        texts = F.normalize(model.encode_text(tokens), dim=-1)
    torch.testing.assert_close(encoder.encode_images(pixels), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(encoder.encode_texts(["a photo of a red bird.", "a wing."]), texts, rtol=1e-5, atol=1e-6)
    other = load_clip(TINY_CLIP, random_init=True, seed=4)
    assert not torch.allclose(other.encode_texts(["a wing."]), texts[1:])  # the seed matters


def test_prompt_ensembles_average_unit_embeddings():
    encoder = load_clip(TINY_CLIP, random_init=True)
    groups = [["a photo of a cat.", "a blurry photo of a cat."], ["a dog."]]
    got = prompt_embeddings(encoder, groups)
    cat = encoder.encode_texts(groups[0]).double()
    np.testing.assert_allclose(got[0], (cat.sum(0) / cat.sum(0).norm()).numpy(), rtol=1e-6)
    np.testing.assert_allclose(got[1], encoder.encode_texts(["a dog."])[0].double().numpy(), rtol=1e-6)


def test_weights_come_from_a_local_file(tmp_path):
    """A model config added to open_clip, its weights saved to a file, loaded back through pretrained=PATH."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "zslkit-test-file.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(tmp_path / "configs")
    weights = tmp_path / "tiny.pt"
    torch.save(reference_model(7).state_dict(), weights)
    encoder = load_clip("zslkit-test-file", weights)
    assert encoder.describe()["weights"] == str(weights) and len(encoder.describe()["weights_sha256"]) == 64
    with torch.no_grad():
        tokens = open_clip.get_tokenizer("zslkit-test-file")(["a bird."])
        expected = F.normalize(reference_model(7).encode_text(tokens), dim=-1)
    torch.testing.assert_close(encoder.encode_texts(["a bird."]), expected)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ClipError, match="not a checkpoint of CLIP model 'zslkit-test-file'"):
        load_clip("zslkit-test-file", tmp_path / "bad.pt")


@pytest.mark.parametrize(("call", "message"), [
    (lambda p: load_clip("ViT-B-16", p / "missing.bin"), "is not a file; give the local open_clip checkpoint"),
    (lambda p: load_clip("ViT-B-16"), "give exactly one of weights=PATH"),
    (lambda p: load_clip("ViT-B-16", p / "x.bin", random_init=True), "give exactly one of weights=PATH"),
    (lambda p: load_clip("ViT-B-61", random_init=True), "unknown CLIP model 'ViT-B-61'.*ViT-B-16"),
    (lambda p: load_clip(TINY_CLIP, p / "x.bin"), "random-init only"),
])
def test_refusals_are_one_line(tmp_path, call, message):
    with pytest.raises(ClipError, match=message) as error:
        call(tmp_path)
    assert "\n" not in str(error.value)


def test_missing_extra_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(ImportError, match=r"^CLIP needs open-clip-torch: pip install 'zslkit\[clip\]'$"):
        load_clip(TINY_CLIP, random_init=True)


def test_prompts_from_real_class_names(shared_data):
    names = [line.split()[1] for line in (shared_data("cub") / "classes.txt").read_text().splitlines()]
    assert class_phrase(names[0]) == "Black footed Albatross"
    assert class_prompts(names[:1], "cub") == [["a photo of a Black footed Albatross, a type of bird."]]
    assert len(class_prompts(names[:1], "cub", ensemble=True)[0]) == len(templates_for("cub", ensemble=True)) == 4
    assert class_phrase("grizzly+bear") == "grizzly bear" and class_prompts(["abbey"], "other") == [["a photo of a abbey."]]
