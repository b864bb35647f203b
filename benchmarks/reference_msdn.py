"""A reference MSDN training step, written the straightforward einsum way.

This is the baseline of ``step_bench.py``: each of the four projections ``W1, W2`` (attribute
->visual) and ``U1, U2`` (visual->attribute) is its own einsum, and each branch materialises
the per-attribute features ``F[b, i, :] = sum_r a[b, i, r] f[b, :, r]`` of shape
``(B, I, C)`` and reads its scores from them, the way the MSDN authors' code does. It does
not use ``zslkit.ops``. :func:`paper_code_forward` computes the same scores with the extra
work the authors' code does besides (per-region score projections, an unused gate over the
per-attribute features). The losses and the problem set-up here are shared with the fused
step in ``step_bench.py``.

Notation (issue #3): features ``x`` ``(B, C, H, W)``, ``f`` = ``x`` unit length per region,
attribute embeddings ``V`` ``(I, D)``, class attributes ``A`` ``(K, I)`` (unit rows),
margin ``m_k`` = +1 unseen / -1 seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import einsum


@dataclass(frozen=True)
class Shapes:
    """Problem size: batch B, channels C, feature map H x W, attributes I, embedding D, classes K."""

    batch: int
    channels: int
    height: int
    width: int
    attributes: int
    embedding_dim: int
    classes: int


CUB = Shapes(batch=50, channels=2048, height=14, width=14, attributes=312, embedding_dim=300, classes=200)
QUICK = Shapes(batch=4, channels=64, height=3, width=3, attributes=16, embedding_dim=8, classes=10)


@dataclass
class Problem:
    """One batch and the fixed class description."""

    features: torch.Tensor  # (B, C, H, W), non-negative like pooled CNN activations
    labels: torch.Tensor  # (B,) class indices
    class_attributes: torch.Tensor  # (K, I), unit rows
    margin: torch.Tensor  # (K,): +1 unseen, -1 seen
    unseen: torch.Tensor  # indices of the unseen classes


def make_problem(shapes: Shapes, seed: int = 0, device: str = "cpu", dtype=torch.float32) -> Problem:
    """A random batch at ``shapes``: a quarter of the classes unseen, labels among the seen ones."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.rand(shapes.batch, shapes.channels, shapes.height, shapes.width, generator=generator)
    class_attributes = F.normalize(torch.rand(shapes.classes, shapes.attributes, generator=generator), dim=1)
    unseen = torch.arange(shapes.classes - max(1, shapes.classes // 4), shapes.classes)
    margin = -torch.ones(shapes.classes)
    margin[unseen] = 1.0
    labels = torch.randint(0, int(unseen[0]), (shapes.batch,), generator=generator)
    return Problem(
        features=features.to(device, dtype),
        labels=labels.to(device),
        class_attributes=class_attributes.to(device, dtype),
        margin=margin.to(device, dtype),
        unseen=unseen.to(device),
    )


#: The model's parameters; ``make_parameters(..., gates=True)`` adds the paper code's ``W3``, ``W3_1``.
MODEL_PARAMETERS = ("V", "W1", "W2", "U1", "U2")


def make_parameters(shapes: Shapes, seed: int = 1, device: str = "cpu", dtype=torch.float32, gates=False):
    """``{"V": (I, D), "W1", "W2": (D, C), "U1": (C, D), "U2": (D, C)}``, random, requiring grad.

    With ``gates`` also ``"W3": (D, C)`` and ``"W3_1": (C, D)``, the attention-over-attributes
    weights of the authors' code (see :func:`paper_code_forward`). The paper initialises W2, U1,
    U2 to zero; random values keep every gradient non-zero, which the correctness checks need,
    and do not change the cost of a step.
    """
    generator = torch.Generator().manual_seed(seed)
    i, d, c = shapes.attributes, shapes.embedding_dim, shapes.channels
    sizes = {"V": (i, d), "W1": (d, c), "W2": (d, c), "U1": (c, d), "U2": (d, c)}
    if gates:
        sizes |= {"W3": (d, c), "W3_1": (c, d)}
    parameters = {name: torch.randn(size, generator=generator) for name, size in sizes.items()}
    parameters["V"] = F.normalize(parameters["V"], dim=1)
    for name in sizes.keys() - {"V", "W1"}:
        parameters[name] *= 3.0 / c**0.5
    return {name: p.to(device, dtype).requires_grad_() for name, p in parameters.items()}


def reference_forward(parameters, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attribute scores ``(psi, psi')`` ``(B, I)`` of the two branches, by einsum."""
    v = parameters["V"]
    f = F.normalize(features.flatten(2), dim=1)  # (B, C, R)
    # attribute->visual: softmax over regions of v_i W2 f; scores v_i W1 F_i
    logits = einsum(v, parameters["W2"], f, "i d, d c, b c r -> b i r")
    attended = einsum(logits.softmax(dim=2), f, "b i r, b c r -> b i c")
    a2v = einsum(v, parameters["W1"], attended, "i d, d c, b i c -> b i")
    # visual->attribute: softmax over attributes of v_i U2 f; scores F'_i U1 v_i
    logits = einsum(v, parameters["U2"], f, "i d, d c, b c r -> b i r")
    attended = einsum(logits.softmax(dim=1), f, "b i r, b c r -> b i c")
    v2a = einsum(v, parameters["U1"], attended, "i d, c d, b i c -> b i")
    return a2v, v2a


def paper_code_forward(parameters, features: torch.Tensor):
    """The same scores as :func:`reference_forward`, with the work the authors' code does.

    That code projects the features four times: per-region scores ``s`` (``W1``, ``U1``) and
    attention logits (``W2``, ``U2``), and reads the scores as ``sum_r a s``. It also pools the
    per-attribute features ``F`` ``(B, I, C)`` and feeds them to an attention-over-attributes
    gate (``W3``, ``W3_1``) that it computes and returns but that does not enter the scores.
    Returns ``(psi, psi', gate, gate')``; the caller keeps the gates, and so ``F``, alive until
    backward is done, as that code's training loop does with its output.
    """
    v, w3, w3_1 = parameters["V"], parameters["W3"], parameters["W3_1"]
    f = F.normalize(features.flatten(2), dim=1)
    # attribute->visual
    region_scores = einsum(v, parameters["W1"], f, "i d, d c, b c r -> b i r")
    maps = einsum(v, parameters["W2"], f, "i d, d c, b c r -> b i r").softmax(dim=2)
    attended = einsum(maps, f, "b i r, b c r -> b i c")
    gate = einsum(v, w3, attended, "i d, d c, b i c -> b i").sigmoid()
    a2v = einsum(maps, region_scores, "b i r, b i r -> b i")
    # visual->attribute
    region_scores = einsum(v, parameters["U1"], f, "i d, c d, b c r -> b i r")
    maps = einsum(v, parameters["U2"], f, "i d, d c, b c r -> b i r").softmax(dim=1)
    attended = einsum(maps, f, "b i r, b c r -> b i c")
    gate_v2a = einsum(v, w3_1, attended, "i d, c d, b i c -> b i").sigmoid()
    v2a = einsum(maps, region_scores, "b i r, b i r -> b i")
    return a2v, v2a, gate, gate_v2a


def class_scores(attribute_scores: torch.Tensor, problem: Problem) -> torch.Tensor:
    """``y = psi A^T + m`` ``(B, K)``."""
    return attribute_scores @ problem.class_attributes.T + problem.margin


def msdn_loss(
    scores_a2v: torch.Tensor,
    scores_v2a: torch.Tensor,
    problem: Problem,
    calibration: float = 0.1,
    distillation: float = 0.001,
) -> torch.Tensor:
    """Issue #3's total: per branch attribute CE + ``calibration`` * self-calibration, plus
    ``distillation`` * the semantic distillation between the branches (CUB weights)."""
    total = scores_a2v.new_zeros(())
    for y in (scores_a2v, scores_v2a):
        cross_entropy = F.cross_entropy(y - problem.margin, problem.labels)
        unseen_mass = y.softmax(dim=1)[:, problem.unseen].sum(dim=1)
        total = total + cross_entropy - calibration * unseen_mass.mean().log()
    difference = scores_a2v - scores_v2a
    weighted = (difference.abs().pow(3).sum(dim=1) / difference.norm(dim=1).clamp_min(1e-12)).mean()
    p, q = scores_a2v.softmax(dim=1), scores_v2a.softmax(dim=1)
    log_mean = ((p + q) / 2).log()
    jensen_shannon = (
        0.5 * (p * (p.log() - log_mean)).sum(1).mean() + 0.5 * (q * (q.log() - log_mean)).sum(1).mean()
    )
    return total + distillation * (weighted + jensen_shannon)


def outputs_loss(outputs, problem: Problem) -> torch.Tensor:
    """The total loss of a forward's outputs ``(psi, psi', ...)``; what follows the two branch
    scores (the paper code's gates) does not enter it."""
    return msdn_loss(class_scores(outputs[0], problem), class_scores(outputs[1], problem), problem)


def step_loss(forward, parameters, problem: Problem) -> torch.Tensor:
    """Forward of both branches and the total loss."""
    return outputs_loss(forward(parameters, problem.features), problem)


def make_optimizer(parameters, foreach: bool | None = None) -> torch.optim.Optimizer:
    """The paper's optimiser: RMSprop(lr 1e-4, weight decay 1e-4, momentum 0.9).

    ``foreach=None`` is PyTorch's default (the per-tensor loop on CPU, multi-tensor kernels on
    CUDA); ``True`` updates all parameters with multi-tensor kernels on any device.
    """
    return torch.optim.RMSprop(parameters.values(), lr=1e-4, weight_decay=1e-4, momentum=0.9, foreach=foreach)


def train_step(forward, parameters, optimizer, problem: Problem, autocast_dtype=None) -> torch.Tensor:
    """One training step: forward, losses, backward, optimiser step. Returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    device_type = problem.features.device.type
    with torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        outputs = forward(parameters, problem.features)  # alive until after backward
        loss = outputs_loss(outputs, problem)
    loss.backward()
    optimizer.step()
    return loss.detach()
