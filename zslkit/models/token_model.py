"""Models that own their backbone: a timm ViT read as tokens, adapters inside it, attention branches on its patches.

:class:`TokenAttentionModel` is an :class:`~zslkit.models.attention_model.AttentionZSLModel`
whose forward takes images ``(B, 3, S, S)``:

1. the ``timm_tokens`` backbone (:class:`~zslkit.backbones.vit_tokens.TimmTokens`, built from
   ``timm_model``, ``backbone_weights`` and ``backbone_options``) runs with the model's
   ``adapters`` (:mod:`zslkit.adapters`) at their places, handed the attribute embeddings
   ``V`` and, in training, the batch's ``labels``; it returns the prefix and patch tokens
   after the final norm;
2. the patch tokens ``(B, D, N)`` are the region features of the branches (steps 1-4 of
   :class:`AttentionZSLModel`, with ``D`` the token width); while every patch token still
   stands for its own patch the branches see the grid, otherwise ``grid=None``;
3. every branch's maps ``(B, I, N)`` are put back on the input patch grid ``(B, I, H*W)``
   (:func:`~zslkit.adapters.scatter_to_grid`: dropped patches 0, merged tokens left out), and
   ``output.grid`` is ``(H, W)``; ``output.global_token`` is the CLS token ``(B, D)`` (also handed to
   branches that take a ``global_token``); what adapters record (``TokenState.extras``) is in
   ``output.extras[entry]``. The adapters' context carries the class space's attribute rows. An adapter entry that
   recorded ``maps`` ``(B, I, N)`` and ``scores`` ``(B, I)`` also appears in ``output.maps`` and
   ``output.attribute_scores`` under its entry name (maps on the input grid; not in ``branch_scores``).

Checkpoints rebuild it from their JSON and tensors alone: :attr:`rebuild_options` builds the
backbone with random weights, which the stored state then replaces (no weights file needed);
the rebuilt model's ``options`` still name the weights it was first built from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from einops import rearrange
from numpy.typing import ArrayLike

from zslkit.adapters.plan import AdapterPlan, parse_adapter_specs
from zslkit.adapters.tokens import AdapterContext, scatter_to_grid
from zslkit.models.attention_model import AttentionZSLModel
from zslkit.models.output import ModelOutput
from zslkit.ops import normalize_regions
from zslkit.ops.recompute import recompute_saved, recomputed
from zslkit.registry import create

__all__ = ["TokenAttentionModel"]


class TokenAttentionModel(AttentionZSLModel):
    """Attention branches over the patch tokens of a timm ViT the model owns, with adapters inside it.

    Args:
        class_attributes: as in :class:`AttentionZSLModel`, and so are ``attribute_embeddings``,
            ``seen_classes`` and ``unseen_classes``.
        feature_dim: channels of the images the model reads (3; what ``feature_dim`` means for a
            model that owns its backbone: the trainer passes the channels of its inputs).
        timm_model: timm ViT-family model name; ``None``: the class's ``default_timm_model``.
        backbone_weights: local weights file of ``timm_model`` (nothing is downloaded).
        backbone_random_init: random backbone weights instead (tests and smoke runs).
        backbone_options: more options of the ``timm_tokens`` backbone (``img_size``,
            ``drop_path_rate``, ...); ``None``: the class's ``default_backbone_options``.
        adapters: name -> adapter spec (:mod:`zslkit.adapters.plan`); ``None``: ``default_adapters``.
        recompute_mlp_blocks: with ``recompute_activations``, how many of the first blocks (all, when the ViT has
            fewer) keep nothing of their MLP for backward (``fc1`` reruns there: one more product a block for ``8 D``
            floats a token less; values and gradients unchanged): a number for every pass of the ViT, or a list
            with one number per pass of ``backbone_passes`` (svip: ``[source, target]``);
            ``None``: ``default_recompute_mlp_blocks``.
        **options: every other option of :class:`AttentionZSLModel` (``branches``, ``losses``, ...);
            ``normalize_features`` defaults to ``False`` here (``default_options``: the tokens are already normalised).
    """

    default_timm_model: ClassVar[str | None] = None
    default_backbone_options: ClassVar[dict[str, Any]] = {}
    default_adapters: ClassVar[dict[str, Any]] = {}
    #: the tokens come out of the backbone's final norm: not normalised again by default
    default_options: ClassVar[dict[str, Any]] = {"normalize_features": False}
    #: the ViT's blocks keep less for backward (:meth:`forward`); ``recompute_activations=False`` turns it off
    default_recompute_activations: ClassVar[bool] = True
    #: with ``recompute_activations``, the first this many blocks also rerun their MLP's first product in backward
    #: instead of keeping its output (``recompute_mlp_blocks``; :mod:`zslkit.ops.mlp_recompute`)
    default_recompute_mlp_blocks: ClassVar[int | list[int]] = 0
    #: the passes of the ViT a training forward runs, in order (``recompute_mlp_blocks`` may give one count each)
    backbone_passes: ClassVar[tuple[str, ...]] = ("tokens",)
    #: Options a checkpoint rebuilds the model with instead of the recorded ones: its stored state holds the
    #: fine-tuned backbone, so no weights file is read (see :func:`zslkit.training.checkpoint.build_model`).
    rebuild_options: ClassVar[dict[str, Any]] = {"backbone_weights": None, "backbone_random_init": True}

    def __init__(
        self,
        class_attributes: ArrayLike,
        attribute_embeddings: ArrayLike | None = None,
        seen_classes: ArrayLike | None = None,
        unseen_classes: ArrayLike | None = None,
        feature_dim: int = 3,
        timm_model: str | None = None,
        backbone_weights: str | Path | None = None,
        backbone_random_init: bool = False,
        backbone_options: Mapping[str, Any] | None = None,
        adapters: Mapping[str, Any] | None = None,
        recompute_mlp_blocks: int | Sequence[int] | None = None,
        **options: Any,
    ):
        defaults = self.option_defaults()
        timm_model = timm_model or defaults["timm_model"]
        if not isinstance(timm_model, str):
            raise ValueError(f"{type(self).__name__}: give timm_model, the timm ViT-family model it owns (e.g. "
                             "'vit_base_patch16_224'), with backbone_weights=PATH")
        backbone_options = dict(defaults["backbone_options"] if backbone_options is None else backbone_options)
        backbone = create("backbone", "timm_tokens", model_name=timm_model, weights=backbone_weights,
                          random_init=backbone_random_init, **backbone_options)
        channels = int(backbone.model.patch_embed.proj.in_channels)
        if int(feature_dim) != channels:
            raise ValueError(f"{type(self).__name__} reads {channels}-channel images (B, {channels}, S, S), got "
                             f"feature_dim={feature_dim}: train it on the images, not on region features")
        super().__init__(class_attributes, attribute_embeddings, seen_classes, unseen_classes,
                         feature_dim=backbone.feature_dim, **options)
        self.backbone = backbone
        recompute_mlp_blocks = defaults["recompute_mlp_blocks"] if recompute_mlp_blocks is None else recompute_mlp_blocks
        #: pass name -> how many of its first blocks rerun their MLP's first product in backward
        self.recompute_mlp_blocks = self._per_pass(recompute_mlp_blocks)
        self.token_dim, self.feature_dim = backbone.feature_dim, channels
        specs = parse_adapter_specs(defaults["adapters"] if adapters is None else adapters, backbone.depth)
        self.adapters = AdapterPlan(specs, token_dim=backbone.feature_dim, embedding_dim=self.embedding_dim,
                                    num_attributes=self.num_attributes)
        backbone.check_adapters(self.adapters)
        clash = sorted(set(self.adapters.by_entry) & set(self.branches))
        if clash:
            raise ValueError(f"{type(self).__name__}: adapter entry {clash[0]!r} is also a branch name; the extras an "
                             "adapter records go to ModelOutput.extras[entry]: rename one of them")
        self.options.update(
            feature_dim=channels, timm_model=timm_model,
            backbone_weights=None if backbone_weights is None else str(backbone.weights),
            backbone_random_init=bool(backbone_random_init), backbone_options=backbone_options,
            adapters={s.entry: s.to_spec() for s in specs},
            recompute_mlp_blocks=recompute_mlp_blocks if isinstance(recompute_mlp_blocks, int) else list(recompute_mlp_blocks),
        )

    def _per_pass(self, counts: Any) -> dict[str, int]:
        """``recompute_mlp_blocks`` (one count, or one per pass) -> ``{pass: count}``; an error naming what to give."""
        passes = self.backbone_passes
        values = [counts] * len(passes) if isinstance(counts, int) and not isinstance(counts, bool) else counts
        valid = isinstance(values, (list, tuple)) and len(values) == len(passes)
        if not valid or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
            raise ValueError(f"{type(self).__name__}: recompute_mlp_blocks must be a number of blocks (0 for none)"
                             + (f" or a list of {len(passes)}, one per pass {list(passes)}" if len(passes) > 1 else "")
                             + f", got {counts!r}")
        return dict(zip(passes, (int(v) for v in values)))

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        """:meth:`AttentionZSLModel.option_defaults` and ``timm_model``, ``backbone_options``, ``adapters``,
        ``recompute_mlp_blocks``."""
        return {**super().option_defaults(), "timm_model": cls.default_timm_model,
                "backbone_options": cls.default_backbone_options, "adapters": cls.default_adapters,
                "recompute_mlp_blocks": cls.default_recompute_mlp_blocks}

    @classmethod
    def image_reader(cls, model_options: Mapping[str, Any]) -> torch.nn.Module:
        """A random-weights ``timm_tokens`` backbone of the architecture ``model_options`` name (else the class's
        defaults): what preprocesses the images before the model is built (its ``data_config()``)."""
        given, defaults = model_options.get("backbone_options"), cls.option_defaults()
        options = dict(defaults["backbone_options"] if given is None else given)
        name = model_options.get("timm_model") or defaults["timm_model"]
        return create("backbone", "timm_tokens", model_name=name, random_init=True, **options)

    @property
    def image_backbone(self) -> torch.nn.Module:
        """The backbone the model reads images through (``viz`` and ``zslkit eval`` take its preprocessing)."""
        return self.backbone

    @property
    def branch_feature_dim(self) -> int:
        """Channels the branches see: the encoder's ``output_dim``, else the token width ``D``."""
        if self.encoder is not None:
            return int(self.encoder.output_dim)
        return getattr(self, "token_dim", None) or self.feature_dim  # while the base class builds: feature_dim is D

    def prepare_features(self, features: torch.Tensor) -> torch.Tensor:
        """Patch tokens ``(B, D, H, W)`` (on the grid) or ``(B, D, N)`` -> ``(B, D, N)`` in the model's dtype,
        normalised per token if ``normalize_features``."""
        if features.ndim == 4:
            features = rearrange(features, "batch dim height width -> batch dim (height width)")
        features = features.to(dtype=self.V.dtype, device=self.V.device)
        if not self.normalize_features:
            return features
        return recomputed(normalize_regions, features)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> ModelOutput:
        """Score images ``(B, 3, S, S)``; ``labels`` ``(B,)`` (training) go to the adapters. See the module docstring.

        With ``recompute_activations`` (the default here) the forward runs inside
        :func:`~zslkit.ops.recompute.recompute_saved`: the ViT's blocks keep for backward only what
        backward cannot rebuild cheaply (:mod:`zslkit.backbones.adapted_block`); values and gradients unchanged."""
        if not self.recompute_activations:
            return self.score_images(images, labels)
        with recompute_saved():
            return self.score_images(images, labels)

    def score_images(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> ModelOutput:
        """The forward itself (:meth:`forward` runs it inside or outside ``recompute_saved``)."""
        if images.ndim != 4 or images.shape[1] != self.feature_dim:
            raise ValueError(f"{type(self).__name__} reads images (B, {self.feature_dim}, S, S); found shape {tuple(images.shape)}")
        context = AdapterContext(self.attribute_embeddings(), labels, self.classes.attributes)
        state = self.backbone(images.to(dtype=self.V.dtype, device=self.V.device), self.adapters, context,
                              recompute_mlp_blocks=self.recompute_mlp_blocks[self.backbone_passes[0]])
        grid = state.grid
        if state.source is None:  # every token its own patch: the branches see them on the grid
            features = rearrange(state.patches, "batch (height width) dim -> batch dim height width", height=grid[0])
        else:
            features = rearrange(state.patches, "batch token dim -> batch dim token")
        cls = state.prefix[:, 0] if state.num_prefix else None
        output = super().forward(features, cls)
        cells = grid[0] * grid[1]
        maps = {name: None if m is None else scatter_to_grid(m, state.source, cells) for name, m in output.maps.items()}
        output = dataclasses.replace(output, maps=maps, grid=grid, global_token=cls, extras={**output.extras, **state.extras})
        return self._with_adapter_maps(output, state.extras, state.source, cells)

    def _with_adapter_maps(self, output: ModelOutput, extras: dict, source: torch.Tensor | None, cells: int) -> ModelOutput:
        """``output`` with each adapter entry's recorded ``maps`` ``(B, I, N)`` / ``scores`` ``(B, I)`` as ``maps[entry]``
        (on the input grid) / ``attribute_scores[entry]``."""
        found = {entry: r for entry, r in extras.items() if "maps" in r and "scores" in r}
        if not found:
            return output
        maps = {**output.maps, **{e: scatter_to_grid(r["maps"], source, cells) for e, r in found.items()}}
        return dataclasses.replace(output, maps=maps, attribute_scores={**output.attribute_scores,
                                                                        **{e: r["scores"] for e, r in found.items()}})
