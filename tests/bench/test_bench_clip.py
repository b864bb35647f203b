"""The CLIP rows of the bench (clip_names, clip_attributes, clip_linear) against an independent computation.

The independent side builds the tiny CLIP from open_clip and zslkit's config, undoes the images'
normalisation, resizes and normalises them itself, and writes its prompts out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zslkit.bench import available_cases, run_benchmark, select_cases
from zslkit.cli import main
from zslkit.clip import TINY_CLIP, TINY_CLIP_CONFIG
from zslkit.datasets.synthetic import make_synthetic_images
from zslkit.methods import ESZSL

open_clip = pytest.importorskip("open_clip")
SMALL = {"num_classes": 8, "images_per_class": 4, "image_size": 28}
TINY = {"model": TINY_CLIP, "random_init": True}
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def data():
    return make_synthetic_images(**SMALL)


@pytest.fixture(scope="module")
def reference(data):
    """``(image embeddings (N, D), text(prompts) -> (T, D))`` of the tiny CLIP, computed here."""
    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY_CLIP_CONFIG).eval()
    tokenizer = open_clip.SimpleTokenizer(context_length=32)
    pixels = torch.as_tensor(np.asarray(data.features[: data.num_images])) * 0.25 + 0.5
    pixels = F.interpolate(pixels, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        images = F.normalize(model.encode_image((pixels - MEAN) / STD), dim=-1).double().numpy()

    def text(prompts):
        with torch.no_grad():
            return F.normalize(model.encode_text(tokenizer(prompts)), dim=-1).double().numpy()

    return images, text


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def fitted_scores(name, data, params=None):
    runner = available_cases()[name].runner(clip=TINY)
    fit = runner.fit(data, params or {}, seed=0)
    return runner.scores(fit.predictor, data, np.arange(data.num_images))


def class_words(data):
    return [n.replace("_", " ") for n in data.class_names]


def test_clip_names_is_the_cosine_with_the_class_prompt(data, reference):
    images, text = reference
    classes = text([f"a picture of a {w}, a kind of toy bird." for w in class_words(data)])
    np.testing.assert_allclose(fitted_scores("clip_names", data), images @ classes.T, rtol=1e-4, atol=1e-5)


def test_prompt_ensembling_averages_the_templates(data, reference):
    images, text = reference
    first = text([f"a picture of a {w}, a kind of toy bird." for w in class_words(data)])
    second = text([f"a drawing of a {w}." for w in class_words(data)])
    expected = images @ unit(first + second).T
    np.testing.assert_allclose(fitted_scores("clip_names+ensemble", data), expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(expected, images @ first.T, atol=1e-4)


def test_clip_attributes_combines_standardised_attribute_scores_through_the_matrix(data, reference):
    images, text = reference
    phrases = [n.removeprefix("has_").replace("::", " ").replace("_", " ") for n in data.attribute_names]
    assert phrases[0] == "head color red"
    cosines = images @ text([f"a picture of a toy bird with {p}." for p in phrases]).T  # (N, I)
    train = cosines[data.splits["trainval"]]
    z = (cosines - train.mean(0)) / train.std(0)
    expected = z @ unit(data.class_attributes.astype(np.float64)).T
    np.testing.assert_allclose(fitted_scores("clip_attributes", data), expected, rtol=1e-4, atol=1e-5)


def test_clip_linear_is_eszsl_on_clip_embeddings_with_class_name_semantics(data, reference):
    images, text = reference
    classes = text([f"a picture of a {w}, a kind of toy bird." for w in class_words(data)])
    train = data.splits["trainval"]
    mean, std = images[train].mean(0), images[train].std(0)
    eszsl = ESZSL(gamma=10.0, lambda_=0.1).fit((images[train] - mean) / std, data.labels[train], classes, data.seen_classes)
    expected = eszsl.decision_function((images - mean) / std)
    np.testing.assert_allclose(fitted_scores("clip_linear", data, {"gamma": 10.0, "lambda_": 0.1}), expected,
                               rtol=1e-4, atol=1e-6)


def test_bench_rows_are_marked_and_keyed_by_the_clip_model(tmp_path):
    result = run_benchmark(["synthetic_images"], ["clip_names", "clip_attributes"],
                           dataset_options={"synthetic_images": SMALL}, progress=False, clip=TINY, out_dir=tmp_path)
    table = result.table()
    assert "| clip_names † |" in table and "| clip_attributes † |" in table
    assert "Rows marked †: random-init CLIP: a plumbing check, not a measurement." in table
    assert "leak_free" not in table  # a random init saw nothing: no leak-free columns
    for cell in result.cells:
        assert cell["settings"]["clip_model"] == TINY and cell["caveat"].startswith("random-init CLIP")
    assert {c["settings"]["clip"]["semantics"] for c in result.cells} == {"names", "attributes"}
    other = run_benchmark(["synthetic_images"], ["clip_names"], dataset_options={"synthetic_images": SMALL},
                          progress=False, clip={**TINY, "seed": 1}, out_dir=tmp_path)
    assert other.cells[0]["settings_hash"] != result.cells[0]["settings_hash"]  # another model: not the cached cell


def test_clip_rows_run_only_when_named_and_need_a_model(data):
    assert not {c.name for c in select_cases(None, "synthetic_images")} & {"clip_names", "clip_attributes", "clip_linear"}
    with pytest.raises(ValueError, match="needs a CLIP model: zslkit bench --clip MODEL --clip-weights PATH"):
        available_cases()["clip_names"].runner().fit(data, {}, seed=0)


@pytest.mark.parametrize(("flags", "message"), [
    (["--clip-weights", "x.bin"], "need --clip MODEL"),
    (["--clip", "ViT-B-16"], "exactly one of --clip-weights PATH"),
    (["--clip", "ViT-B-16", "--clip-weights", "x.bin", "--clip-random-init"], "exactly one of --clip-weights PATH"),
])
def test_cli_refuses_contradicting_clip_flags(flags, message, capsys):
    assert main(["bench", "--dataset", "synthetic_images", "--model", "clip_names", *flags]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_rows_with_real_weights_say_web_scale_leakage_unknown(tmp_path):
    """Weights from a file (a config added to open_clip, its state saved): the leak-free columns say why they are empty."""
    import json

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "zslkit-test-bench.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(tmp_path / "configs")
    torch.manual_seed(2)
    torch.save(open_clip.CLIP(**TINY_CLIP_CONFIG).state_dict(), tmp_path / "weights.pt")
    model = {"model": "zslkit-test-bench", "weights": str(tmp_path / "weights.pt")}
    result = run_benchmark(["synthetic_images"], ["clip_attributes"], dataset_options={"synthetic_images": SMALL},
                           progress=False, clip=model)
    row = result.rows()[0]
    assert row["U_leak_free"] == row["H_leak_free"] == "leakage unknown (web-scale)" and "caveat" not in row
    assert result.cells[0]["leakage"]["pretraining"] == "clip_zslkit-test-bench" and result.cells[0]["leakage"]["web_scale"]
    table = result.table()
    assert "| clip_attributes |" in table and "web-scale, leakage unknown" in table and "†" not in table
