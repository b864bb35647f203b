"""Training-mode parity of zslkit's TransZero / TransZero++ with the authors' released code.

Needs a checkout of the authors' repository (``shiming-chen/TransZero`` for ``model.py``,
``shiming-chen/TransZero_pp`` for ``model_tzpp.py``); their module is loaded from that path with
textual patches made in memory (``.cuda()`` removed; the encoder's hard-coded 14 x 14 grid and the
``Transformer``'s fixed input widths 2048 / 300 taken from module variables; ``**kwargs`` on the
decoder layer's ``forward`` for newer PyTorch).
Nothing of theirs is copied into zslkit.

On the same weights (the authors' random init, loaded with :mod:`zslkit.interop`) and the same
seed, one training step with every dropout on is run by both codes; zslkit draws its masks as
``torch.nn.Dropout`` does (:func:`zslkit.attention.dropout.torch_dropout_draws`). Printed: the
largest relative error of the loss, of every loss term, of every gradient, and of the weights
after ``--steps`` Adam steps (lr 1e-4, weight decay 1e-4, new masks every step).

    python benchmarks/transzero_parity.py --official /tmp/TransZero_pp --model transzero_pp
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zslkit.attention import dropout as dropout_module
from zslkit.attention.dropout import torch_dropout_draws
from zslkit.interop import load_official_transzero, load_official_transzero_pp
from zslkit.models.transzero_official import _transformer_keys

#: The CUB GZSL loss weights of the authors' configs: TransZero (lambda_, lambda_reg);
#: TransZero++ (lambda_, lambda_reg, lambda_v2s, lambda_cst_reg_att, lambda_cst_reg_cls, weight_s2v).
TZ = (0.3, 0.005)
TZPP = (0.2, 1e-4, 0.1, 1e-3, 1e-2, 0.9)


def load_official_module(path: Path, grid: tuple[int, int], channels: int = 2048, embedding_dim: int = 300) -> types.ModuleType:
    """The authors' ``model.py`` / ``model_tzpp.py`` made CPU-runnable for the grid ``grid`` (and
    for ``channels`` / ``embedding_dim`` where their ``Transformer`` fixes 2048 / 300)."""
    source = path.read_text()
    source = source.replace(".cuda()", "").replace("grid_size=(14, 14))", "grid_size=GRID)")
    source = source.replace("memory_key_padding_mask=None):", "memory_key_padding_mask=None, **kwargs):")
    source = source.replace("in_dim_cv=2048, in_dim_attr=300", "in_dim_cv=CHANNELS, in_dim_attr=EMBEDDING_DIM")
    module = types.ModuleType(path.stem)
    module.GRID, module.CHANNELS, module.EMBEDDING_DIM = grid, channels, embedding_dim
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 (the user's checkout, run beside ours)
    return module


def config(pp: bool, dropout: float, d: int, ffn: int, classes: int) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        dim_f=2048, dim_v=300, num_class=classes, tf_common_dim=d, tf_dim_feedforward=ffn, tf_dropout=dropout,
        tf_SAtt=True, tf_heads=1, tf_ec_layer=1, tf_dc_layer=1, tf_aux_embed=True, normalize_V=False,
        tf_v2s_init="zeros_", weight_s2v=TZPP[-1], lambda_=TZPP[0] if pp else TZ[0], lambda_reg=TZPP[1] if pp else TZ[1],
    )


def official_model(module, pp: bool, cfg, attributes: int, seed: int):
    torch.manual_seed(seed)
    att = torch.rand(cfg.num_class, attributes)
    w2v = torch.randn(attributes, 300)
    seen, unseen = torch.arange(0, cfg.num_class, 2), torch.arange(1, cfg.num_class, 2)
    model = (module.TransZeroPP if pp else module.TransZero)(cfg, att, w2v, seen, unseen)
    if pp:  # W_1^{v2s} = 0 at init would leave W_4 without gradient in the first step: checked from non-zero
        with torch.no_grad():
            model.W_1_v2s.normal_(0, 0.01)
    return model


def official_losses(model, pp: bool, x, labels) -> dict[str, torch.Tensor]:
    """The authors' training-step loss (their train_cub.py), with its terms."""
    out = model(x)
    if not pp:
        terms = model.compute_loss({**out, "batch_label": labels})
        return {"total": terms["loss"], "attribute_ce": terms["loss_CE"], "self_calibration": terms["loss_cal"],
                "attribute_regression": terms["loss_reg"]}
    _, _, lam_v2s, lam_att, lam_cls, _ = TZPP
    p1, p2 = out["package_s2v"], out["package_v2s"]
    p1["batch_label"], p2["batch_label"] = labels, labels
    t1, t2 = model.compute_loss(p1), model.compute_loss(p2)
    att, cls = model.compute_contrastive_loss(p1, p2)
    total = t1["loss"] + lam_v2s * t2["loss"] + lam_att * att + lam_cls * cls
    return {"total": total, "attribute_ce": t1["loss_CE"], "self_calibration": t1["loss_cal"], "attribute_regression": t1["loss_reg"],
            "attribute_ce_v2s": t2["loss_CE"], "self_calibration_v2s": t2["loss_cal"], "attribute_regression_v2s": t2["loss_reg"],
            "attribute_consistency": att, "class_consistency": cls}


def to_zslkit_keys(pp: bool, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tensors under the authors' keys (weights or their gradients) -> zslkit's keys (interop's table)."""
    if not pp:
        out = {"V": tensors["V"], "branches.s2v.W1": tensors["W_1"]}
        return out | _transformer_keys(tensors, "transformer", "encoder", "branches.s2v", True)
    out = {"V": tensors["V"], "branches.s2v.W1": tensors["W_1_s2v"], "branches.v2s.W1": tensors["W_1_v2s"], "branches.v2s.W4": tensors["W_4_v2s"]}
    for stream in ("s2v", "v2s"):
        out |= _transformer_keys(tensors, f"transformer_{stream}", f"branches.{stream}.encoder", f"branches.{stream}", True)
    return out


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


@contextlib.contextmanager
def record_masks():
    """zslkit's masks ``(keep, scale)`` in the order its dropouts draw them."""
    masks, draw = [], dropout_module.keep_mask

    def recording(x, p, token_first=False):
        keep, scale = draw(x, p, token_first)
        masks.append((keep, scale))
        return keep, scale

    dropout_module.keep_mask = recording
    try:
        yield masks
    finally:
        dropout_module.keep_mask = draw


def _their_layout(keep: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """A zslkit mask in the layout of the authors' tensor ``shape``: the same elements
    (batch-first, or the decoder's ``(token, batch, ...)``), or one mask shared by the batch."""
    if keep.numel() == shape.numel() and (keep.shape[0] == shape[0] or keep.dim() == len(shape) + 1):
        return keep.reshape(shape)  # batch first; attention weights (B, heads, Q, K) as (B heads, Q, K)
    if keep.numel() == shape.numel():  # token first: zslkit's (B, T, ...) (or (B T, F)) as (T, B, ...)
        return keep.reshape(shape[1], shape[0], *shape[2:]).transpose(0, 1)
    if keep.dim() == 2:  # (T, d) drawn once per batch -> (T, B, d)
        return keep.unsqueeze(1).expand(shape)
    return keep.reshape(1, *shape[1:]).expand(shape)  # (heads, T, T) once per batch -> (B heads, T, T)


@contextlib.contextmanager
def replay_masks(masks):
    """The authors' dropouts (``F.dropout``, also inside ``nn.MultiheadAttention``) apply ``masks`` in order."""
    queue, original = list(masks), F.dropout

    def replaying(x, p=0.5, training=True, inplace=False):
        if not training or p == 0:
            return x
        keep, scale = queue.pop(0)
        return x * _their_layout(keep, x.shape).to(x.dtype) * scale

    F.dropout = replaying
    try:
        yield
    finally:
        F.dropout = original
        if queue:
            raise AssertionError(f"{len(queue)} zslkit masks left unused: zslkit draws more dropouts than the authors' code")


def _key_bias(key: str) -> bool:
    """Biases that shift every logit of a softmax alike (the key projection's; the geometry term's
    where its ReLU is active everywhere): their exact gradient is 0, the computed one rounding noise."""
    return key.endswith(("to_k.bias", "geometry.bias"))


def compare(args) -> dict[str, float]:
    pp = args.model == "transzero_pp"
    module = load_official_module(Path(args.official) / ("model_tzpp.py" if pp else "model.py"), tuple(args.grid))
    cfg = config(pp, args.dropout, args.dim, args.ffn, args.classes)
    theirs = official_model(module, pp, cfg, args.attributes, args.seed).train()
    loader = load_official_transzero_pp if pp else load_official_transzero
    ours = loader(dict(theirs.state_dict()), dropout=args.dropout).train()
    g = torch.Generator().manual_seed(args.seed + 1)
    x = torch.randn(args.batch, 2048, *args.grid, generator=g).relu()
    labels = torch.arange(0, args.classes, 2)[torch.randint(0, args.classes // 2, (args.batch,), generator=g)]
    opt_theirs = torch.optim.Adam([p for p in theirs.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-4)
    opt_ours = torch.optim.Adam([p for p in ours.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-4)
    errors: dict[str, float] = {}
    for step in range(args.steps):
        if args.masks == "torch":
            torch.manual_seed(1000 + step)
            lt = official_losses(theirs, pp, x, labels)
            torch.manual_seed(1000 + step)
            with torch_dropout_draws():
                lo = ours.loss(ours(x), labels)
        else:  # zslkit's own masks (per batch where it shares them), replayed into the authors' dropouts
            with record_masks() as masks:
                lo = ours.loss(ours(x), labels)
            with replay_masks(masks):
                lt = official_losses(theirs, pp, x, labels)
        opt_theirs.zero_grad(set_to_none=True)
        opt_ours.zero_grad(set_to_none=True)
        lt["total"].backward()
        lo["total"].backward()
        if step == 0:
            errors |= {f"loss {k}": rel(lo[k], v) for k, v in lt.items()}
            grads = to_zslkit_keys(pp, {k: p.grad for k, p in theirs.named_parameters() if p.grad is not None})
            own = dict(ours.named_parameters())
            errors |= {f"grad {k}": rel(own[k].grad, v) for k, v in grads.items() if not _key_bias(k)}
            scale = max(float(v.abs().max()) for v in grads.values())
            # softmax ignores such a bias: its gradient is rounding noise in both codes (compared to the largest gradient)
            errors |= {f"key-bias grad, |ours - theirs| / max |grad| {k}": float((own[k].grad - v).abs().max()) / scale
                       for k, v in grads.items() if _key_bias(k)}
        opt_theirs.step()
        opt_ours.step()
    weights, own = to_zslkit_keys(pp, dict(theirs.state_dict())), ours.state_dict()
    # Adam turns those biases' noise gradients into lr-sized steps in both codes: left out (they change no output)
    errors |= {f"weights after {args.steps} steps {k}": rel(own[k], v) for k, v in weights.items() if not _key_bias(k)}
    return errors


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, help="checkout of shiming-chen/TransZero (model.py) or TransZero_pp (model_tzpp.py)")
    parser.add_argument("--model", choices=("transzero", "transzero_pp"), default="transzero_pp")
    parser.add_argument("--dropout", type=float, default=0.4)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--ffn", type=int, default=24)
    parser.add_argument("--attributes", type=int, default=12)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--grid", type=int, nargs=2, default=(7, 7))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--masks", choices=("torch", "replay"), default="torch",
                        help="torch: both draw nn.Dropout's masks (zslkit in torch_dropout_draws); replay: zslkit's own "
                        "masks (shared by the batch where it shares them) applied in the authors' dropouts")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    np.random.seed(args.seed)
    errors = compare(args)
    for key, value in errors.items():
        print(f"{value:.2e}  {key}")
    worst = {kind: max(v for k, v in errors.items() if k.startswith(kind)) for kind in ("loss", "grad", "key-bias", "weights")}
    print("max relative error: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()), file=sys.stdout)


if __name__ == "__main__":
    main()
