"""Attribute names -> phrases -> vectors; the CLI around it."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from zslkit.cli import main
from zslkit.embed_attributes import attribute_phrase, embed_attributes


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("has_wing_color::red", "wing color red"),
        ("has_bill_shape::curved_(up_or_down)", "bill shape curved up or down"),
        ("has_bill_length::about_the_same_as_head", "bill length about the same as head"),
        ("has_upperparts_color::grey", "upperparts color grey"),
        ("black", "black"),
        ("sailing/ boating", "sailing or boating"),
        ("  dirty-soil ", "dirty soil"),
    ],
)
def test_attribute_phrase(name, phrase):
    assert attribute_phrase(name) == phrase


def test_empty_phrase_is_an_error():
    with pytest.raises(ValueError, match="gives an empty phrase"):
        attribute_phrase("has_::")


class FakeEncoder:
    """Records what it was asked to embed; returns one fixed-size vector per phrase."""

    def __init__(self):
        self.seen = []

    def encode(self, phrases, batch_size, convert_to_numpy):
        self.seen.extend(phrases)
        return np.stack([np.full(4, len(p), dtype=np.float64) for p in phrases])


def test_embed_uses_the_phrases():
    encoder = FakeEncoder()
    vectors = embed_attributes(["has_wing_color::red", "black"], encoder)
    assert encoder.seen == ["wing color red", "black"]
    assert vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, [[14] * 4, [5] * 4])


def test_cli_previews_phrases(tmp_path, capsys):
    (tmp_path / "attributes.txt").write_text("1 has_wing_color::red\n2 has_bill_shape::dagger\n")
    assert main(["embed-attributes", str(tmp_path / "attributes.txt"), "--phrases"]) == 0
    assert capsys.readouterr().out.splitlines() == ["has_wing_color::red\twing color red", "has_bill_shape::dagger\tbill shape dagger"]
    assert main(["embed-attributes", str(tmp_path / "attributes.txt")]) == 2
    assert "give --model" in capsys.readouterr().err


def test_clear_error_without_sentence_transformers(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if the text extra were not installed
    (tmp_path / "names.txt").write_text("black\n")
    assert main(["embed-attributes", str(tmp_path / "names.txt"), "--model", str(tmp_path), "--out", str(tmp_path / "v.npy")]) == 2
    assert "pip install 'zslkit[text]'" in capsys.readouterr().err


def test_sentence_transformer_from_a_local_directory(tmp_path):
    """A tiny random BERT saved locally (no download): zslkit's vectors are the model's mean-pooled states.

    The reference runs the saved ``transformers`` model and tokenizer directly on the phrases
    and mean-pools the last hidden states over the real (unpadded) tokens.
    """
    pytest.importorskip("sentence_transformers", reason="needs the text extra: pip install 'zslkit[text]'")
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # 3.x - 5.x
        from sentence_transformers.models import Pooling, Transformer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "wing", "color", "red", "black", "bill", "shape"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
    )
    transformers.BertModel(config).save_pretrained(tmp_path / "bert")
    transformers.BertTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(tmp_path / "bert")
    word = Transformer(str(tmp_path / "bert"))
    SentenceTransformer(modules=[word, Pooling(8, pooling_mode="mean")]).save(str(tmp_path / "st"))

    names = ["has_wing_color::red", "black", "has_bill_shape::wing_red_black"]  # different lengths: padding
    vectors = embed_attributes(names, tmp_path / "st")

    bert = transformers.BertModel.from_pretrained(tmp_path / "bert").eval()
    tokenizer = transformers.BertTokenizer.from_pretrained(tmp_path / "bert")
    batch = tokenizer(["wing color red", "black", "bill shape wing red black"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = bert(**batch).last_hidden_state  # (I, T, 8)
    mask = batch["attention_mask"][..., None].float()
    expected = (hidden * mask).sum(1) / mask.sum(1)
    assert batch["input_ids"][1].tolist()[:3] == [2, 8, 3]  # [CLS] black [SEP]: the phrase's own words, no [UNK]
    assert vectors.dtype == np.float32 and vectors.shape == (3, 8)
    np.testing.assert_allclose(vectors, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(vectors[0], vectors[2], atol=1e-3)  # the phrases differ, so do their vectors
    # the CLI writes the same vectors
    (tmp_path / "names.txt").write_text("".join(f"{i + 1} {name}\n" for i, name in enumerate(names)))
    argv = ["embed-attributes", str(tmp_path / "names.txt"), "--model", str(tmp_path / "st"), "--out", str(tmp_path / "v.npy")]
    assert main(argv) == 0
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), expected.numpy(), rtol=1e-5, atol=1e-6)
