"""Gradient noise of TransZero's dropout: the spread of one batch's gradient over mask draws.

For one batch of 50 images of the built-in synthetic dataset (d = 64, FFN 128, dropout 0.4), the
gradient is computed for 12 mask draws; printed: the norm of the mean gradient, the mean norm of
each draw's deviation from it, and their ratio. ``own`` is the model's own masks, ``torch`` the
masks ``nn.Dropout`` draws (:func:`zslkit.attention.dropout.torch_dropout_draws`, one per image).
Issue 28: with the decoder's attribute self-attention masks shared by the batch, ``own`` was 3.6x
``torch``.

    python benchmarks/transzero_dropout_noise.py
"""

from __future__ import annotations

import contextlib

import torch

import zslkit
from zslkit.attention.dropout import torch_dropout_draws


def options(model: str) -> dict:
    encoder = {"encoder": "geometry_encoder", "dim": 64, "ffn_dim": 128, "dropout": 0.4, "attention_dropout": 0.1}
    decoder = {"heads": 1, "ffn_dim": 128, "dropout": 0.4, "self_attention": True}
    if model == "transzero":
        return {"encoder": encoder, "branches": {"s2v": {"attention": "attribute_query_decoder", "weight": 1.0, **decoder}}}
    return {"branches": {"s2v": {"attention": "attribute_query_decoder", "weight": 0.9, **decoder, "encoder": encoder},
                         "v2s": {"attention": "region_query_decoder", "weight": 0.1, **decoder, "encoder": encoder}}}


def main(draws: int = 12) -> None:
    torch.set_num_threads(1)
    data = zslkit.load_dataset("synthetic", images_per_class=20)
    train = data.splits["trainval"][:50]
    x, y = torch.as_tensor(data.features[train]), torch.as_tensor(data.labels[train]).long()
    for name in ("transzero", "transzero_pp"):
        torch.manual_seed(0)
        model = zslkit.create_model(name, class_attributes=data.class_attributes, attribute_embeddings=data.attribute_embeddings,
                                    seen_classes=data.seen_classes, unseen_classes=data.unseen_classes, feature_dim=data.feature_dim,
                                    **options(name)).train()
        for masks in ("own", "torch"):
            grads = []
            for i in range(draws):
                torch.manual_seed(100 + i)
                with torch_dropout_draws() if masks == "torch" else contextlib.nullcontext():
                    loss = model.loss(model(x), y)["total"]
                model.zero_grad()
                loss.backward()
                grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
            g = torch.stack(grads)
            mean = g.mean(0)
            spread = (g - mean).norm(dim=1).mean()
            print(f"{name}\t{masks}\tmean gradient {mean.norm():.1f}\tspread {spread:.1f}\tratio {spread / mean.norm():.2f}")


if __name__ == "__main__":
    main()
