"""A CLIP model (open-clip-torch) as two encoders: images -> unit vectors, texts -> unit vectors.

Weights come from a local file only (open_clip's ``pretrained=PATH``); nothing is downloaded.
Models whose tokenizer open_clip would fetch from the Hugging Face hub are refused. The tiny
model :data:`TINY_CLIP` (``"zslkit-tiny"``) is built from zslkit's own model config
(:data:`TINY_CLIP_CONFIG`, open_clip's ``CLIP(**config)``), random-init only: for tests and the
demo's plumbing check, never a measurement.

Needs the optional extra ``clip``: ``pip install 'zslkit[clip]'``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["TINY_CLIP", "TINY_CLIP_CONFIG", "ClipEncoder", "ClipError", "load_clip", "require_open_clip"]

#: The name of zslkit's tiny random-init CLIP (tests, demo).
TINY_CLIP = "zslkit-tiny"
#: Its open_clip model config: 32 px images in 8 px patches, 2 blocks of width 32 per tower, 32-d joint space.
TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipError(ValueError):
    """A CLIP model that cannot be built as asked (unknown name, missing or unreadable weights)."""


def require_open_clip():
    """The ``open_clip`` module, or a one-line ImportError naming the extra to install."""
    try:
        import open_clip
    except ImportError:
        raise ImportError("CLIP needs open-clip-torch: pip install 'zslkit[clip]'") from None
    return open_clip


class ClipEncoder:
    """A CLIP model's two towers.

    Args:
        model: the open_clip model (``encode_image``, ``encode_text``).
        tokenizer: texts -> ``(T, L)`` token ids.
        description: JSON-ready ``{"model", "weights", "random_init"}`` (what a cache key records).
        image_size: the side the image tower reads; mean, std: its pixel normalisation.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, description: dict[str, Any], image_size: int,
                 mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.description = dict(description)
        self.image_size = int(image_size)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` pixels in ``[0, 1]`` -> ``(B, D)`` unit vectors.

        Resized (bilinear, antialiased) to :attr:`image_size` when ``H, W`` differ, then normalised with
        the tower's mean and std."""
        x = pixels.float()
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True,
                              align_corners=False)
        return self.encode_normalised((x - self.mean.to(x.device)) / self.std.to(x.device))

    def encode_normalised(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` images already normalised with :attr:`mean` and :attr:`std` -> ``(B, D)`` unit vectors."""
        return F.normalize(self.model.encode_image(images).float(), dim=-1)

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """``T`` texts -> ``(T, D)`` unit vectors."""
        if not texts:
            raise ValueError("no texts to encode")
        return F.normalize(self.model.encode_text(self.tokenizer(list(texts))).float(), dim=-1)

    def describe(self) -> dict[str, Any]:
        return dict(self.description)


def _tiny(open_clip, seed: int) -> ClipEncoder:
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = open_clip.CLIP(**TINY_CLIP_CONFIG)
    finally:
        torch.random.set_rng_state(generator_state)
    tokenizer = open_clip.SimpleTokenizer(context_length=TINY_CLIP_CONFIG["text_cfg"]["context_length"])
    description = {"model": TINY_CLIP, "weights": None, "random_init": True, "seed": seed}
    return ClipEncoder(model, tokenizer, description, TINY_CLIP_CONFIG["vision_cfg"]["image_size"],
                       _OPENAI_MEAN, _OPENAI_STD)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _config(open_clip, name: str) -> dict[str, Any]:
    """open_clip's config of model ``name``; refuses unknown names and models that read the Hugging Face hub."""
    from zslkit.registry import did_you_mean

    config = open_clip.get_model_config(name)
    if config is None:
        known = open_clip.list_models()
        raise ClipError(f"unknown CLIP model {name!r}{did_you_mean(name, known) or ''}; give an open_clip model "
                        f"name (open_clip.list_models(), e.g. ViT-B-16-quickgelu) or {TINY_CLIP!r}")
    if config.get("text_cfg", {}).get("hf_tokenizer_name") or config.get("text_cfg", {}).get("hf_model_name"):
        raise ClipError(f"CLIP model {name!r} reads its tokenizer or text tower from the Hugging Face hub, which zslkit "
                        "never downloads; give a model with open_clip's own tokenizer (ViT-*, RN*)")
    return config


def load_clip(model: str, weights: str | Path | None = None, *, random_init: bool = False, seed: int = 0,
              checksum: bool = True) -> ClipEncoder:
    """A :class:`ClipEncoder` of open_clip model ``model`` with ``weights`` from a local file.

    ``random_init``: random weights seeded by ``seed`` (tests only; the only way to build :data:`TINY_CLIP`).
    ``checksum``: record the weights file's SHA-256 in :meth:`ClipEncoder.describe` (cache keys).
    Exactly one of ``weights`` and ``random_init`` must be given.
    """
    open_clip = require_open_clip()
    if (weights is None) == (not random_init):
        raise ClipError(f"CLIP model {model!r}: give exactly one of weights=PATH (a local file; nothing is "
                        "downloaded) or random_init=True")
    if model == TINY_CLIP:
        if weights is not None:
            raise ClipError(f"{TINY_CLIP!r} is random-init only (a plumbing check); give a real CLIP model with weights")
        return _tiny(open_clip, seed)
    _config(open_clip, model)  # refuses unknown names and hub tokenizers
    path = None if weights is None else Path(weights).expanduser()
    if path is not None and not path.is_file():
        raise ClipError(f"CLIP weights {str(weights)!r} is not a file; give the local open_clip checkpoint "
                        "(e.g. open_clip_pytorch_model.bin; docs/clip.md names them)")
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        net = open_clip.create_model(model, pretrained=None if path is None else str(path), pretrained_text=False)
    except Exception as exc:  # noqa: BLE001 - torch, pickle and safetensors raise many types for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClipError(f"{path}: not a checkpoint of CLIP model {model!r} ({first[:200]})") from None
    finally:
        torch.random.set_rng_state(state)
    tokenizer = open_clip.get_tokenizer(model)
    preprocess = getattr(net.visual, "preprocess_cfg", {}) or {}
    size = net.visual.image_size
    description = {"model": model, "weights": None if path is None else str(path), "random_init": random_init,
                   **({"seed": seed} if random_init else {}),
                   **({"weights_sha256": _file_digest(path)} if path is not None and checksum else {})}
    return ClipEncoder(net, tokenizer, description, size[0] if isinstance(size, (tuple, list)) else size,
                       tuple(preprocess.get("mean", _OPENAI_MEAN)), tuple(preprocess.get("std", _OPENAI_STD)))
