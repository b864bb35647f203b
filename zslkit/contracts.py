"""Component contracts, checked when a component is registered (``zslkit.register`` and plugins alike), built and first used.

The contracts are documented in ``docs/concepts.md`` (the model's in its "Model" section:
the protocol :class:`ZSLModel` here, from which :data:`MODEL_ATTRIBUTES` and
:func:`check_built_model` derive; ``check_model_output`` in :mod:`zslkit.models.output`). A factory that cannot
satisfy its kind's contract is refused with a one-line error that names where
it came from (module or plugin).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch

    from zslkit.models.output import ModelOutput

__all__ = [
    "ClassSpaceContract",
    "ContractError",
    "MODEL_ATTRIBUTES",
    "REQUIRED_OPTIONS",
    "check_attention_output",
    "check_backbone_output",
    "check_built_model",
    "check_encoder_output",
    "check_factory",
    "check_registration",
    "check_loss_needs",
    "check_loss_output",
    "check_model_losses",
    "check_tensor_dict",
    "contract_members",
    "describe_component",
    "describe_model",
    "on_built",
    "owns_backbone",
    "record_name",
    "registered_name",
    "ZSLModel",
]


class ContractError(TypeError):
    """A component does not follow the contract of its kind."""


#: Keyword options each kind's factory must accept.
REQUIRED_OPTIONS: dict[str, tuple[str, ...]] = {
    "adapter": ("token_dim", "embedding_dim", "num_attributes"),
    "attention": ("feature_dim", "embedding_dim", "num_attributes"),
    "encoder": ("feature_dim",),
    "model": ("class_attributes", "attribute_embeddings", "seen_classes", "unseen_classes", "feature_dim"),
    "converter": ("source",),
    "optimizer": ("params", "lr", "weight_decay", "momentum"),
    "schedule": ("epochs",),
    "logger": ("out_dir", "run", "group"),
}


def check_factory(kind: str, name: str, factory: Callable[..., Any], *, source: str = "") -> None:
    """Refuse a factory whose signature cannot take the options its kind is built with."""
    required = REQUIRED_OPTIONS.get(kind, ())
    if not required:
        return
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    missing = [opt for opt in required if opt not in params]
    if missing:
        where = f" ({source})" if source else ""
        raise ContractError(
            f"{kind} {name!r}{where}: factory must accept keyword options "
            f"{', '.join(required)}; missing {', '.join(missing)}"
        )


def check_registration(component: Any) -> None:
    """:func:`check_factory` of a component about to be registered (``zslkit.register``, plugins),
    naming its plugin; installed with :func:`zslkit.registry.on_register`."""
    plugin = component.origin.plugin
    check_factory(component.kind, component.name, component.factory, source=f"plugin {plugin}" if plugin else "")


def describe_component(kind: str, name: str) -> str:
    """``"<module>.<Class> (plugin <dist> <version>)"``: where the registered component came from."""
    from zslkit.registry import ComponentNotFoundError, component_info

    try:
        return str(component_info(kind, name).origin)
    except ComponentNotFoundError:
        return "not registered"


def _where(source: str) -> str:
    return f" ({source})" if source else ""


def check_attention_output(
    output: Any, *, batch: int, num_attributes: int, regions: int, name: str, source: str = ""
) -> None:
    """Check an attention block's forward result: ``.scores`` (B, I), ``.maps`` (B, I, R) or None.

    ``source`` (e.g. :func:`describe_component`'s answer) is named in the error, so a
    faulty plugin block is blamed on its plugin.
    """
    scores = getattr(output, "scores", None)
    if scores is None or tuple(scores.shape) != (batch, num_attributes):
        found = None if scores is None else tuple(scores.shape)
        raise ContractError(
            f"attention {name!r}{_where(source)}: forward must return an object with .scores of shape "
            f"({batch}, {num_attributes}); found {found}"
        )
    maps = getattr(output, "maps", None)
    if maps is not None and tuple(maps.shape) != (batch, num_attributes, regions):
        raise ContractError(
            f"attention {name!r}{_where(source)}: .maps must have shape ({batch}, {num_attributes}, {regions}) "
            f"or be None; found {tuple(maps.shape)}"
        )
    check_tensor_dict(getattr(output, "extras", {}), batch, f"attention {name!r}{_where(source)}: .extras")
    check_tensor_dict(getattr(output, "constants", {}), None, f"attention {name!r}{_where(source)}: .constants")


def check_tensor_dict(values: Any, batch: int | None, what: str) -> None:
    """``values`` is a dict name -> tensor, each ``(batch, ...)`` when ``batch`` is given."""
    import torch

    if not isinstance(values, dict):
        raise ContractError(f"{what} must be a dict of name -> tensor; found {type(values).__name__}")
    for key, value in values.items():
        if not isinstance(value, torch.Tensor):
            raise ContractError(f"{what}[{key!r}] must be a tensor; found {type(value).__name__}")
        if batch is not None and (value.ndim == 0 or value.shape[0] != batch):
            raise ContractError(f"{what}[{key!r}] must be batch-first ({batch}, ...); found shape {tuple(value.shape)}")


def check_loss_output(value: Any, *, name: str, source: str = "") -> None:
    """A loss term's forward must return a scalar floating-point tensor."""
    import torch

    if not isinstance(value, torch.Tensor) or value.ndim != 0 or not value.is_floating_point():
        found = f"tensor of shape {tuple(value.shape)} {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise ContractError(f"loss {name!r}{_where(source)}: forward must return a scalar float tensor; found {found}")


def check_backbone_output(features: Any, *, batch: int, feature_dim: int | None, name: str, source: str = "") -> None:
    """A backbone maps ``(B, 3, S, S)`` images to a ``(B, C, H, W)`` map with ``C == .feature_dim``."""
    shape = tuple(getattr(features, "shape", ()))
    if len(shape) != 4 or shape[0] != batch or (feature_dim is not None and shape[1] != feature_dim):
        channels = "C" if feature_dim is None else str(feature_dim)
        raise ContractError(
            f"backbone {name}{_where(source)}: forward must return feature maps of shape ({batch}, {channels}, H, W); "
            f"found {shape if shape else type(features).__name__}"
        )


def check_encoder_output(encoded: Any, *, batch: int, channels: int, regions: int, name: str, source: str = "") -> None:
    """An encoder maps ``(B, C, R)`` to ``(B, output_dim, R)``."""
    shape = tuple(getattr(encoded, "shape", ()))
    if shape != (batch, channels, regions):
        raise ContractError(
            f"encoder {name!r}{_where(source)}: forward must return ({batch}, {channels}, {regions}) (B, output_dim, R); "
            f"found {shape if shape else type(encoded).__name__}"
        )


def _term_branches(term: Any, branches) -> list[str]:
    chosen = getattr(term, "branches", None)
    return list(branches) if chosen is None else [b for b in chosen if b in branches]


def check_loss_needs(term: Any, branches, output: Any = None, *, name: str, source: str = "") -> None:
    """A loss term's declared needs: ``needs_grid = True``, ``needs_extras = ("key", ...)``.

    Without ``output`` (at model build) the declarations are checked for type and, for blocks
    that declare ``provides_extras``, against what the blocks give; with ``output`` (before the
    term runs) against the output itself. ``branches``: the model's branch name -> block.
    """
    needs_grid, needs_extras = getattr(term, "needs_grid", False), getattr(term, "needs_extras", ())
    if not isinstance(needs_grid, bool) or not isinstance(needs_extras, tuple) or not all(isinstance(k, str) for k in needs_extras):
        raise ContractError(f"loss {name!r}{_where(source)}: needs_grid must be a bool and needs_extras a tuple of names; "
                            f"found {needs_grid!r}, {needs_extras!r}")
    if output is not None and needs_grid and output.grid is None:
        raise ContractError(f"loss {name!r}{_where(source)} needs the region grid: give features as (B, C, H, W), not (B, C, R)")
    for branch in _term_branches(term, branches):
        block = branches[branch]
        have = output.extras.get(branch, {}) if output is not None else getattr(block, "provides_extras", None)
        missing = [key for key in needs_extras if have is not None and key not in have]
        if missing:
            raise ContractError(
                f"loss {name!r}{_where(source)} needs extras {missing[0]!r} of branch {branch!r}, whose block "
                f"{type(block).__name__} gives {sorted(have)}"
            )


# ----------------------------------------------------------------------------- models

class ClassSpaceContract(Protocol):
    """What loss terms, checkpoints and evaluation read from a model's ``classes`` (a :class:`~zslkit.models.ClassSpace`)."""

    @property
    def attributes(self) -> torch.Tensor:
        """(K, I) the class-attribute rows"""

    @property
    def seen(self) -> torch.Tensor:
        """sorted indices of the seen classes"""

    @property
    def unseen(self) -> torch.Tensor:
        """sorted indices of the unseen classes"""

    @property
    def margin(self) -> torch.Tensor:
        """(K,) the score offset: +margin unseen, -margin seen"""

    @property
    def margin_size(self) -> float:
        """the margin's size"""

    @property
    def predictable(self) -> torch.Tensor:
        """(K,) bool, True for seen and unseen classes"""

    @property
    def num_classes(self) -> int:
        """K"""

    @property
    def num_attributes(self) -> int:
        """I"""


class ZSLModel(Protocol):
    """The model contract: what the trainer, checkpoints, evaluation, ``viz``, the harness and DDP read from a
    model (see docs/concepts.md, "Model"), besides its being a ``torch.nn.Module``.

    :data:`MODEL_ATTRIBUTES` and :func:`check_built_model` are derived from the members below (each member's
    docstring is what it must be); code typed against a model names this protocol.
    """

    def forward(self, features: torch.Tensor) -> ModelOutput:
        """a method: forward(features (B, C, H, W) or (B, C, R)) -> zslkit.models.ModelOutput"""

    def loss(self, output: ModelOutput, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """a method: loss(output, labels) -> {'total': scalar, term: scalar, ...}"""

    @property
    def classes(self) -> ClassSpaceContract:
        """a zslkit.models.ClassSpace (its seen, unseen, margin_size and attributes)"""

    @property
    def num_classes(self) -> int:
        """an int, K"""

    @property
    def options(self) -> dict[str, Any]:
        """a JSON-serialisable dict: the options that rebuild the model"""

    @property
    def loss_weights(self) -> dict[str, float]:
        """a dict term -> float weight"""

    def set_loss_weights(self, weights: Mapping[str, float]) -> None:
        """a method: set_loss_weights({term: weight})"""


def contract_members(protocol: type) -> dict[str, tuple[str, str]]:
    """``{name: ("attribute" | "method", what it must be)}`` for the members a protocol class declares:
    properties are attributes, functions methods; the description is the member's docstring."""
    members = {}
    for name, member in vars(protocol).items():
        if isinstance(member, property):
            members[name] = ("attribute", inspect.getdoc(member.fget) or "")
        elif inspect.isfunction(member) and not name.startswith("_"):
            members[name] = ("method", inspect.getdoc(member) or "")
    return members


#: What the trainer, checkpoints, evaluation, ``viz``, the harness and DDP read from a model
#: (see docs/concepts.md, "Model"): attribute -> what it must be; derived from :class:`ZSLModel`.
MODEL_ATTRIBUTES: dict[str, str] = {name: what for name, (_, what) in contract_members(ZSLModel).items()}
_MODEL_METHODS = tuple(name for name, (kind, _) in contract_members(ZSLModel).items() if kind == "method")
_CLASS_SPACE = tuple(contract_members(ClassSpaceContract))


def record_name(instance: Any, name: str) -> None:
    """Remember on ``instance`` the registered name it was built under (``instance.component_name``)."""
    try:
        instance.component_name = name
    except (AttributeError, TypeError):  # e.g. a function's plain result; then reverse lookup applies
        pass


def on_built(component: Any, instance: Any) -> None:
    """Run on every instance ``zslkit.create`` builds (installed by the package through
    :func:`zslkit.registry.on_build`): records its registered name and checks the contract of a model
    (built by its factory or by a converter of the authors' checkpoints)."""
    record_name(instance, component.name)  # a converter's name is the name of the model it builds
    if component.kind in ("model", "converter"):
        check_built_model(instance, name=component.name, source=str(component.origin))
    elif component.kind == "encoder":
        width = getattr(instance, "output_dim", None)
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ContractError(f"encoder {component.name!r} ({component.origin}): must have an int attribute output_dim "
                                f"(the channels it returns); found {width!r}")


def registered_name(instance: Any, kind: str = "model") -> str:
    """The registered name of ``instance``: the one it was built under (``zslkit.create``), else the one name
    its class is registered under. Raises :class:`ContractError` when the class is registered under no name or
    under several (build it with ``zslkit.create(kind, name)`` then)."""
    from zslkit.registry import get_component, list_components

    recorded = getattr(instance, "component_name", None)
    if isinstance(recorded, str) and recorded:
        return recorded
    cls = type(instance)
    names = [n for n in list_components(kind) if get_component(kind, n) is cls]
    if len(names) == 1:
        return names[0]
    qualname = f"{cls.__module__}.{cls.__qualname__}"
    if not names:
        raise ContractError(f"{kind} class {qualname} is not registered: register it (zslkit.register({kind!r}, name) or a "
                            f"plugin) so that checkpoints can rebuild it by name")
    raise ContractError(f"{kind} class {qualname} is registered under several names ({', '.join(names)}): build it with "
                        f"zslkit.create({kind!r}, name) so that its name is recorded")


def owns_backbone(model: Any) -> bool:
    """Whether ``model`` (a registered model name, a model class or a built model) reads images through a backbone
    it owns: its class has ``image_reader`` (e.g. :class:`~zslkit.models.TokenAttentionModel`). ``None`` or a name
    not registered (yet): ``False``; the name is refused where the model is built."""
    if isinstance(model, str):
        from zslkit.registry import ComponentNotFoundError, get_component

        try:
            model = get_component("model", model)
        except ComponentNotFoundError:
            return False
    return model is not None and hasattr(model, "image_reader")


def describe_model(model: Any) -> tuple[str, str]:
    """``(name, origin)`` of a model for error messages: its registered name (else its class) and where it came from."""
    try:
        name = registered_name(model)
    except ContractError:
        return type(model).__name__, "not registered"
    return name, describe_component("model", name)


def check_built_model(model: Any, *, name: str, source: str = "") -> None:
    """Refuse a freshly built model that lacks what :data:`MODEL_ATTRIBUTES` lists (one line naming the first gap)."""
    import json

    import torch

    where = f"model {name!r}{_where(source)}"
    if not isinstance(model, torch.nn.Module):
        raise ContractError(f"{where}: the factory must build a torch.nn.Module; built {type(model).__name__}")
    for attribute, what in MODEL_ATTRIBUTES.items():
        if not hasattr(model, attribute):
            raise ContractError(f"{where}: has no {attribute!r}; it must be {what}")
    for attribute in _MODEL_METHODS:
        if not callable(getattr(model, attribute)):
            raise ContractError(f"{where}: {attribute!r} must be {MODEL_ATTRIBUTES[attribute]}")
    missing = [a for a in _CLASS_SPACE if not hasattr(model.classes, a)]
    if missing or not isinstance(model.classes, torch.nn.Module):
        raise ContractError(f"{where}: .classes must be {MODEL_ATTRIBUTES['classes']}; "
                            f"found {type(model.classes).__name__} without {missing[:1] or 'nn.Module'}")
    if not isinstance(model.loss_weights, dict):
        raise ContractError(f"{where}: .loss_weights must be {MODEL_ATTRIBUTES['loss_weights']}")
    if not isinstance(model.options, dict):
        raise ContractError(f"{where}: .options must be {MODEL_ATTRIBUTES['options']}; found {type(model.options).__name__}")
    try:
        json.dumps(model.options)
    except (TypeError, ValueError) as exc:
        raise ContractError(f"{where}: .options must be {MODEL_ATTRIBUTES['options']} ({exc})") from None


def check_model_losses(losses: Any, *, name: str, source: str = "") -> None:
    """A model's ``loss`` returns a dict with ``"total"``, every value a scalar float tensor."""
    import torch

    where = f"model {name!r}{_where(source)}"
    if not isinstance(losses, dict) or "total" not in losses:
        found = f"keys {sorted(losses)}" if isinstance(losses, dict) else type(losses).__name__
        raise ContractError(f"{where}: loss must return a dict with 'total' (and one entry per term); found {found}")
    for key, value in losses.items():
        if not isinstance(value, torch.Tensor) or value.ndim != 0 or not value.is_floating_point():
            raise ContractError(f"{where}: loss()[{key!r}] must be a scalar float tensor; found {type(value).__name__} "
                                f"{tuple(getattr(value, 'shape', ()))}")
