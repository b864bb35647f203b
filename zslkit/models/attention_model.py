"""A ZSL model assembled from registered parts: attention branches, a class space, loss terms.

``forward(features)`` with region features ``x`` ``(B, C, H, W)`` or ``(B, C, R)``:

1. ``f_{b,r} = x_{b,:,r} / ||x_{b,:,r}||_2`` (unit length over channels, per region);
   with an ``encoder`` (kind ``encoder``), ``f <- encoder(f, grid)`` ``(B, C', R)``, once,
   shared by every branch;
2. every branch (an attention block) maps ``f`` and the attribute embeddings ``V``
   ``(I, D)`` to attribute scores ``psi`` ``(B, I)`` (a block whose ``forward`` has a
   ``grid`` parameter also gets the grid ``(H, W)``, ``None`` for ``(B, C, R)`` input; one with a
   ``global_token`` parameter the ``global_token`` given to ``forward``, ``None`` by default);
3. class scores of a branch ``y_{b,k} = sum_i r(A)_{k,i} psi_{b,i} + m_k``, by the model's
   scorer (kind ``scorer``, :mod:`zslkit.scorers`): its rows ``r(A)`` of the class-attribute
   matrix (``unit_rows`` by default) and the margin ``m`` of the :class:`ClassSpace`;
4. prediction ``scores = sum_branches weight * y`` (a scorer with ``probabilities=True``:
   ``sum_branches weight * softmax_k(y)`` over the seen and unseen classes).

``loss(output, labels)`` sums the weighted loss terms. :class:`~zslkit.models.msdn.MSDN`
and :class:`~zslkit.models.dazle.DAZLE` are this class with other defaults.

A subclass changes defaults with class attributes, never by overriding ``__init__``:
``default_branches``, ``default_losses``, ``default_encoder``, ``default_recompute_activations``
and ``default_options`` (the other options: ``scorer``, ``train_embeddings``,
``normalize_features``, ``unit_embeddings``). ``inspect.signature(cls)`` shows the class's
defaults, and the registry's did-you-mean covers every option.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from numpy.typing import ArrayLike
from torch import nn

from zslkit.attention.encoder_spec import build_encoder, parse_encoder_spec
from zslkit.contracts import (
    check_attention_output,
    check_encoder_output,
    check_loss_needs,
    check_loss_output,
    describe_component,
)
from zslkit.models.class_space import ClassSpace, MissingAttributeGroupsError
from zslkit.models.output import ModelOutput
from zslkit.models.parts import parse_parts
from zslkit.ops import normalize_regions
from zslkit.ops.recompute import recompute_saved, recomputed
from zslkit.registry import create, did_you_mean
from zslkit.scorers.base import build_scorer, parse_scorer_spec

__all__ = ["AttentionZSLModel"]

#: Options whose defaults come from their own class attribute (``default_<option>``), not from ``default_options``.
_CLASS_DEFAULTS: tuple[str, ...] = ("branches", "losses", "encoder", "recompute_activations")


class _ClassSignature:
    """``cls.__signature__``: the constructor's signature with the class's defaults (absent on instances, so that
    ``inspect.signature(model)`` still describes calling the model)."""

    def __get__(self, instance: Any, owner: type) -> inspect.Signature:
        if instance is not None:
            raise AttributeError("__signature__")
        return owner.signature()


class AttentionZSLModel(nn.Module):
    """Attention branches over region features, scored through class attributes.

    Args:
        class_attributes: ``(K, I)`` class-attribute matrix; rows are scaled to unit length.
        attribute_embeddings: ``(I, D)`` attribute word vectors, the initial ``V``
            (rows scaled to unit length). ``None``: ``V ~ N(0, 1)`` of width ``embedding_dim``.
        seen_classes: indices of the training classes.
        unseen_classes: indices of the unseen classes (default: all others).
        feature_dim: ``C``, channels of the region features.
        branches: branch name -> attention spec (see :mod:`zslkit.models.parts`);
            ``None``: the class's ``default_branches``.
        losses: loss entry name -> loss spec or weight; ``None``: ``default_losses``.
        scorer: the class scorer: a registered ``scorer`` name or ``{"scorer": name, **options}``
            (e.g. ``{"scorer": "unit_rows", "margin": 1.0}``: unit-length class-attribute rows,
            margin 1; :mod:`zslkit.scorers`).
        embedding_dim: ``D`` when ``attribute_embeddings`` is ``None``.
        train_embeddings: train ``V`` (the paper does).
        normalize_embeddings: rescale the rows of ``V`` to unit length at every forward
            (the authors' AWA2 setting); otherwise only at init.
        normalize_features: L2-normalise every region feature over channels.
        attribute_groups: group name -> attribute indices (``dataset.attribute_groups``), for
            loss terms that need them (``needs_attribute_groups``); kept in ``classes``.
        unit_embeddings: scale the given rows of ``V`` to unit length at init (GEM-ZSL keeps
            its raw word vectors: ``False``).
        encoder: a feature encoder between the normalised features and every branch:
            ``None``, a registered encoder name, or ``{"encoder": name, **options}``; built as
            ``factory(feature_dim=C, **options)``, the branches then see ``encoder.output_dim``
            channels. ``None`` means the class's ``default_encoder``.
        recompute_activations: run the forward inside
            :func:`zslkit.ops.recompute.recompute_saved` (less memory, a little more time;
            the values are the same); ``None``: the class's ``default_recompute_activations``.

    ``scorer``, ``train_embeddings``, ``normalize_features`` and ``unit_embeddings`` given as
    ``None`` (or not given) take the class's ``default_options``.
    """

    #: Defaults of the options that have no ``default_<option>`` attribute, merged over the bases' (a subclass
    #: lists only what it changes, e.g. APN's ``{"scorer": "raw_rows", "normalize_features": False}``).
    default_options: ClassVar[dict[str, Any]] = {
        "scorer": {"scorer": "unit_rows", "margin": 1.0},
        "train_embeddings": True,
        "normalize_features": True,
        "unit_embeddings": True,
    }
    __signature__ = _ClassSignature()

    default_branches: ClassVar[dict[str, Any]] = {}
    default_losses: ClassVar[dict[str, Any]] = {}
    #: The encoder spec used when ``encoder=None`` (none for MSDN and DAZLE; TransZero's geometry encoder).
    default_encoder: ClassVar[str | dict[str, Any] | None] = None
    #: The ``recompute_activations`` used when it is ``None``: whether the forward runs inside
    #: :func:`zslkit.ops.recompute.recompute_saved`, where tensors its parts mark are kept for backward as recipes and recomputed there (less memory, a little
    #: more time). On for TransZero and TransZero++, whose transformer blocks mark LayerNorm
    #: outputs and dropout masks; off for MSDN, whose fused op would recompute the normalised
    #: features once per branch for no memory saved (``docs/performance.md``).
    default_recompute_activations: ClassVar[bool] = False

    def save_pretrained(self, directory, card=None):
        """Write this model to ``directory`` as a shareable folder (``config.json``, ``model.safetensors``,
        ``README.md`` model card): :func:`zslkit.model_folder.save_pretrained`; ``zslkit.from_pretrained`` reads it."""
        from zslkit.model_folder import save_pretrained

        return save_pretrained(self, directory, card)

    def __init__(
        self,
        class_attributes: ArrayLike,
        attribute_embeddings: ArrayLike | None = None,
        seen_classes: ArrayLike | None = None,
        unseen_classes: ArrayLike | None = None,
        feature_dim: int = 2048,
        branches: Mapping[str, Any] | None = None,
        losses: Mapping[str, Any] | None = None,
        scorer: str | Mapping[str, Any] | None = None,
        embedding_dim: int = 300,
        train_embeddings: bool | None = None,
        normalize_embeddings: bool = False,
        normalize_features: bool | None = None,
        attribute_groups: Mapping[str, Any] | None = None,
        unit_embeddings: bool | None = None,
        encoder: str | Mapping[str, Any] | None = None,
        recompute_activations: bool | None = None,
    ):
        super().__init__()
        defaults = self.option_defaults()
        self.recompute_activations = defaults["recompute_activations"] if recompute_activations is None else bool(recompute_activations)
        scorer_spec = parse_scorer_spec(defaults["scorer"] if scorer is None else scorer)
        train_embeddings = defaults["train_embeddings"] if train_embeddings is None else train_embeddings
        normalize_features = defaults["normalize_features"] if normalize_features is None else normalize_features
        unit_embeddings = defaults["unit_embeddings"] if unit_embeddings is None else unit_embeddings
        if seen_classes is None:
            raise ValueError("seen_classes is required: the indices of the training classes")
        self.scorer = build_scorer(scorer_spec)
        self.classes = ClassSpace(
            class_attributes, seen_classes, unseen_classes, margin=self.scorer.margin, normalize=self.scorer.unit_rows,
            attribute_groups=attribute_groups,
        )
        num_attributes = self.classes.num_attributes
        if attribute_embeddings is None:
            embeddings = torch.randn(num_attributes, embedding_dim)
        else:
            embeddings = torch.as_tensor(np.asarray(attribute_embeddings), dtype=torch.float32)
            if embeddings.ndim != 2 or embeddings.shape[0] != num_attributes:
                raise ValueError(
                    f"attribute_embeddings must be ({num_attributes}, D) to match class_attributes "
                    f"({self.classes.num_classes}, {num_attributes}); found shape {tuple(embeddings.shape)}"
                )
            embeddings = F.normalize(embeddings, dim=1) if unit_embeddings else embeddings
        self.V = nn.Parameter(embeddings, requires_grad=train_embeddings)
        self.feature_dim = int(feature_dim)
        self.normalize_embeddings = normalize_embeddings
        self.normalize_features = normalize_features

        encoder_spec = parse_encoder_spec(defaults["encoder"] if encoder is None else encoder)
        self.encoder = build_encoder(encoder_spec, self.feature_dim)
        branch_parts = parse_parts(defaults["branches"] if branches is None else branches, key="attention", option="branches")
        loss_parts = parse_parts(defaults["losses"] if losses is None else losses, key="loss", option="losses")
        block_shape = {"feature_dim": self.branch_feature_dim, "embedding_dim": self.embedding_dim, "num_attributes": num_attributes}
        self.branches = nn.ModuleDict({p.entry: create("attention", p.component, **block_shape, **p.options) for p in branch_parts})
        self.branch_weights = {p.entry: p.weight for p in branch_parts}
        #: branches whose block's ``forward`` takes the region grid (a parameter named ``grid``)
        self._grid_branches = {name for name, block in self.branches.items() if "grid" in inspect.signature(block.forward).parameters}
        #: branches whose block's ``forward`` takes the global (CLS) token (a parameter named ``global_token``)
        self._global_branches = {name for name, block in self.branches.items()
                                 if "global_token" in inspect.signature(block.forward).parameters}
        self.loss_terms = nn.ModuleDict({p.entry: create("loss", p.component, **p.options) for p in loss_parts})
        self.loss_weights = {p.entry: p.weight for p in loss_parts}
        #: entry -> (registered name, origin) of each branch, loss term and the encoder, for contract errors.
        self._sources = {
            **{("attention", p.entry): (p.component, f"branch {p.entry!r}, {describe_component('attention', p.component)}") for p in branch_parts},
            **{("loss", p.entry): (p.component, f"term {p.entry!r}, {describe_component('loss', p.component)}") for p in loss_parts},
        }
        self._check_attribute_groups(loss_parts)
        if encoder_spec is not None:
            self._sources[("encoder", "encoder")] = (encoder_spec["encoder"], describe_component("encoder", encoder_spec["encoder"]))
        for name, term in self.loss_terms.items():
            component, source = self._sources[("loss", name)]
            check_loss_needs(term, self.branches, name=component, source=source)  # what can be told before a forward
        #: The options that rebuild this model (JSON-friendly), without the data arrays.
        self.options = {
            "feature_dim": self.feature_dim,
            "branches": {p.entry: p.to_spec("attention") for p in branch_parts},
            "losses": {p.entry: p.to_spec("loss") for p in loss_parts},
            "scorer": scorer_spec,
            "embedding_dim": self.embedding_dim,
            "train_embeddings": train_embeddings,
            "normalize_embeddings": normalize_embeddings,
            "normalize_features": normalize_features,
            "attribute_groups": None if self.classes.attribute_groups is None else {k: list(v) for k, v in self.classes.attribute_groups.items()},
            "unit_embeddings": unit_embeddings,
            "encoder": encoder_spec,
        }

    # --------------------------------------------------------------- defaults
    def __init_subclass__(cls, **kwargs: Any):
        """Refuse, when the class is defined, a ``default_options`` key that is no such option (naming the nearest)."""
        super().__init_subclass__(**kwargs)
        known = list(AttentionZSLModel.default_options)
        for key in vars(cls).get("default_options", {}):
            if key in _CLASS_DEFAULTS:
                raise TypeError(f"{cls.__qualname__}.default_options: set {key!r} with default_{key} instead")
            if key not in known:
                raise TypeError(f"{cls.__qualname__}.default_options: no option {key!r} takes its default from there"
                                f"{did_you_mean(key, known) or '; those that do: ' + ', '.join(known)}")

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        """The defaults this class gives the options that are ``None`` in ``__init__``'s signature:
        ``default_options`` (merged along the bases, the nearest class winning) and ``default_branches``,
        ``default_losses``, ``default_encoder``, ``default_recompute_activations``."""
        merged: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            merged.update(vars(klass).get("default_options", {}))
        return {**merged, "branches": cls.default_branches, "losses": cls.default_losses, "encoder": cls.default_encoder,
                "recompute_activations": cls.default_recompute_activations}

    @classmethod
    def signature(cls) -> inspect.Signature:
        """``__init__``'s signature without ``self``, each class default (:meth:`option_defaults`) in place of ``None``
        (what ``inspect.signature(cls)`` returns)."""
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
        defaults = cls.option_defaults()
        return inspect.Signature(
            [p.replace(default=defaults[p.name]) if p.name in defaults and p.default is None else p for p in parameters]
        )

    def _check_attribute_groups(self, loss_parts) -> None:
        """Refuse a loss term that needs attribute groups when none were given."""
        if self.classes.attribute_groups is not None:
            return
        for part in loss_parts:
            if getattr(self.loss_terms[part.entry], "needs_attribute_groups", False):
                _, source = self._sources[("loss", part.entry)]
                raise MissingAttributeGroupsError(
                    f"loss {source} needs attribute groups and the model has none: pass attribute_groups= "
                    "(datasets give them as dataset.attribute_groups)",
                    term=part.entry,
                )

    # ------------------------------------------------------------------ sizes
    @property
    def embedding_dim(self) -> int:
        return int(self.V.shape[1])

    @property
    def branch_feature_dim(self) -> int:
        """Channels the branches see: the encoder's ``output_dim``, else ``feature_dim``."""
        return self.feature_dim if self.encoder is None else int(self.encoder.output_dim)

    @property
    def num_classes(self) -> int:
        return self.classes.num_classes

    @property
    def num_attributes(self) -> int:
        return self.classes.num_attributes

    @property
    def needs_maps(self) -> bool:
        """Whether a loss term reads the attention maps (a term says so with ``needs_maps = True``)."""
        return any(getattr(term, "needs_maps", False) for term in self.loss_terms.values())

    # ---------------------------------------------------------------- forward
    def prepare_features(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` or ``(B, C, R)`` -> ``(B, C, R)`` in the model's dtype, normalised per region."""
        if features.ndim == 4:
            features = rearrange(features, "batch channel height width -> batch channel (height width)")
        elif features.ndim != 3:
            raise ValueError(f"features must be (B, C, H, W) or (B, C, R), found shape {tuple(features.shape)}")
        if features.shape[1] != self.feature_dim:
            raise ValueError(
                f"features have {features.shape[1]} channels, the model was built with feature_dim={self.feature_dim}"
            )
        features = features.to(dtype=self.V.dtype, device=self.V.device)
        if not self.normalize_features:
            return features
        return recomputed(normalize_regions, features)

    def attribute_embeddings(self) -> torch.Tensor:
        """``(I, D)`` the embeddings the branches see: ``V``, row-normalised if ``normalize_embeddings``."""
        return F.normalize(self.V, dim=1) if self.normalize_embeddings else self.V

    def class_scores(self, attribute_scores: torch.Tensor) -> torch.Tensor:
        """``(B, I) -> (B, K)``: ``y = psi r(A)^T + m``, by the model's scorer."""
        return self.scorer.class_scores(attribute_scores, self.classes)

    def encode(self, f: torch.Tensor, grid: tuple[int, int] | None) -> torch.Tensor:
        """The shared encoder on the normalised features ``(B, C, R) -> (B, C', R)`` (identity without one)."""
        if self.encoder is None:
            return f
        encoded = self.encoder(f, grid)
        component, source = self._sources[("encoder", "encoder")]
        check_encoder_output(encoded, batch=f.shape[0], channels=self.branch_feature_dim, regions=f.shape[2], name=component, source=source)
        return encoded

    def forward(self, features: torch.Tensor, global_token: torch.Tensor | None = None) -> ModelOutput:
        """Score ``features`` ``(B, C, H, W)`` or ``(B, C, R)``; returns a :class:`ModelOutput`.

        ``global_token`` ``(B, D)``: the global (CLS) token of a token backbone, for branches that take one."""
        grid = (int(features.shape[2]), int(features.shape[3])) if features.ndim == 4 else None
        if not self.recompute_activations:
            return self._forward(features, grid, global_token)
        with recompute_saved():
            return self._forward(features, grid, global_token)

    def _forward(self, features: torch.Tensor, grid: tuple[int, int] | None,
                 global_token: torch.Tensor | None = None) -> ModelOutput:
        f = self.encode(self.prepare_features(features), grid)
        embeddings = self.attribute_embeddings()
        attribute_scores, maps, branch_scores, extras, constants = {}, {}, {}, {}, {}
        for name, block in self.branches.items():
            given = {"grid": grid} if name in self._grid_branches else {}
            if name in self._global_branches:
                given["global_token"] = global_token
            result = block(f, embeddings, **given)
            component, source = self._sources.get(("attention", name), (name, ""))
            check_attention_output(
                result, batch=f.shape[0], num_attributes=self.num_attributes, regions=f.shape[2], name=component, source=source
            )
            attribute_scores[name], maps[name] = result.scores, result.maps
            extras[name], constants[name] = dict(getattr(result, "extras", {})), dict(getattr(result, "constants", {}))
            branch_scores[name] = self.class_scores(result.scores)
        # classes outside the problem (neither seen nor unseen) are never predicted; no data-dependent
        # branch here, so that the forward compiles as one graph
        scores = self.scorer.predict(branch_scores, self.branch_weights, self.classes)
        scores = scores.masked_fill(~self.classes.predictable, float("-inf"))
        return ModelOutput(scores=scores, branch_scores=branch_scores, attribute_scores=attribute_scores, maps=maps,
                           extras=extras, constants=constants, grid=grid)

    # ------------------------------------------------------------------- loss
    def loss(self, output: ModelOutput, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"total": sum_t weight_t * L_t, t: L_t for every term}`` (terms unweighted)."""
        labels = torch.as_tensor(labels, device=output.scores.device).long()
        for name, term in self.loss_terms.items():
            component, source = self._sources.get(("loss", name), (name, ""))
            check_loss_needs(term, self.branches, output, name=component, source=source)
        terms = {name: term(output, labels, self.classes) for name, term in self.loss_terms.items()}
        for name, value in terms.items():
            component, source = self._sources.get(("loss", name), (name, ""))
            check_loss_output(value, name=component, source=source)
        total = sum(self.loss_weights[name] * value for name, value in terms.items())
        return {"total": total, **terms}

    def set_loss_weights(self, weights: Mapping[str, float]) -> None:
        """Change the weights of existing loss terms, e.g. ``{"self_calibration": 0.0001}``."""
        for name, weight in weights.items():
            if name not in self.loss_weights:
                raise ValueError(f"no loss term {name!r} in this model; it has {list(self.loss_weights)}")
            self.loss_weights[name] = float(weight)
            self.options["losses"][name]["weight"] = float(weight)

    def extra_repr(self) -> str:
        weights = ", ".join(f"{n}={w:g}" for n, w in self.branch_weights.items())
        return f"feature_dim={self.feature_dim}, embedding_dim={self.embedding_dim}, branch_weights=({weights})"
