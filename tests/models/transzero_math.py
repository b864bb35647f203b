"""TransZero and TransZero++ written directly from the papers' math (issue 13), in float64,
on a state dict with the authors' key names -- independent of zslkit's implementation.

Everything runs per image (attribute tokens repeated for every image, the geometry embedding
built with Python loops over the box formulas), heads one by one.

Training mode (issue 28): ``masks`` are the dropout masks, already scaled (``keep / (1 - p)``), in
the layout of the authors' tensors -- encoder tensors ``(B, ...)``, decoder tensors
``(token, B, ...)``, attention weights ``(B heads, Q, K)`` -- as :func:`draw_masks` draws them: in
the order and shapes of ``nn.Dropout`` calls in the authors' forward, from the default generator.
Where they apply is written below from the papers' layers (after every sub-layer, on the
attention weights, on the feed-forward's hidden units; the encoder's attention weights at 0.1).
"""

import functools
import math

import torch
import torch.nn.functional as F

FREQS = [1000.0 ** (-k / 8) for k in range(8)]


@functools.lru_cache(maxsize=4)
def geometry_embedding(height, width):
    """E (R, R, 64) from the cell boxes of the grid, pair by pair (cached: the loops are slow)."""
    boxes = []
    for p in range(height):
        for q in range(width):
            x0, x1, y0, y1 = p / height, (p + 1) / height, q / width, (q + 1) / width
            boxes.append(((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) + 1, (y1 - y0) + 1))
    R = len(boxes)
    E = torch.zeros(R, R, 64, dtype=torch.float64)
    for r, (cx, cy, w, h) in enumerate(boxes):
        for s, (cx2, cy2, w2, h2) in enumerate(boxes):
            values = [math.log(max(abs(cx - cx2) / w, 1e-3)), math.log(max(abs(cy - cy2) / h, 1e-3)), math.log(w / w2), math.log(h / h2)]
            phases = [100.0 * v * f for v in values for f in FREQS]
            E[r, s] = torch.tensor([math.sin(a) for a in phases] + [math.cos(a) for a in phases], dtype=torch.float64)
    return E


def lin(x, st, key):
    return x @ st[key + ".weight"].T + st[key + ".bias"]


def norm(x, st, key):
    return F.layer_norm(x, (x.shape[-1],), st[key + ".weight"], st[key + ".bias"], eps=1e-5)


def _drop(x, mask):
    return x if mask is None else x * mask


def encoder(f, st, T, grid, mk=None):
    """f (C, R) one image -> tokens h (R, d), encoded m (R, d); ``mk``: this image's encoder masks."""
    mk = mk or {}
    h = lin(f.T, st, f"{T}.embed_cv.0")
    E = geometry_embedding(*grid)
    g = torch.relu(lin(E.clone(), st, f"{T}.transformer_encoder.WGs.0"))[..., 0]
    L = f"{T}.transformer_encoder.layers.0"
    q, k, v = (lin(h, st, f"{L}.mhatt.attention.fc_{n}") for n in "qkv")
    a = _drop(torch.softmax(q @ k.T / math.sqrt(h.shape[1]) - g, dim=-1), mk.get("weights"))
    o = lin(a @ v, st, f"{L}.mhatt.attention.fc_o")
    a1 = norm(h + _drop(o, mk.get("attention")), st, f"{L}.mhatt.layer_norm")
    a2 = norm(h + _drop(a1, mk.get("residual")), st, f"{L}.lnorm")
    ff = lin(_drop(torch.relu(lin(a2, st, f"{L}.pwff.fc1")), mk.get("hidden")), st, f"{L}.pwff.fc2")
    return h, norm(a2 + _drop(ff, mk.get("out")), st, f"{L}.pwff.layer_norm")


def mha(x, y, st, key, heads, weight_masks=None):
    """nn.MultiheadAttention's math, head by head: x (Q, d) queries, y (K, d) keys/values;
    ``weight_masks`` (heads, Q, K) on the attention weights (the maps returned are before it)."""
    Wq, Wk, Wv = st[key + ".in_proj_weight"].chunk(3)
    bq, bk, bv = st[key + ".in_proj_bias"].chunk(3)
    q, k, v = x @ Wq.T + bq, y @ Wk.T + bk, y @ Wv.T + bv
    width = q.shape[1] // heads
    outs, weights = [], []
    for n in range(heads):
        cols = slice(n * width, (n + 1) * width)
        a = torch.softmax(q[:, cols] @ k[:, cols].T / math.sqrt(width), dim=-1)
        outs.append(_drop(a, None if weight_masks is None else weight_masks[n]) @ v[:, cols])
        weights.append(a)
    out = torch.cat(outs, dim=1) @ st[key + ".out_proj.weight"].T + st[key + ".out_proj.bias"]
    return out, sum(weights) / heads


def decoder(tgt, mem, st, T, heads, satt, mk=None):
    """``mk``: this image's decoder masks (weights (heads, Q, K), the others (Q, width))."""
    mk = mk or {}
    D = f"{T}.transformer_decoder.layers.0"
    if satt:
        o = mha(tgt, tgt, st, f"{D}.self_attn", heads, mk.get("self_weights"))[0]
        tgt = norm(tgt + _drop(o, mk.get("self")), st, f"{D}.norm1")
    o, w = mha(tgt, mem, st, f"{D}.multihead_attn", heads, mk.get("cross_weights"))
    tgt = norm(tgt + _drop(o, mk.get("cross")), st, f"{D}.norm2")
    ff = lin(_drop(torch.relu(lin(tgt, st, f"{D}.linear1")), mk.get("hidden")), st, f"{D}.linear2")
    return norm(tgt + _drop(ff, mk.get("out")), st, f"{D}.norm3"), w


ENCODER_MASKS = ("weights", "attention", "residual", "hidden", "out")
DECODER_MASKS = ("self_weights", "self", "cross_weights", "cross", "hidden", "out")


def mask_plan(B, R, d, ffn, queries, keys, heads, satt, p, attention_p=0.1):
    """``[(part, name, shape, p)]`` of one stream, in the order the authors' forward calls its
    dropouts: encoder (tensors (B, R, .)), then decoder (``queries`` tokens attending to ``keys`` tokens)."""
    plan = [("encoder", "weights", (B, R, R), attention_p), ("encoder", "attention", (B, R, d), p),
            ("encoder", "residual", (B, R, d), p), ("encoder", "hidden", (B, R, ffn), p), ("encoder", "out", (B, R, d), p)]
    if satt:
        plan += [("decoder", "self_weights", (B * heads, queries, queries), p), ("decoder", "self", (queries, B, d), p)]
    plan += [("decoder", "cross_weights", (B * heads, queries, keys), p), ("decoder", "cross", (queries, B, d), p),
             ("decoder", "hidden", (queries, B, ffn), p), ("decoder", "out", (queries, B, d), p)]
    return plan


def draw_masks(plan):
    """``{(part, name): scaled mask}`` drawn as ``nn.Dropout`` draws on the CPU (float32 ``bernoulli_``
    from the default generator), in the plan's order, as float64."""
    return {(part, name): torch.empty(shape).bernoulli_(1 - rate).double() / (1 - rate) for part, name, shape, rate in plan}


def image_masks(masks, b, heads):
    """Image ``b``'s masks: ``(encoder dict, decoder dict)`` (``masks`` None: no dropout)."""
    if masks is None:
        return None, None
    enc = {n: masks[("encoder", n)][b] for n in ENCODER_MASKS}
    dec = {}
    for n in DECODER_MASKS:
        m = masks.get(("decoder", n))
        if m is not None:
            dec[n] = m.view(-1, heads, *m.shape[1:])[b] if n.endswith("weights") else m[:, b]
    return enc, dec


def prepare(st, x):
    st = {k: v.double() for k, v in st.items()}
    x = x.double()
    grid = tuple(x.shape[2:])
    f = F.normalize(x.reshape(x.shape[0], x.shape[1], -1), dim=1)
    att = F.normalize(st["att"], dim=1)
    margin = st["mask_bias"].reshape(-1) * st["bias"]
    return st, f, grid, att, margin


def transzero(st, x, heads=1, satt=True, masks=None):
    """Scores (B, K), attribute scores e (B, I), maps (B, I, R) of the authors' TransZero
    (``masks``: :func:`draw_masks` of the stream's :func:`mask_plan`, or None)."""
    st, f, grid, att, margin = prepare(st, x)
    V = st["V"]
    e, maps = [], []
    for b in range(f.shape[0]):
        enc, dec = image_masks(masks, b, heads)
        _, m = encoder(f[b], st, "transformer", grid, enc)
        t = lin(V, st, "transformer.embed_attr.0")
        z, w = decoder(t, m, st, "transformer", heads, satt, dec)
        e.append(torch.stack([V[i] @ st["W_1"] @ z[i] for i in range(V.shape[0])]))
        maps.append(w)
    e = torch.stack(e)
    return e @ att.T + margin, e, torch.stack(maps)


def transzero_pp(st, x, heads=1, satt=True, weight_s2v=0.9, masks=None):
    """(scores, (y_s2v, y_v2s), (e_s2v, e_v2s), (maps_s2v, maps_v2s)) of the authors' TransZeroPP
    (``masks``: ``(s2v masks, v2s masks)``, each :func:`draw_masks` of its stream's plan, or None)."""
    st, f, grid, att, margin = prepare(st, x)
    V = st["V"]
    masks_s2v, masks_v2s = masks if masks is not None else (None, None)
    e_s2v, e_v2s, maps_s2v, maps_v2s = [], [], [], []
    for b in range(f.shape[0]):
        enc, dec = image_masks(masks_s2v, b, heads)
        _, m = encoder(f[b], st, "transformer_s2v", grid, enc)
        t = lin(V, st, "transformer_s2v.embed_attr.0")
        z, w = decoder(t, m, st, "transformer_s2v", heads, satt, dec)
        e_s2v.append(torch.stack([V[i] @ st["W_1_s2v"] @ z[i] for i in range(V.shape[0])]))
        maps_s2v.append(w)
        enc, dec = image_masks(masks_v2s, b, heads)
        h, m = encoder(f[b], st, "transformer_v2s", grid, enc)
        t = lin(V, st, "transformer_v2s.embed_attr.0")
        u, w = decoder(m, t, st, "transformer_v2s", heads, satt, dec)
        sigma = torch.stack([m[r] @ st["W_1_v2s"] @ u[r] for r in range(m.shape[0])])
        W4 = st["W_4_v2s"]
        E = torch.stack([torch.stack([sum(h[r, c] * W4[c, c] * t[i, c] for c in range(t.shape[1])) for r in range(h.shape[0])]) for i in range(t.shape[0])])
        e_v2s.append(E @ sigma)
        maps_v2s.append(w.T)
    e_s2v, e_v2s = torch.stack(e_s2v), torch.stack(e_v2s)
    y_s2v, y_v2s = e_s2v @ att.T + margin, e_v2s @ att.T + margin
    return weight_s2v * y_s2v + (1 - weight_s2v) * y_v2s, (y_s2v, y_v2s), (e_s2v, e_v2s), (torch.stack(maps_s2v), torch.stack(maps_v2s))


def stream_terms(y, e, labels, st):
    """The unweighted terms of one stream: (CE with the margin removed, self-calibration, MSE(e, A[labels]))."""
    att = F.normalize(st["att"].double(), dim=1)
    margin = (st["mask_bias"].reshape(-1) * st["bias"]).double()
    unseen = st["mask_bias"].reshape(-1) > 0
    ce = -torch.log_softmax(y - margin, dim=1)[torch.arange(len(labels)), labels].mean()
    sc = -torch.log(torch.softmax(y, dim=1)[:, unseen].sum(1).mean())
    reg = ((e - att[labels]) ** 2).mean()
    return ce, sc, reg


def stream_loss(y, e, labels, st, lam, lam_reg):
    """CE (margin removed) + lam * self-calibration + lam_reg * MSE(e, A[labels])."""
    ce, sc, reg = stream_terms(y, e, labels, st)
    return ce + lam * sc + lam_reg * reg


def official_state(pp, *, C=10, D=6, d=8, ffn=12, I=5, K=6, seed=0):  # noqa: E741
    """Random tensors under the authors' key names and shapes (incl. the unused ones)."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *shape, s=0.5: torch.randn(*shape, generator=g) * s  # noqa: E731
    mask_bias = torch.ones(1, K)
    mask_bias[0, ::2] = -1
    st = {"V": rnd(I, D, s=1.0), "att": F.normalize(torch.rand(K, I, generator=g), dim=1), "bias": torch.tensor(1.0),
          "mask_bias": mask_bias, "weight_ce": torch.eye(K)}

    def transformer(T):
        for key, shape in {"embed_cv.0": (d, C), "embed_cv_aux.0": (d, C), "embed_attr.0": (d, D), "transformer_encoder.WGs.0": (1, 64)}.items():
            st[f"{T}.{key}.weight"], st[f"{T}.{key}.bias"] = rnd(*shape), rnd(shape[0])
        L = f"{T}.transformer_encoder.layers.0"
        for key, shape in {"mhatt.attention.fc_q": (d, d), "mhatt.attention.fc_k": (d, d), "mhatt.attention.fc_v": (d, d),
                           "mhatt.attention.fc_o": (d, d), "pwff.fc1": (ffn, d), "pwff.fc2": (d, ffn)}.items():
            st[f"{L}.{key}.weight"], st[f"{L}.{key}.bias"] = rnd(*shape), rnd(shape[0])
        for key in ("mhatt.layer_norm", "lnorm", "pwff.layer_norm"):
            st[f"{L}.{key}.weight"], st[f"{L}.{key}.bias"] = 1 + rnd(d, s=0.1), rnd(d, s=0.1)
        Dl = f"{T}.transformer_decoder.layers.0"
        for key in ("self_attn", "multihead_attn"):
            st[f"{Dl}.{key}.in_proj_weight"], st[f"{Dl}.{key}.in_proj_bias"] = rnd(3 * d, d), rnd(3 * d)
            st[f"{Dl}.{key}.out_proj.weight"], st[f"{Dl}.{key}.out_proj.bias"] = rnd(d, d), rnd(d)
        for key, shape in {"linear1": (ffn, d), "linear2": (d, ffn)}.items():
            st[f"{Dl}.{key}.weight"], st[f"{Dl}.{key}.bias"] = rnd(*shape), rnd(shape[0])
        for key in ("norm1", "norm2", "norm3"):
            st[f"{Dl}.{key}.weight"], st[f"{Dl}.{key}.bias"] = 1 + rnd(d, s=0.1), rnd(d, s=0.1)

    if pp:
        transformer("transformer_s2v")
        transformer("transformer_v2s")
        st.update(W_1_s2v=rnd(D, d), W_3_s2v=rnd(D, d), W_1_v2s=rnd(d, d, s=0.1), W_3_v2s=rnd(C, d), W_4_v2s=rnd(d, d))
    else:
        transformer("transformer")
        st["W_1"] = rnd(D, d)
    return st
