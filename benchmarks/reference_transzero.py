"""TransZero and TransZero++ training steps written the way the authors' released code runs them.

The baseline of the TransZero rows of ``step_bench.py``: plain functions over a state dict in
the authors' layout (the keys of ``model.py`` / ``model_tzpp.py``), written for this benchmark
in the released code's *style* -- the costs it pays, not its text:

* the relative-geometry embedding is built for every image of every batch, a
  ``(B, R, R, 64)`` tensor (and its ``(B, R, R, 4, 8)`` intermediates), and the geometry
  weights are a linear map over its ``B R^2`` rows;
* the attribute tokens are repeated for every image (``(B, I, d)``), so the decoder's attribute
  self-attention and its cross-attention query projection run once per image; TransZero++ also
  repeats ``V`` per image and forms the ``(B, I, R)`` tensor ``E`` of its V->S scores;
* the decoder is ``nn.TransformerDecoderLayer``'s math through ``F.multi_head_attention_forward``
  in the ``(L, B, d)`` layout, with the weights returned (as that layer's call does);
* losses with one-hot labels from an identity matrix, Adam with PyTorch's default implementation.

The zslkit side is the model :func:`zslkit.interop.load_official_transzero` (or ``_pp``) builds
from the same state dict. Notation as in ``docs/transzero.md``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from reference_msdn import CUB, Problem, Shapes

from zslkit.interop import load_official_transzero, load_official_transzero_pp

KINDS = ("transzero", "transzero_pp")
#: (TransZero ``lambda_``, ``lambda_reg``) and TransZero++ (``lambda_``, ``lambda_reg``, ``lambda_v2s``,
#: ``lambda_att``, ``lambda_cls``, ``weight_s2v``): the authors' CUB GZSL configs.
TZ_WEIGHTS = (0.3, 0.005)
TZPP_WEIGHTS = (0.2, 1e-4, 0.1, 1e-3, 1e-2, 0.9)


def widths(shapes: Shapes) -> tuple[int, int]:
    """``(d, d_ff)``: the CUB config's 300 and 512 at CUB shapes, small ones otherwise."""
    return (300, 512) if shapes == CUB else (8, 12)


def _transformer_state(T: str, d: int, ffn: int, shapes: Shapes, g: torch.Generator) -> dict[str, torch.Tensor]:
    def rnd(*shape, scale=None):
        scale = scale if scale is not None else 1.0 / math.sqrt(shape[-1])
        return torch.randn(*shape, generator=g) * scale

    st = {}
    linears = {"embed_cv.0": (d, shapes.channels), "embed_cv_aux.0": (d, shapes.channels), "embed_attr.0": (d, shapes.embedding_dim),
               "transformer_encoder.WGs.0": (1, 64)}
    L, D = f"{T}.transformer_encoder.layers.0", f"{T}.transformer_decoder.layers.0"
    linears |= {f"{L[len(T) + 1:]}.{k}": s for k, s in {"mhatt.attention.fc_q": (d, d), "mhatt.attention.fc_k": (d, d),
                "mhatt.attention.fc_v": (d, d), "mhatt.attention.fc_o": (d, d), "pwff.fc1": (ffn, d), "pwff.fc2": (d, ffn)}.items()}
    linears |= {f"{D[len(T) + 1:]}.{k}": s for k, s in {"linear1": (ffn, d), "linear2": (d, ffn)}.items()}
    for key, shape in linears.items():
        st[f"{T}.{key}.weight"], st[f"{T}.{key}.bias"] = rnd(*shape), rnd(shape[0], scale=0.1)
    for key in ("mhatt.layer_norm", "lnorm", "pwff.layer_norm"):
        st[f"{L}.{key}.weight"], st[f"{L}.{key}.bias"] = 1 + rnd(d, scale=0.1), rnd(d, scale=0.1)
    for key in ("norm1", "norm2", "norm3"):
        st[f"{D}.{key}.weight"], st[f"{D}.{key}.bias"] = 1 + rnd(d, scale=0.1), rnd(d, scale=0.1)
    for key in ("self_attn", "multihead_attn"):
        st[f"{D}.{key}.in_proj_weight"], st[f"{D}.{key}.in_proj_bias"] = rnd(3 * d, d), rnd(3 * d, scale=0.1)
        st[f"{D}.{key}.out_proj.weight"], st[f"{D}.{key}.out_proj.bias"] = rnd(d, d), rnd(d, scale=0.1)
    return st


def make_state(kind: str, shapes: Shapes, problem: Problem, seed: int = 1) -> dict[str, torch.Tensor]:
    """A state dict in the authors' layout, random (every tensor non-zero so every gradient is)."""
    g = torch.Generator().manual_seed(seed)
    d, ffn = widths(shapes)
    st = {"V": F.normalize(torch.randn(shapes.attributes, shapes.embedding_dim, generator=g), dim=1),
          "att": problem.class_attributes.cpu().float(), "bias": torch.tensor(1.0),
          "mask_bias": problem.margin.cpu().float().reshape(1, -1), "weight_ce": torch.eye(shapes.classes)}
    if kind == "transzero":
        st |= _transformer_state("transformer", d, ffn, shapes, g)
        st["W_1"] = torch.randn(shapes.embedding_dim, d, generator=g)
    else:
        st |= _transformer_state("transformer_s2v", d, ffn, shapes, g) | _transformer_state("transformer_v2s", d, ffn, shapes, g)
        st |= {"W_1_s2v": torch.randn(shapes.embedding_dim, d, generator=g), "W_1_v2s": torch.randn(d, d, generator=g) * 1e-4,  # zeros in the authors' init
               "W_4_v2s": torch.randn(d, d, generator=g) * 0.05}  # scaled: keeps the v2s scores in range over the checked steps
    return st


def reference_parameters(state, device="cpu", dtype=torch.float32) -> dict[str, torch.Tensor]:
    """The trained tensors of ``state`` as leaves requiring grad (the buffers-like ones without)."""
    fixed = {"att", "bias", "mask_bias", "weight_ce"}
    return {k: v.to(device, dtype).requires_grad_(k not in fixed) for k, v in state.items()}


def zslkit_model(kind: str, state, dropout: float, device="cpu", dtype=torch.float32):
    loader = load_official_transzero if kind == "transzero" else load_official_transzero_pp
    return loader(state, dropout=dropout).to(device, dtype).train()


# ------------------------------------------------------------------ the released code's style
def geometry_per_image(batch: int, grid: tuple[int, int], device, dtype) -> torch.Tensor:
    """``(B, R, R, 64)``: the cell-box embedding, built again for every image of the batch."""
    height, width = grid
    rows = torch.arange(height, device=device, dtype=dtype).repeat_interleave(width)
    cols = torch.arange(width, device=device, dtype=dtype).repeat(height)
    per_image = lambda v: v.view(1, -1, 1).expand(batch, -1, -1)  # noqa: E731
    x0, x1, y0, y1 = per_image(rows / height), per_image((rows + 1) / height), per_image(cols / width), per_image((cols + 1) / width)
    cx, cy, w, h = (x0 + x1) * 0.5, (y0 + y1) * 0.5, (x1 - x0) + 1.0, (y1 - y0) + 1.0
    dx = torch.log(torch.clamp(torch.abs((cx - cx.view(batch, 1, -1)) / w), min=1e-3))
    dy = torch.log(torch.clamp(torch.abs((cy - cy.view(batch, 1, -1)) / h), min=1e-3))
    dw, dh = torch.log(w / w.view(batch, 1, -1)), torch.log(h / h.view(batch, 1, -1))
    position = torch.stack((dx, dy, dw, dh), dim=-1)  # (B, R, R, 4)
    frequencies = 1.0 / torch.pow(1000, torch.arange(8, device=device, dtype=dtype) / 8)
    phases = (100.0 * position.unsqueeze(-1) * frequencies).flatten(-2)  # (B, R, R, 4, 8) -> 32
    return torch.cat((torch.sin(phases), torch.cos(phases)), dim=-1)


def _lin(p, key, x):
    return F.linear(x, p[f"{key}.weight"], p[f"{key}.bias"])


def _norm(p, key, x):
    return F.layer_norm(x, (x.shape[-1],), p[f"{key}.weight"], p[f"{key}.bias"])


def encoder(p, T, h, grid, dropout, training):
    """``h`` ``(B, R, d)`` -> encoded ``(B, R, d)``; geometry per image, attention dropout fixed at 0.1."""
    B, R, d = h.shape
    L = f"{T}.transformer_encoder.layers.0"
    E = geometry_per_image(B, grid, h.device, h.dtype)
    g = F.relu(_lin(p, f"{T}.transformer_encoder.WGs.0", E.view(-1, 64)).view(B, 1, R, R))
    q = _lin(p, f"{L}.mhatt.attention.fc_q", h).view(B, R, 1, d).permute(0, 2, 1, 3)
    k = _lin(p, f"{L}.mhatt.attention.fc_k", h).view(B, R, 1, d).permute(0, 2, 3, 1)
    v = _lin(p, f"{L}.mhatt.attention.fc_v", h).view(B, R, 1, d).permute(0, 2, 1, 3)
    weights = torch.softmax(torch.matmul(q, k) / math.sqrt(d) - g, dim=-1)
    weights = F.dropout(weights, 0.1 if dropout > 0 else 0.0, training)
    out = _lin(p, f"{L}.mhatt.attention.fc_o", torch.matmul(weights, v).permute(0, 2, 1, 3).reshape(B, R, d))
    a = _norm(p, f"{L}.mhatt.layer_norm", h + F.dropout(out, dropout, training))
    a = _norm(p, f"{L}.lnorm", h + F.dropout(a, dropout, training))
    ff = _lin(p, f"{L}.pwff.fc2", F.dropout(F.relu(_lin(p, f"{L}.pwff.fc1", a)), dropout, training))
    return _norm(p, f"{L}.pwff.layer_norm", a + F.dropout(ff, dropout, training))


def _mha(p, key, q, kv, dropout, training, heads=1):
    return F.multi_head_attention_forward(
        q, kv, kv, q.shape[-1], heads, p[f"{key}.in_proj_weight"], p[f"{key}.in_proj_bias"], None, None, False,
        dropout, p[f"{key}.out_proj.weight"], p[f"{key}.out_proj.bias"], training=training, need_weights=True,
    )[0]


def decoder(p, T, tgt, memory, dropout, training, self_attention=True):
    """``tgt`` ``(Q, B, d)``, ``memory`` ``(K, B, d)`` -> ``(Q, B, d)`` (the post-norm decoder layer)."""
    D = f"{T}.transformer_decoder.layers.0"
    if self_attention:
        tgt = _norm(p, f"{D}.norm1", tgt + F.dropout(_mha(p, f"{D}.self_attn", tgt, tgt, dropout, training), dropout, training))
    tgt = _norm(p, f"{D}.norm2", tgt + F.dropout(_mha(p, f"{D}.multihead_attn", tgt, memory, dropout, training), dropout, training))
    ff = _lin(p, f"{D}.linear2", F.dropout(F.relu(_lin(p, f"{D}.linear1", tgt)), dropout, training))
    return _norm(p, f"{D}.norm3", tgt + F.dropout(ff, dropout, training))


def reference_forward(kind, p, features, dropout=0.4, training=True):
    """``[(y, e), ...]`` per stream (class scores with margin ``(B, K)``, attribute scores ``(B, I)``)."""
    B, C = features.shape[:2]
    grid = tuple(features.shape[2:])
    f = F.normalize(features.reshape(B, C, -1), dim=1).permute(0, 2, 1)  # (B, R, C)
    margin = p["mask_bias"] * p["bias"]
    classify = lambda e: torch.einsum("ki,bi->bk", p["att"], e) + margin  # noqa: E731
    if kind == "transzero":
        t = _lin(p, "transformer.embed_attr.0", p["V"]).unsqueeze(0).repeat(B, 1, 1)
        memory = encoder(p, "transformer", _lin(p, "transformer.embed_cv.0", f), grid, dropout, training).permute(1, 0, 2)
        z = decoder(p, "transformer", t.permute(1, 0, 2), memory, dropout, training).permute(1, 0, 2)
        e = torch.einsum("iv,vf,bif->bi", p["V"], p["W_1"], z)
        return [(classify(e), e)]
    V = p["V"].unsqueeze(0).repeat(B, 1, 1)
    h, t = _lin(p, "transformer_s2v.embed_cv.0", f), _lin(p, "transformer_s2v.embed_attr.0", V)
    memory = encoder(p, "transformer_s2v", h, grid, dropout, training).permute(1, 0, 2)
    z = decoder(p, "transformer_s2v", t.permute(1, 0, 2), memory, dropout, training).permute(1, 0, 2)
    e_s2v = torch.einsum("biv,vc,bic->bi", V, p["W_1_s2v"], z)
    h, t = _lin(p, "transformer_v2s.embed_cv.0", f), _lin(p, "transformer_v2s.embed_attr.0", V)
    memory = encoder(p, "transformer_v2s", h, grid, dropout, training).permute(1, 0, 2)
    u = decoder(p, "transformer_v2s", memory, t.permute(1, 0, 2), dropout, training).permute(1, 0, 2)
    sigma = torch.einsum("rbf,fc,brc->br", memory, p["W_1_v2s"], u)
    E = torch.einsum("brc,cc,bic->bir", h, p["W_4_v2s"], t)
    e_v2s = torch.einsum("bir,br->bi", E, sigma)
    return [(classify(e_s2v), e_s2v), (classify(e_v2s), e_v2s)]


def _stream_loss(p, y, e, problem, lam, lam_reg):
    onehot = p["weight_ce"][problem.labels]
    margin = p["mask_bias"] * p["bias"]
    ce = -torch.einsum("bk,bk->b", F.log_softmax(y - margin, dim=1), onehot).mean()
    calibration = -torch.log(F.softmax(y, dim=-1)[:, problem.unseen].sum(dim=1).mean())
    return ce + lam * calibration + lam_reg * F.mse_loss(e, onehot @ p["att"])


def reference_loss(kind, p, streams, problem):
    if kind == "transzero":
        (y, e), = streams
        return _stream_loss(p, y, e, problem, *TZ_WEIGHTS)
    lam, lam_reg, lam_v2s, lam_att, lam_cls, _ = TZPP_WEIGHTS
    (y1, e1), (y2, e2) = streams
    loss = _stream_loss(p, y1, e1, problem, lam, lam_reg) + lam_v2s * _stream_loss(p, y2, e2, problem, lam, lam_reg)
    return loss + lam_att * F.mse_loss(e1, e2) + lam_cls * F.mse_loss(y1, y2)


def reference_scores(kind, streams):
    return streams[0][0] if kind == "transzero" else TZPP_WEIGHTS[-1] * streams[0][0] + (1 - TZPP_WEIGHTS[-1]) * streams[1][0]


def reference_step(kind, p, optimizer, problem, dropout=0.4):
    optimizer.zero_grad(set_to_none=True)
    streams = reference_forward(kind, p, problem.features, dropout)
    loss = reference_loss(kind, p, streams, problem)
    loss.backward()
    optimizer.step()
    return loss.detach()


def zslkit_step(model, optimizer, problem):
    optimizer.zero_grad(set_to_none=True)
    loss = model.loss(model(problem.features), problem.labels)["total"]
    loss.backward()
    optimizer.step()
    return loss.detach()


def reference_optimizer(p):
    """The authors' Adam(lr 1e-4, weight decay 1e-4), PyTorch's default implementation."""
    return torch.optim.Adam([v for v in p.values() if v.requires_grad], lr=1e-4, weight_decay=1e-4)


def zslkit_optimizer(model):
    """The same Adam as zslkit's trainer builds it (multi-tensor kernels)."""
    return torch.optim.Adam([v for v in model.parameters() if v.requires_grad], lr=1e-4, weight_decay=1e-4, foreach=True)
