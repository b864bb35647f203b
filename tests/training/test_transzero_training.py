"""TransZero and TransZero++ through the trainer, the CLI, checkpoints, resume and the attention viz."""

import numpy as np
import pytest
import torch

import zslkit
from tests.training.test_trainer import state_equal
from zslkit.cli import main
from zslkit.training import TrainConfig, load_model, predict_scores, train
from zslkit.viz import top_attribute_maps

TINY = dict(num_classes=8, family_size=4, images_per_class=8, channels=8, grid=3, embedding_dim=6, seed=0)
SMALL = {"dim": 8, "ffn_dim": 12, "dropout": 0.1}
OPTIONS = {
    "transzero": {"encoder": {"encoder": "geometry_encoder", **SMALL},
                  "branches": {"s2v": {"attention": "attribute_query_decoder", "heads": 2, "ffn_dim": 12, "dropout": 0.1}}},
    "transzero_pp": {"branches": {
        "s2v": {"attention": "attribute_query_decoder", "weight": 0.9, "ffn_dim": 12, "encoder": {"encoder": "geometry_encoder", **SMALL}},
        "v2s": {"attention": "region_query_decoder", "weight": 0.1, "ffn_dim": 12, "encoder": {"encoder": "geometry_encoder", **SMALL}},
    }},
}


def config(model, epochs=2):
    return TrainConfig(model=model, epochs=epochs, batch_size=16, optimizer="adam", lr=1e-3, model_options=OPTIONS[model])


@pytest.fixture(scope="module")
def dataset():
    return zslkit.load_dataset("synthetic", **TINY)


@pytest.mark.parametrize("model", ["transzero", "transzero_pp"])
def test_checkpoint_rebuilds_the_model_and_resume_continues_exactly(dataset, tmp_path, model):
    straight = train(dataset, model, config(model), progress=False)
    assert {"loss_attribute_ce", "loss_attribute_regression"} <= set(straight.history[0])
    train(dataset, model, config(model, epochs=1), out_dir=tmp_path, progress=False)
    resumed = train(dataset, model, config(model), out_dir=tmp_path, resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert state_equal(straight.model, resumed.model)
    reloaded = load_model(tmp_path)
    assert type(reloaded) is type(straight.model) and reloaded.options == straight.model.options
    idx = dataset.splits["test_unseen"]
    assert np.allclose(predict_scores(reloaded, dataset, idx), predict_scores(resumed.model, dataset, idx))
    # the viz reads the decoder's maps: the cross-attention weights, over the grid
    features = torch.as_tensor(dataset.features[idx[:1]])
    panels = top_attribute_maps(reloaded, features[0], top_k=2)
    output = reloaded(features)
    for branch, maps in panels.items():
        grids = output.maps[branch][0].reshape(-1, 3, 3)
        assert [p.attribute for p in maps] == torch.topk(output.attribute_scores[branch][0], 2).indices.tolist()
        assert all(np.allclose(p.map, grids[p.attribute].detach().numpy()) for p in maps)


def test_cli_train_and_eval_transzero(tmp_path, capsys):
    recipe = tmp_path / "tz.yaml"
    recipe.write_text("model: transzero\nepochs: 1\nbatch_size: 16\noptimizer: adam\nlr: 1.0e-3\nmodel_options:\n"
                      "  encoder: {encoder: geometry_encoder, dim: 8, ffn_dim: 12}\n"
                      "  branches: {s2v: {attention: attribute_query_decoder, ffn_dim: 12}}\n")
    data = [f"--dataset-option={k}={v}" for k, v in TINY.items()]
    out = tmp_path / "run"
    assert main(["train", "--config", str(recipe), "--no-progress", "--out", str(out), *data]) == 0
    trained = capsys.readouterr().out
    assert main(["eval", str(out), *data]) == 0
    row = lambda text, name: next(line for line in text.splitlines() if line.startswith(f"| {name}")).split("|")[2:]  # noqa: E731
    assert row(capsys.readouterr().out, "transzero (epoch 1)") == row(trained, "transzero")


@pytest.mark.parametrize("model", ["transzero", "transzero_pp"])
def test_cli_eval_of_an_official_state_dict(tmp_path, capsys, model):
    from tests.models.transzero_math import official_state
    from zslkit.interop import load_official_transzero, load_official_transzero_pp
    from zslkit.training import evaluate

    data = zslkit.load_dataset("synthetic", **TINY)
    state = official_state(model == "transzero_pp", C=data.feature_dim, D=TINY["embedding_dim"], I=data.num_attributes, K=data.num_classes)
    side = torch.ones(1, data.num_classes)
    side[0, torch.as_tensor(data.seen_classes)] = -1
    state["mask_bias"] = side
    path = tmp_path / "official.pth"
    torch.save(state, path)
    options = [f"--dataset-option={k}={v}" for k, v in TINY.items()]
    assert main(["eval", str(path), "--official", "--official-model", model, "--dataset", "synthetic", *options]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"| {model} (official)"))
    loader = load_official_transzero if model == "transzero" else load_official_transzero_pp
    expected = evaluate(loader(path).eval(), data)
    assert row.split("|")[2].strip() == f"{100 * expected['T1']:.1f}"
