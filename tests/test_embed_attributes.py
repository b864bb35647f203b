"""Attribute names -> phrases -> vectors; the CLI around it."""

from __future__ import annotations

import importlib.util

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


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is not None, reason="sentence-transformers installed")
def test_clear_error_without_sentence_transformers(tmp_path, capsys):
    (tmp_path / "names.txt").write_text("black\n")
    assert main(["embed-attributes", str(tmp_path / "names.txt"), "--model", str(tmp_path), "--out", str(tmp_path / "v.npy")]) == 2
    assert "pip install 'zslkit[text]'" in capsys.readouterr().err


def test_sentence_transformer_from_a_local_directory(tmp_path):
    """Runs only where sentence-transformers is installed: a tiny random BERT saved locally, no download."""
    pytest.importorskip("sentence_transformers")
    transformers = pytest.importorskip("transformers")
    from sentence_transformers import SentenceTransformer, models

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "wing", "color", "red", "black"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    transformers.BertModel(config).save_pretrained(tmp_path / "bert")
    transformers.BertTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(tmp_path / "bert")
    word = models.Transformer(str(tmp_path / "bert"))
    SentenceTransformer(modules=[word, models.Pooling(8)]).save(str(tmp_path / "st"))
    vectors = embed_attributes(["has_wing_color::red", "black"], tmp_path / "st")
    assert vectors.shape == (2, 8) and np.isfinite(vectors).all()
