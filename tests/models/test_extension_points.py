"""Room for the next models: a shared encoder, the region grid reaching blocks, per-branch extras and
constants, loss terms declaring what they read."""

import numpy as np
import pytest
import torch

from tests.models.test_msdn import N_ATTR, UNSEEN, C, D, H, K, W, features, make
from zslkit.attention import AttentionOutput, AttributeToVisual
from zslkit.contracts import ContractError
from zslkit.models import ModelOutput
from zslkit.registry import register, unregister
from zslkit.training.checkpoint import build_model, load_checkpoint, save_checkpoint

ENCODED = 5


def randomize(model, seed=2):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return model


# ------------------------------------------------------------------------------------------- encoder


def with_encoder(relu=True):
    return make(encoder={"encoder": "linear_encoder", "output_dim": ENCODED, "relu": relu})


def test_msdn_with_linear_encoder_equals_an_independent_computation():
    model = randomize(with_encoder())
    x = features()
    out = model(x)
    # independent: loops over images and regions, plain matrix products
    We, be = model.encoder.proj.weight.detach(), model.encoder.proj.bias.detach()
    V = model.V.detach()
    a2v, v2a = model.branches["a2v"], model.branches["v2a"]
    A = torch.nn.functional.normalize(torch.as_tensor(np.random.default_rng(0).random((K, N_ATTR)), dtype=torch.float32), dim=1)
    m = torch.tensor([1.0 if k in UNSEEN else -1.0 for k in range(K)])
    for b in range(3):
        regions = x[b].reshape(C, H * W)
        e = torch.stack([torch.relu(We @ (regions[:, r] / regions[:, r].norm()) + be) for r in range(H * W)], dim=1)  # (5, R)
        s = V @ a2v.W1.detach() @ e                                    # (I, R)
        att = torch.softmax(V @ a2v.W2.detach() @ e, dim=1)             # over regions
        psi = (att * s).sum(1)
        s2 = (e.T @ v2a.U1.detach() @ V.T).T                            # (I, R)
        att2 = torch.softmax(V @ v2a.U2.detach() @ e, dim=0)            # over attributes
        psi2 = (att2 * s2).sum(1)
        y, y2 = A @ psi + m, A @ psi2 + m
        torch.testing.assert_close(out.attribute_scores["a2v"][b], psi, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(out.attribute_scores["v2a"][b], psi2, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(out.scores[b], 0.9 * y + 0.1 * y2, rtol=1e-4, atol=1e-4)


def test_the_encoder_is_one_module_shared_by_both_branches_and_trained_by_both():
    model = randomize(with_encoder(relu=False))
    assert model.branches["a2v"].W1.shape == (D, ENCODED) and model.branches["v2a"].U1.shape == (ENCODED, D)
    assert [k for k in model.state_dict() if k.startswith("encoder.")] == ["encoder.proj.weight", "encoder.proj.bias"]
    x = features()

    def encoder_grad(*branches):
        model.zero_grad()
        out = model(x)
        sum(out.branch_scores[name].square().sum() for name in branches).backward()
        return model.encoder.proj.weight.grad.clone()

    from_a2v, from_v2a, from_both = encoder_grad("a2v"), encoder_grad("v2a"), encoder_grad("a2v", "v2a")
    assert from_a2v.abs().max() > 0 and from_v2a.abs().max() > 0
    torch.testing.assert_close(from_both, from_a2v + from_v2a, rtol=1e-4, atol=1e-5)


def test_model_options_record_the_encoder_and_checkpoints_rebuild_it(tmp_path):
    model = randomize(with_encoder()).eval()
    assert model.options["encoder"] == {"encoder": "linear_encoder", "output_dim": ENCODED, "relu": True}
    assert make().options["encoder"] is None
    rebuilt = build_model(load_checkpoint(save_checkpoint(tmp_path, 1, model))).eval()
    assert isinstance(rebuilt.encoder, type(model.encoder)) and rebuilt.encoder.relu
    torch.testing.assert_close(rebuilt(features()).scores, model(features()).scores)


def test_encoder_specs_and_outputs_are_checked():
    with pytest.raises(ValueError, match="encoder must be None, a registered encoder name or"):
        make(encoder=3)
    with pytest.raises(KeyError, match="no encoder named 'linear_encodr'; did you mean 'linear_encoder'"):
        make(encoder="linear_encodr")

    @register("encoder", "test_wrong_width")
    class WrongWidth(torch.nn.Module):
        def __init__(self, feature_dim):
            super().__init__()
            self.output_dim = 3

        def forward(self, features, grid):
            return features  # (B, C, R), not (B, 3, R)

    @register("encoder", "test_no_width")
    class NoWidth(torch.nn.Module):
        def __init__(self, feature_dim):
            super().__init__()

    try:
        with pytest.raises(ContractError, match=r"encoder 'test_wrong_width' \(.*WrongWidth\): forward must return \(3, 3, 6\)"):
            make(encoder="test_wrong_width")(features())
        with pytest.raises(ContractError, match=r"encoder 'test_no_width' \(.*NoWidth\): must have an int attribute output_dim"):
            make(encoder="test_no_width")
    finally:
        unregister("encoder", "test_wrong_width")
        unregister("encoder", "test_no_width")


# ------------------------------------------------------------------------- grid, extras, constants


class GridBlock(AttributeToVisual):
    """attribute_to_visual plus extras (the grid-shaped mean over columns) and a constant (its W1)."""

    provides_extras = ("row_means", "pooled")

    def forward(self, features, embeddings, grid):
        base = super().forward(features, embeddings)
        extras = {"pooled": features.mean(2)}
        if grid is not None:
            extras["row_means"] = features.reshape(*features.shape[:2], *grid).mean(3)  # (B, C, H)
        return AttentionOutput(base.scores, base.maps, extras=extras, constants={"W1": self.W1})


class ReadsExtras(torch.nn.Module):
    """``log(mean_b ||row_means_b||^2)`` of branch "g" plus ``sum(W1)`` -- not a batch mean."""

    needs_grid = True
    needs_extras = ("row_means",)

    def __init__(self, branches=("g",)):
        super().__init__()
        self.branches = list(branches)

    def forward(self, output, labels, classes):
        rows = output.extras["g"]["row_means"]
        return rows.square().sum((1, 2)).mean().log() + output.constants["g"]["W1"].sum()


@pytest.fixture
def grid_parts():
    register("attention", "test_grid_block")(GridBlock)
    register("loss", "test_reads_extras")(ReadsExtras)
    yield
    unregister("attention", "test_grid_block")
    unregister("loss", "test_reads_extras")


def grid_model(**losses):
    return make(branches={"g": "test_grid_block", "a2v": "attribute_to_visual"},
                losses={"attribute_ce": 1.0, **losses})


def test_the_grid_reaches_blocks_that_ask_for_it_and_the_output(grid_parts):
    model = randomize(grid_model())
    x = features()
    out = model(x)
    assert out.grid == (H, W)
    f = torch.nn.functional.normalize(x.reshape(3, C, H * W), dim=1)
    torch.testing.assert_close(out.extras["g"]["row_means"], f.reshape(3, C, H, W).mean(3))
    torch.testing.assert_close(out.extras["g"]["pooled"], f.mean(2))
    assert out.constants["g"]["W1"] is model.branches["g"].W1 and out.extras["a2v"] == {} and out.constants["a2v"] == {}
    flat = model(x.reshape(3, C, H * W))  # (B, C, R): grid None, other blocks unchanged
    assert flat.grid is None and "row_means" not in flat.extras["g"]
    torch.testing.assert_close(flat.scores, out.scores)


def test_a_loss_reads_extras_and_constants(grid_parts):
    model = randomize(grid_model(test_reads_extras=0.5))
    x, labels = features(), torch.tensor([0, 1, 3])
    losses = model.loss(model(x), labels)
    f = torch.nn.functional.normalize(x.reshape(3, C, H * W), dim=1).reshape(3, C, H, W)
    expected = f.mean(3).square().sum((1, 2)).mean().log() + model.branches["g"].W1.sum()
    torch.testing.assert_close(losses["test_reads_extras"], expected)
    torch.testing.assert_close(losses["total"], losses["attribute_ce"] + 0.5 * expected)


def test_loss_needs_are_checked_at_build_and_before_the_term_runs(grid_parts):
    class NeedsOther(ReadsExtras):
        needs_extras = ("prototypes",)

    register("loss", "test_needs_other")(NeedsOther)
    try:
        with pytest.raises(ContractError, match=r"loss 'test_needs_other' \(term 'test_needs_other', .*NeedsOther\) needs "
                                                r"extras 'prototypes' of branch 'g', whose block GridBlock gives \['pooled', 'row_means'\]"):
            grid_model(test_needs_other=1.0)
    finally:
        unregister("loss", "test_needs_other")
    model = randomize(grid_model(test_reads_extras=1.0))
    with pytest.raises(ContractError, match=r"loss 'test_reads_extras' .* needs the region grid: give features as \(B, C, H, W\)"):
        model.loss(model(features().reshape(3, C, H * W)), torch.tensor([0, 1, 3]))
    # a block that does not declare its extras: the need is checked on the output
    quiet = make(branches={"g": "attribute_to_visual"}, losses={"test_reads_extras": 1.0})
    with pytest.raises(ContractError, match=r"needs extras 'row_means' of branch 'g', whose block AttributeToVisual gives \[\]"):
        quiet.loss(quiet(features()), torch.tensor([0, 1, 3]))


def test_block_extras_must_be_batch_first(grid_parts):
    class BadExtras(AttributeToVisual):
        def forward(self, features, embeddings):
            base = super().forward(features, embeddings)
            return AttentionOutput(base.scores, base.maps, extras={"prototypes": self.W1})  # (D, C): not per image

    register("attention", "test_bad_extras")(BadExtras)
    try:
        model = make(branches={"b": "test_bad_extras"}, losses={"attribute_ce": 1.0})
        with pytest.raises(ContractError, match=r"attention 'test_bad_extras' \(branch 'b', .*\): .extras\['prototypes'\] "
                                                r"must be batch-first \(3, ...\); found shape \(4, 6\)"):
            model(features())
    finally:
        unregister("attention", "test_bad_extras")


def test_model_output_float_converts_every_floating_tensor_of_every_field():
    half = torch.tensor([[1.5, 2.25]], dtype=torch.bfloat16)
    out = ModelOutput(scores=half, branch_scores={"b": half}, attribute_scores={"b": half}, maps={"b": None, "c": half},
                      extras={"b": {"e": half, "index": torch.tensor([3])}}, constants={"b": {"p": half}}, grid=(2, 3))
    full = out.float()
    for value in (full.scores, full.branch_scores["b"], full.attribute_scores["b"], full.maps["c"], full.extras["b"]["e"],
                  full.constants["b"]["p"]):
        assert value.dtype == torch.float32 and value.tolist() == [[1.5, 2.25]]
    assert full.maps["b"] is None and full.grid == (2, 3)
    assert full.extras["b"]["index"].dtype == torch.int64 and full.extras["b"]["index"].tolist() == [3]
