"""The benchmark's MSDN steps (fused op, einsum reference, the paper code's cost structure) compute
the same values; nothing here is timed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import reference_msdn as ref  # noqa: E402
import step_bench  # noqa: E402

SHAPES = ref.QUICK


def _loss_and_grads(variant, dtype=torch.float64):
    spec = step_bench.VARIANTS[variant]
    parameters = ref.make_parameters(SHAPES, seed=1, dtype=dtype, gates=spec.gates)
    loss = ref.step_loss(spec.forward, parameters, ref.make_problem(SHAPES, dtype=dtype))
    return [loss, *torch.autograd.grad(loss, [parameters[name] for name in ref.MODEL_PARAMETERS])]


@pytest.mark.parametrize("variant", ["paper-code", "fused", "fused-recompute"])
def test_fused_step_has_the_reference_loss_and_gradients(variant):
    expected = _loss_and_grads("reference")
    assert all(g.abs().max() > 0 for g in expected[1:])  # every parameter is trained
    for actual, wanted in zip(_loss_and_grads(variant), expected):
        torch.testing.assert_close(actual, wanted, rtol=1e-10, atol=1e-12)


def test_fused_forward_scores_match_the_definition():
    parameters = ref.make_parameters(SHAPES, dtype=torch.float64)
    problem = ref.make_problem(SHAPES, dtype=torch.float64)
    x = problem.features.flatten(2)
    f = x / x.norm(dim=1, keepdim=True)
    v, w1, w2, u1, u2 = (parameters[name].detach() for name in ("V", "W1", "W2", "U1", "U2"))
    a = torch.softmax(torch.einsum("id,dc,bcr->bir", v, w2, f), dim=2)
    a2v = (a * torch.einsum("id,dc,bcr->bir", v, w1, f)).sum(2)
    a = torch.softmax(torch.einsum("id,dc,bcr->bir", v, u2, f), dim=1)
    v2a = (a * torch.einsum("bcr,cd,id->bir", f, u1, v)).sum(2)
    for actual, expected in zip(step_bench.fused_forward(parameters, problem.features), (a2v, v2a)):
        torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-12)


def test_one_training_step_lands_on_the_same_parameters():
    after = {}
    for variant in ("reference", "fused"):
        parameters = ref.make_parameters(SHAPES, dtype=torch.float64)
        optimizer = ref.make_optimizer(parameters, step_bench.VARIANTS[variant].foreach)
        problem = ref.make_problem(SHAPES, dtype=torch.float64)
        for _ in range(2):
            ref.train_step(step_bench.VARIANTS[variant].forward, parameters, optimizer, problem)
        after[variant] = parameters
    start = ref.make_parameters(SHAPES, dtype=torch.float64)
    for name, value in after["reference"].items():
        assert not torch.equal(value, start[name])
        torch.testing.assert_close(after["fused"][name], value, rtol=1e-9, atol=1e-12)


def test_msdn_loss_terms():
    problem = ref.make_problem(SHAPES, dtype=torch.float64)
    generator = torch.Generator().manual_seed(3)
    y1, y2 = (
        torch.randn(SHAPES.batch, SHAPES.classes, generator=generator, dtype=torch.float64) for _ in "12"
    )
    expected = 0.0
    for y in (y1, y2):
        for b in range(SHAPES.batch):
            z = y[b] - problem.margin
            expected += (torch.logsumexp(z, 0) - z[problem.labels[b]]) / SHAPES.batch
        unseen = torch.stack([torch.softmax(y[b], 0)[problem.unseen].sum() for b in range(SHAPES.batch)])
        expected -= 0.1 * torch.log(unseen.mean())
    d = y1 - y2
    cubic = sum((d[b].abs() ** 3).sum() / d[b].norm() for b in range(SHAPES.batch)) / SHAPES.batch
    p, q = torch.softmax(y1, 1), torch.softmax(y2, 1)
    m = (p + q) / 2
    js = (0.5 * (p * (p / m).log()).sum() + 0.5 * (q * (q / m).log()).sum()) / SHAPES.batch
    expected += 0.001 * (cubic + js)
    torch.testing.assert_close(ref.msdn_loss(y1, y2, problem), expected)


def test_quick_run_writes_a_record(tmp_path):
    out = tmp_path / "record.json"
    step_bench.main(["--quick", "--device", "cpu", "--steps", "1", "--warmup", "0", "--out", str(out)])
    record = json.loads(out.read_text())
    assert {row["variant"] for row in record["results"]} == set(step_bench.DEFAULT_VARIANTS)
    assert all(check["ok"] for check in record["correctness"]["cpu"].values())
    assert record["devices"]["cpu"]["torch"] == torch.__version__


# ------------------------------------------------------------------ TransZero and TransZero++
import reference_transzero as tz  # noqa: E402


@pytest.mark.parametrize("kind", tz.KINDS)
def test_transzero_reference_step_equals_zslkit_and_its_cost_structure(kind):
    problem = ref.make_problem(SHAPES, dtype=torch.float64)
    state = tz.make_state(kind, SHAPES, problem)
    parameters = tz.reference_parameters(state, dtype=torch.float64)
    model = tz.zslkit_model(kind, state, 0.0, dtype=torch.float64)
    streams = tz.reference_forward(kind, parameters, problem.features, dropout=0.0)
    output = model(problem.features)
    # zslkit's geometry embedding is float32 (the authors' arithmetic), the reference's float64
    torch.testing.assert_close(output.scores, tz.reference_scores(kind, streams), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.loss(output, problem.labels)["total"], tz.reference_loss(kind, parameters, streams, problem),
                               rtol=1e-5, atol=1e-6)
    # the reference builds the geometry for every image
    embedding = tz.geometry_per_image(SHAPES.batch, (SHAPES.height, SHAPES.width), "cpu", torch.float32)
    assert embedding.shape == (SHAPES.batch, 9, 9, 64) and torch.equal(embedding[0], embedding[-1])


def test_quick_run_writes_transzero_rows(tmp_path):
    out = tmp_path / "record.json"
    step_bench.main(["--quick", "--device", "cpu", "--steps", "1", "--warmup", "0", "--models", "transzero,transzero_pp",
                     "--out", str(out)])
    record = json.loads(out.read_text())
    assert record["results"] == [] and all(check["ok"] for check in record["transzero"]["correctness"].values())
    rows = {(row["model"], row["variant"]) for row in record["transzero"]["results"]}
    assert rows == {(kind, variant) for kind in tz.KINDS for variant in ("reference", "zslkit")}
