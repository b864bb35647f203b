"""Importing a checkpoint laid out like the authors' MSDN code (keys built here from the documented list)."""

import pytest
import torch
import torch.nn.functional as F

from zslkit.interop import load_official_msdn
from zslkit.models import MSDN

K, N_ATTR, D, C, R = 7, 5, 4, 6, 9
SEEN, UNSEEN = [0, 1, 3, 4, 6], [2, 5]


def official_state(bias=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask_bias = torch.ones(1, K)
    mask_bias[0, SEEN] = -1
    return {
        "V": torch.randn(N_ATTR, D, generator=g),
        "att": F.normalize(torch.rand(K, N_ATTR, generator=g), dim=1),
        "W_1": torch.randn(D, C, generator=g),
        "W_2": torch.randn(D, C, generator=g),
        "W_3": torch.randn(D, C, generator=g),
        "W_1_1": torch.randn(C, D, generator=g),
        "W_2_1": torch.randn(D, C, generator=g),
        "W_3_1": torch.randn(C, D, generator=g),
        "mask_bias": mask_bias,
        "bias": torch.tensor(bias),
        "weight_ce": torch.eye(K),
    }


def reference_scores(state, x, normalize_v=False):
    """The published forward, written directly: two branches, margin mask_bias * bias, 0.9 / 0.1 mix."""
    f = F.normalize(x.reshape(x.shape[0], C, -1), dim=1)
    V = F.normalize(state["V"], dim=1) if normalize_v else state["V"]
    att, margin = state["att"], state["mask_bias"] * state["bias"]
    s = torch.einsum("iv,vf,bfr->bir", V, state["W_1"], f)
    a = torch.einsum("iv,vf,bfr->bir", V, state["W_2"], f).softmax(dim=-1)
    y_a2v = torch.einsum("ki,bi->bk", att, (a * s).sum(-1)) + margin
    s2 = torch.einsum("bfr,fv,iv->bri", f, state["W_1_1"], V)
    a2 = torch.einsum("iv,vf,bfr->bir", V, state["W_2_1"], f).softmax(dim=1)
    y_v2a = torch.einsum("ki,bi->bk", att, torch.einsum("bir,bri->bi", a2, s2)) + margin
    return 0.9 * y_a2v + 0.1 * y_v2a


@pytest.mark.parametrize("bias", [1.0, 0.0])
def test_round_trip_through_a_file_matches_the_published_math(tmp_path, bias):
    state = official_state(bias)
    path = tmp_path / "CUB_MSDN_GZSL.pth"
    torch.save(state, path)
    model = load_official_msdn(path)
    assert isinstance(model, MSDN)
    assert model.classes.seen.tolist() == SEEN and model.classes.unseen.tolist() == UNSEEN
    assert model.classes.margin.tolist() == (state["mask_bias"][0] * bias).tolist()
    assert torch.equal(model.V, state["V"]) and torch.equal(model.branches["v2a"].U1, state["W_1_1"])
    x = torch.randn(4, C, 3, 3, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.allclose(model(x).scores, reference_scores(state, x), rtol=1e-5, atol=1e-5)


def test_wrapped_and_data_parallel_state_dicts_and_normalize_v():
    state = official_state()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}}
    model = load_official_msdn(wrapped, normalize_embeddings=True)
    x = torch.randn(2, C, R, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert torch.allclose(model(x).scores, reference_scores(state, x, normalize_v=True), rtol=1e-5, atol=1e-5)


class NotTensors:
    pass


def test_pickled_objects_are_refused_not_executed(tmp_path):
    path = tmp_path / "whole_module.pth"
    torch.save({"model": NotTensors()}, path)
    with pytest.raises(ValueError, match="not a plain state dict of tensors"):
        load_official_msdn(path)


def test_missing_keys_and_wrong_shapes_are_named(tmp_path):
    state = official_state()
    del state["W_2_1"]
    with pytest.raises(ValueError, match="missing key\\(s\\) W_2_1"):
        load_official_msdn(state)
    state = official_state()
    state["W_2"] = torch.zeros(D, C + 1)
    with pytest.raises(ValueError, match="'W_2' must have shape \\(4, 6\\), found \\(4, 7\\)"):
        load_official_msdn(state)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_official_msdn(tmp_path / "nothing.pth")
