"""Published reference numbers, shown beside measured rows and labelled "published".

All values are per-class mean top-1 accuracies in percent on the xlsa17
proposed split, with ResNet-101 features except where said (ZSLViT).

* Embedding baselines: Xian, Lampert, Schiele and Akata, "Zero-Shot Learning -
  A Comprehensive Evaluation of the Good, the Bad and the Ugly", TPAMI 2018
  (arXiv:1707.00600), Table "ZSL" (T1) and Table "GZSL" (U, S, H). Hyper-parameters
  were chosen on the validation split and GZSL uses **no calibration**
  (gamma = 0), so their U is low and S high. Checked against the copies of
  those tables in github.com/ucbdrive/tafe-net (README, all five methods and
  datasets), github.com/lzrobots/DeepEmbeddingModel_ZSL (README, CUB) and
  github.com/mvp18/Popular-ZSL-Algorithms (ESZSL, SAE, ALE, SJE, DeViSE
  READMEs). The tafe-net copy prints SJE's SUN S as 80.5; the value is 30.5, the
  one consistent with its H of 19.8 (2 * 14.7 * 30.5 / 45.2).
* MSDN: Chen et al., "MSDN: Mutually Semantic Distillation Network for
  Zero-Shot Learning", CVPR 2022, main results table, as restated in
  github.com/shiming-chen/MSDN (README). Obtained the paper-repository way
  (best epoch on test, calibration constant in the config): compare with the
  ``paper`` protocol.
* TransZero: Chen et al., "TransZero: Attribute-guided Transformer for Zero-Shot
  Learning", AAAI 2022, as restated in github.com/shiming-chen/TransZero (README,
  results of the released models). TransZero++: Chen et al., "TransZero++:
  Cross Attribute-Guided Transformer for Zero-Shot Learning", TPAMI 2022, as restated
  in github.com/shiming-chen/TransZero_pp (README). Obtained as MSDN's (best epoch on
  test): compare with the ``paper`` protocol.
* APN: Xu et al., "Attribute Prototype Network for Zero-Shot Learning", NeurIPS
  2020, as its repository's README gives them (github.com/wenjiaXu/APN-ZSL, "Model
  zoo": the ZSL accuracy, T1, and the GZSL accuracy, H, of the released models). The
  README gives no U and S, so those cells stay empty.
* ZSLViT: Chen et al., "Progressive Semantic-Guided Vision Transformer for Zero-Shot
  Learning", CVPR 2024, as restated in github.com/shiming-chen/ZSLViT (README, "Results
  of our released models"): a DeiT-B/16 fine-tuned end to end (ImageNet-1k weights), not
  ResNet-101 features; the released checkpoints run at 448 px (ZSLViT issue #4). Best epoch
  on test (their train.py keeps the best test H), calibration gamma fixed per dataset.
* PSVMA: Liu et al., "Progressive Semantic-Visual Mutual Adaption for Generalized
  Zero-Shot Learning", CVPR 2023 (arXiv:2303.15322), main results table, with a ViT-B/16
  fine-tuned end to end (not ResNet-101 features). Its repository's README gives no numbers
  and no copy of the table could be checked when they were entered: the values are as
  widely restated, **unverified** here. Obtained the paper-repository way (the checkpoint of
  the best test H, a seen-score offset fixed per dataset): compare with the ``paper`` protocol.
* SVIP: Chen et al., "SVIP: Semantically Contextualized Visual Patches for Zero-Shot
  Learning", ICCV 2025, as its repository's README gives them (github.com/uqzhichen/SVIP,
  "Main Results": the ZSL accuracy, T1, and the GZSL accuracy, H, of the released models;
  no U and S). Their code picks the GZSL calibration offset on the test set and measures
  GZSL accuracy per image, not per class (``docs/svip.md``): compare with the ``paper`` protocol.
* GEM-ZSL: its repository's README gives no numbers, and the paper's table could not
  be checked here, so none are listed.

AUSUC was not reported by any source.
"""

from __future__ import annotations

__all__ = ["PUBLISHED", "PUBLISHED_SOURCES", "published"]

_GBU = "Xian et al., TPAMI 2018 (GBU), validation-tuned, uncalibrated"
_MSDN = "Chen et al., CVPR 2022 (MSDN), best epoch on test"
_APN = "Xu et al., NeurIPS 2020 (APN), the README's released models (T1 and H only)"
_TZ = "Chen et al., AAAI 2022 (TransZero), README of the released code, best epoch on test"
_TZPP = "Chen et al., TPAMI 2022 (TransZero++), README of the released code, best epoch on test"
_ZSLVIT = "Chen et al., CVPR 2024 (ZSLViT), README of the released code (DeiT-B/16 end to end), best epoch on test"
_PSVMA = "Liu et al., CVPR 2023 (PSVMA), paper's table (unverified copy), ViT-B/16, best epoch on test"
_SVIP = ("Chen et al., ICCV 2025 (SVIP), README of the released code (T1 and H only; H with the offset chosen on test, "
         "per-image accuracy)")

#: Source of each method's published numbers.
PUBLISHED_SOURCES: dict[str, str] = {
    "devise": _GBU, "sje": _GBU, "latem": _GBU, "eszsl": _GBU, "ale": _GBU, "sae": _GBU, "msdn": _MSDN,
    "transzero": _TZ, "transzero_pp": _TZPP, "apn": _APN,
    "zslvit": _ZSLVIT, "psvma": _PSVMA, "svip": _SVIP,
}

#: method -> dataset -> (T1, U, S, H) in percent; ``None`` where the source gives no value.
PUBLISHED: dict[str, dict[str, tuple[float | None, float | None, float | None, float | None]]] = {
    "devise": {"cub": (52.0, 23.8, 53.0, 32.8), "sun": (56.5, 16.9, 27.4, 20.9), "awa2": (59.7, 17.1, 74.7, 27.8)},
    "sje": {"cub": (53.9, 23.5, 59.2, 33.6), "sun": (53.7, 14.7, 30.5, 19.8), "awa2": (61.9, 8.0, 73.9, 14.4)},
    "latem": {"cub": (49.3, 15.2, 57.3, 24.0), "sun": (55.3, 14.7, 28.8, 19.5), "awa2": (55.8, 11.5, 77.3, 20.0)},
    "eszsl": {"cub": (53.9, 12.6, 63.8, 21.0), "sun": (54.5, 11.0, 27.9, 15.8), "awa2": (58.6, 5.9, 77.8, 11.0)},
    "ale": {"cub": (54.9, 23.7, 62.8, 34.4), "sun": (58.1, 21.8, 33.1, 26.3), "awa2": (62.5, 14.0, 81.8, 23.9)},
    "sae": {"cub": (33.3, 7.8, 54.0, 13.6), "sun": (40.3, 8.8, 18.0, 11.8), "awa2": (54.1, 1.1, 82.2, 2.2)},
    "msdn": {"cub": (76.1, 68.7, 67.5, 68.1), "sun": (65.8, 52.2, 34.2, 41.3), "awa2": (70.1, 62.0, 74.5, 67.7)},
    "apn": {"cub": (72.1, None, None, 67.2), "sun": (61.5, None, None, 37.5), "awa2": (68.6, None, None, 67.4)},
    "transzero": {"cub": (76.8, 69.3, 68.3, 68.8), "sun": (65.6, 52.6, 33.4, 40.8), "awa2": (70.1, 61.3, 82.3, 70.2)},
    "transzero_pp": {"cub": (78.3, 67.5, 73.6, 70.4), "sun": (67.6, 48.6, 37.8, 42.5), "awa2": (72.6, 64.6, 82.7, 72.5)},
    "zslvit": {"cub": (78.9, 69.4, 78.2, 73.6), "sun": (68.3, 45.9, 48.4, 47.3), "awa2": (70.7, 66.1, 84.6, 74.2)},
    "psvma": {"cub": (None, 70.1, 77.8, 73.8), "sun": (None, 61.7, 45.3, 52.3), "awa2": (78.6, 73.6, 77.3, 75.4)},
    "svip": {"cub": (79.8, None, None, 75.0), "sun": (71.6, None, None, 50.7), "awa2": (69.8, None, None, 74.9)},
}


def published(method: str, dataset: str) -> dict[str, float] | None:
    """``{"T1", "U", "S", "H"}`` as fractions in [0, 1] (those published), or ``None`` when nothing was published."""
    values = PUBLISHED.get(method, {}).get(dataset)
    if values is None:
        return None
    return {key: value / 100 for key, value in zip(("T1", "U", "S", "H"), values) if value is not None}
