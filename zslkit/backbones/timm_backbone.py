"""``timm``: any timm model as a region-feature extractor, with weights from a local file only.

The model is built without weights (``pretrained=False``); the given file -- a state
dict ``.pth``/``.bin`` (read with ``weights_only=True``) or ``.safetensors``, in timm's key
layout, which for ResNets is also torchvision's, or a whole open_clip / OpenAI CLIP checkpoint
whose image tower timm converts (``vit_base_patch16_clip_224`` and the other CLIP towers;
``docs/clip.md``) -- is loaded into it strictly: every
parameter except the classifier head must be in the file, with the right shape.
Nothing is ever downloaded.

The last feature map is ``forward_features`` when that is spatial (CNNs; channels-last
outputs such as Swin's are permuted to ``(B, C, H, W)``), else the patch tokens of the last
block of timm's ``forward_intermediates`` after the model's final norm (vision transformers,
whose patch tokens it reshapes to a grid; the prefix tokens -- CLS, distillation, registers --
are not part of a region map: :meth:`TimmBackbone.forward_with_prefix` gives them beside it, after
the same final norm, and ``zslkit extract`` stores them beside the map; the ``timm_tokens`` backbone
gives them too). Feature stores record this for ViTs (``describe()["features"] == "final_norm"``,
and the store's ``prefix_shape``); ViT features extracted before zslkit applied the final norm lack
the field, and reading them says so (:func:`feature_recipe_note`); those extracted before zslkit
kept the prefix tokens have no ``prefix_shape`` (:func:`prefix_tokens_note`).

ViT-family models are built with timm's ``dynamic_img_size=True`` (unless given), so they read
any image size (448 px through 224 px weights): timm resamples the position embeddings to each
input's grid, as its own ``forward_features`` does. A weights file whose ``pos_embed`` is for another patch grid than the model's (e.g. 224 px
weights for a model built with ``img_size=448``) is resampled to the model's grid with
timm's own ``resample_abs_pos_embed``, as timm does for its pretrained weights.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zslkit.registry import did_you_mean, register

logger = logging.getLogger(__name__)

__all__ = ["FEATURE_RECIPE", "BackboneWeightsError", "TimmBackbone", "feature_recipe_note", "load_weights",
           "prefix_tokens_note"]

#: How the region maps of a ViT-family :class:`TimmBackbone` are made, as its description records it
#: (``features``): the last block's patch tokens after the model's final norm. ViT descriptions without
#: the field come from zslkit before it.
FEATURE_RECIPE = "final_norm"


class BackboneWeightsError(ValueError):
    """No usable weights were given for a pretrained backbone."""


def _check_model_name(model_name: str) -> None:
    import timm

    if not timm.is_model(model_name):
        hint = did_you_mean(model_name, timm.list_models(), cutoff=0.6) or " (see timm.list_models())"
        raise ValueError(f"unknown timm model {model_name!r}{hint}")


def _head_prefixes(model: nn.Module) -> tuple[str, ...]:
    heads = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or ()
    return tuple(f"{h}." for h in ([heads] if isinstance(heads, str) else heads))


def load_weights(model: nn.Module, weights: Path, model_name: str) -> None:
    """Load a local weights file into a full timm model: every tensor but the classifier head must match."""
    from timm.models import load_state_dict

    try:
        state = load_state_dict(str(weights), weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch/safetensors raise many types for bad files
        raise BackboneWeightsError(f"{weights}: cannot read weights ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    state = _from_clip_checkpoint(model, state)
    heads = _head_prefixes(model)
    if isinstance(getattr(model, "norm", None), nn.Identity) and any(k.startswith("norm.") for k in state):
        # a ViT built without its final norm (timm's final_norm=False, as PSVMA runs it): the file's norm is not used
        logger.info("%s: the file's final norm (norm.*) is not used: timm model %r was built with final_norm=False",
                    weights, model_name)
        heads = (*heads, "norm.")
    state = _resample_pos_embed(model, {k: v for k, v in state.items() if not k.startswith(heads)})
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc).splitlines()[0])
        raise BackboneWeightsError(f"{weights}: weights do not fit timm model {model_name!r}: {detail}") from None
    missing = [k for k in result.missing_keys if not k.startswith(heads)]
    if missing or result.unexpected_keys:
        problem = (
            f"lacks {len(missing)} of the {len(model.state_dict())} tensors of timm model {model_name!r} (first: {missing[0]})"
            if missing
            else f"has {len(result.unexpected_keys)} tensors that timm model {model_name!r} does not (first: {result.unexpected_keys[0]})"
        )
        raise BackboneWeightsError(f"{weights}: {problem}; is it a checkpoint of this model?")


def _from_clip_checkpoint(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An open_clip / OpenAI CLIP checkpoint (both towers, image tower under ``visual.``) as the timm image
    tower's keys, by timm's own conversion (the ``checkpoint_filter_fn`` of the model's module: CLIP ViTs
    and ResNets); any other state as it is."""
    if not any(k.startswith(("visual.", "module.visual.")) for k in state):
        return state
    import importlib

    convert = getattr(importlib.import_module(type(model).__module__), "checkpoint_filter_fn", None)
    if convert is None:
        raise BackboneWeightsError(f"a CLIP checkpoint (keys visual.*) does not convert to timm's {type(model).__name__}; "
                               "give a CLIP tower (vit_*_clip_*, resnet*_clip) or weights in timm's layout")
    return convert(state, model)


def _resample_pos_embed(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with a ``pos_embed`` of another (square) patch grid resampled to the model's (timm's resampling)."""
    ours, theirs = getattr(model, "pos_embed", None), state.get("pos_embed")
    if not isinstance(ours, torch.Tensor) or theirs is None or theirs.shape == ours.shape or theirs.ndim != 3:
        return state
    from timm.layers import resample_abs_pos_embed

    prefix = 0 if getattr(model, "no_embed_class", False) else int(getattr(model, "num_prefix_tokens", 0))
    grid = list(model.patch_embed.grid_size)
    return {**state, "pos_embed": resample_abs_pos_embed(theirs, new_size=grid, num_prefix_tokens=prefix)}


def _is_token_model(model: nn.Module) -> bool:
    """Whether a timm model is a ViT-family model: patch tokens after ``num_prefix_tokens`` prefix tokens."""
    return hasattr(model, "num_prefix_tokens") and hasattr(model, "blocks") and hasattr(model, "patch_embed")


def _meta_model(model_name: str) -> nn.Module:
    import timm

    with torch.device("meta"):
        return timm.create_model(model_name, pretrained=False)


def is_token_model(model_name: str) -> bool:
    """Whether timm model ``model_name`` is a ViT-family model (built on the meta device to tell)."""
    return _is_token_model(_meta_model(model_name))


def _resizable(model_name: str) -> bool:
    """Whether ``model_name`` is a ViT-family model whose timm class takes ``dynamic_img_size``."""
    import inspect

    model = _meta_model(model_name)
    return _is_token_model(model) and "dynamic_img_size" in inspect.signature(type(model).__init__).parameters


def feature_recipe_note(described: dict[str, Any]) -> str | None:
    """What is wrong with region features a backbone ``described`` (its ``describe()``) made, or ``None``.

    ViT features from zslkit before the final norm was applied (no ``features`` field) are named;
    CNN maps were always made as today and record no field.
    """
    if described.get("name") != "timm" or "features" in described or not isinstance(described.get("model"), str):
        return None
    try:
        token_model = is_token_model(described["model"])
    except Exception:  # noqa: BLE001 - an unknown or since-renamed timm model: nothing to tell
        return None
    if not token_model:
        return None
    return (f"region features of ViT {described['model']!r} extracted before zslkit applied the model's final norm "
            "(patch tokens of the last block without its LayerNorm, CLS dropped); re-extract them to get the "
            "normalised tokens")


def prefix_tokens_note(described: dict[str, Any]) -> str:
    """Why region features a backbone ``described`` (its ``describe()``) made come without prefix (CLS) tokens."""
    model = described.get("model")
    if described.get("name") == "timm" and isinstance(model, str):
        try:
            token_model = is_token_model(model)
        except Exception:  # noqa: BLE001 - an unknown or since-renamed timm model
            token_model = None
        if token_model is False:
            return f"timm model {model!r} is not a ViT-family model: its maps have no prefix tokens"
        if token_model and "features" not in described:
            return (f"ViT {model!r} features extracted before zslkit applied the final norm and kept the CLS token; "
                    "re-extract them with `zslkit extract`")
        if token_model:
            return f"ViT {model!r} features extracted before zslkit kept the CLS token; re-extract them with `zslkit extract`"
    return "its backbone gave none; extract with a ViT-family timm backbone to get them"


@register("backbone", "timm")
class TimmBackbone(nn.Module):
    """Images ``(B, 3, S, S)`` -> last feature map ``(B, C, H, W)`` of a timm model.

    Args:
        model_name: any timm model name (``"resnet101"``, ``"convnext_tiny"``, ...).
        weights: local weights file (state dict ``.pth``/``.bin`` or ``.safetensors``).
        random_init: build with random weights instead (tests and smoke runs only).
        **model_kwargs: passed to ``timm.create_model`` (e.g. ``drop_path_rate``).

    Attributes:
        feature_dim: channels ``C`` of the feature map.
    """

    def __init__(self, model_name: str = "resnet101", *, weights: str | Path | None = None, random_init: bool = False, **model_kwargs: Any) -> None:
        import timm

        super().__init__()
        _check_model_name(model_name)
        if weights is None and not random_init:
            raise BackboneWeightsError(
                f"timm backbone {model_name!r}: no weights given; pass weights=PATH to a local .pth/.safetensors file "
                "(zslkit downloads nothing) or random_init=True for random features"
            )
        if weights is not None and random_init:
            raise ValueError("give either weights or random_init=True, not both")
        if weights is not None:
            weights = Path(weights).expanduser().resolve()
            if not weights.is_file():
                raise BackboneWeightsError(f"{weights}: weights file not found")
        self.model_name = model_name
        self.weights = weights
        if "dynamic_img_size" not in model_kwargs and _resizable(model_name):
            model_kwargs["dynamic_img_size"] = True  # a ViT reads any image size: timm resamples its position embeddings
        self.model = timm.create_model(model_name, pretrained=False, **model_kwargs)
        if weights is not None:
            load_weights(self.model, weights, model_name)
        #: ViT-family: the map is the patch tokens after the final norm (recorded by describe())
        self.token_model = _is_token_model(self.model)
        self.channels_last = getattr(self.model, "output_fmt", "NCHW") == "NHWC"
        self.spatial_features: bool | None = None  # does forward_features give a map? Found on first call.
        info = getattr(self.model, "feature_info", None)
        self.feature_dim = int(info[-1]["num_chs"]) if info else int(self.model.num_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` normalised images -> ``(B, C, H, W)`` feature map."""
        if self.spatial_features is not False:
            out = self.model.forward_features(images)
            if self.spatial_features is None:
                self.spatial_features = out.ndim == 4
            if self.spatial_features:
                return out.permute(0, 3, 1, 2) if self.channels_last else out
        if not hasattr(self.model, "forward_intermediates"):
            raise RuntimeError(f"timm model {self.model_name!r} gives no spatial feature map (no forward_intermediates)")
        return self.model.forward_intermediates(images, indices=1, intermediates_only=True, norm=True)[-1]

    def forward_with_prefix(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(map (B, C, H, W), prefix (B, P, C))``: a ViT's patch map (as :meth:`forward`) and its prefix tokens
        (CLS, distillation, registers) after the same final norm -- timm's ``forward_features`` split at ``P``.
        ``prefix`` is ``None`` for models without prefix tokens (CNNs, ViTs built without a class token)."""
        if not self.token_model or not int(self.model.num_prefix_tokens):
            return self(images), None
        maps, prefix = self.model.forward_intermediates(images, indices=1, intermediates_only=True, norm=True,
                                                        return_prefix_tokens=True)[-1]
        return maps, prefix

    def data_config(self) -> dict[str, Any]:
        """timm's preprocessing config of the model (mean, std, interpolation, crop_pct...)."""
        import timm.data

        return timm.data.resolve_model_data_config(self.model)

    @torch.no_grad()
    def feature_shape(self, image_size: int) -> tuple[int, int, int]:
        """``(C, H, W)`` of the feature map of one ``image_size`` x ``image_size`` image."""
        was_training = self.training
        self.eval()
        parameter = next(self.parameters(), None)
        device = parameter.device if parameter is not None else "cpu"
        shape = self(torch.zeros(1, 3, image_size, image_size, device=device)).shape[1:]
        self.train(was_training)
        return tuple(int(s) for s in shape)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (model name, weights file) for store metadata."""
        described = {"name": "timm", "model": self.model_name, "weights": None if self.weights is None else str(self.weights)}
        return {**described, "features": FEATURE_RECIPE} if self.token_model else described
