"""The registered episodic (n-way k-shot) sampler and the trainer's registered-sampler path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zslkit
from zslkit.datasets import EpisodicSampler
from zslkit.registry import register_component, unregister
from zslkit.training import TrainConfig, batch_indices, load_config, train

TINY = dict(num_classes=8, family_size=4, images_per_class=10, channels=8, grid=3, embedding_dim=6, seed=0)


@pytest.fixture(scope="module")
def dataset():
    return zslkit.load_dataset("synthetic", **TINY)


def test_every_batch_is_n_classes_times_k_distinct_images(dataset):
    indices, labels = dataset.splits["trainval"], dataset.labels
    sampler = zslkit.create("sampler", "episodic", ways=3, shots=2)
    batches = list(sampler(indices, labels, 999, np.random.default_rng(0)))
    assert len(batches) == -(-len(indices) // 6)  # default: ceil(N / (ways * shots)) batches
    for batch in batches:
        assert batch.shape == (6,) and np.isin(batch, indices).all()
        classes = labels[batch].reshape(3, 2)  # listed class by class
        assert (classes == classes[:, :1]).all() and len(set(classes[:, 0])) == 3
        assert len(set(batch.tolist())) == 6
    assert len(list(EpisodicSampler(2, 2, batches=5)(indices, labels, 1, np.random.default_rng(0)))) == 5
    # over many batches every seen class and every image of the split turns up
    many = np.concatenate(list(EpisodicSampler(3, 2, batches=400)(indices, labels, 1, np.random.default_rng(1))))
    assert set(labels[many].tolist()) == set(dataset.seen_classes.tolist()) and set(many.tolist()) == set(indices.tolist())


def test_deterministic_per_seed_and_the_rules_for_small_splits(dataset):
    indices, labels = dataset.splits["trainval"], dataset.labels
    sampler = EpisodicSampler(ways=2, shots=3)

    def draw(seed):
        return np.stack(list(sampler(indices, labels, 1, np.random.default_rng(seed))))

    assert np.array_equal(draw(5), draw(5)) and not np.array_equal(draw(5), draw(6))
    first, second = dataset.seen_classes[:2]
    small = np.concatenate([indices[labels[indices] == first][:5], indices[labels[indices] == second][:2]])
    with pytest.raises(ValueError, match=f"class {second} has 2 images in the split, fewer than shots=3; lower shots"):
        list(sampler(small, labels, 1, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="ways=50 but the split has .* classes; lower ways"):
        list(EpisodicSampler(50, 1)(indices, labels, 1, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="shots must be a positive integer"):
        EpisodicSampler(2, 0)


def test_config_names_registered_samplers_and_checks_their_options():
    config = load_config(None, sampler="episodic", sampler_options={"ways": 4, "shots": 2})
    assert config.sampler_options == {"ways": 4, "shots": 2} and TrainConfig().sampler_options == {}
    with pytest.raises(ValueError, match="sampler_options: sampler 'episodic' has no option 'way'; did you mean 'ways'"):
        TrainConfig(sampler="episodic", sampler_options={"way": 4, "shots": 2})
    with pytest.raises(ValueError, match="sampler_options: sampler 'shuffle' has no option 'ways'"):
        TrainConfig(sampler_options={"ways": 4})
    with pytest.raises(ValueError, match="did you mean 'episodic'"):
        TrainConfig(sampler="episodik")
    assert "episodic" in zslkit.list_components("sampler")


def seen_batches(dataset, config):
    """The image indices of every batch the model's forward received, found from a marker channel."""
    marked = zslkit.load_dataset("synthetic", **TINY)
    marked.features = marked.features.copy()
    marked.features[:, 0, 0, 0] = np.arange(marked.num_images)  # channel 0 of cell 0 holds the image index
    model = zslkit.create_model("msdn", class_attributes=marked.class_attributes, attribute_embeddings=marked.attribute_embeddings,
                                seen_classes=marked.seen_classes, unseen_classes=marked.unseen_classes, feature_dim=marked.feature_dim)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0][:, 0, 0, 0].round().long().tolist()))
    train(marked, model, config, progress=False)
    return marked, seen


def test_training_sees_exactly_the_episodes(dataset):
    config = TrainConfig(epochs=2, batch_size=5, lr=1e-3, sampler="episodic", sampler_options={"ways": 3, "shots": 2, "batches": 4})
    marked, seen = seen_batches(dataset, config)
    rng = np.random.default_rng(config.seed)  # the trainer's generator: seeded by the config, used for batches only
    sampler = EpisodicSampler(3, 2, batches=4)
    expected = [b.tolist() for _ in range(2) for b in sampler(marked.splits["trainval"], marked.labels, 5, rng)]
    assert seen == expected and all(len(b) == 6 for b in seen)


def test_the_registered_path_differs_from_the_default_only_in_batching(dataset):
    """A registered sampler that replays the default's batches trains to the very same weights."""
    def replay(indices, labels, batch_size, rng):
        return batch_indices("shuffle", indices, labels, batch_size, rng)

    register_component("sampler", "replay_shuffle", lambda: replay)
    try:
        base = TrainConfig(epochs=2, batch_size=16, lr=1e-3)
        default = train(dataset, "msdn", base, progress=False)
        replayed = train(dataset, "msdn", load_config(base, sampler="replay_shuffle"), progress=False)
    finally:
        unregister("sampler", "replay_shuffle")
    a, b = default.model.state_dict(), replayed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in default.history] == [h["loss"] for h in replayed.history]


def test_train_cli_takes_the_sampler_and_its_options(tmp_path, capsys):
    from zslkit.cli import main
    from zslkit.training import load_checkpoint

    data = [f"--dataset-option={k}={v}" for k, v in TINY.items()]
    argv = ["train", *data, "--epochs", "1", "--no-progress", "--out", str(tmp_path / "run"), "--set", "sampler=episodic",
            "--set", "sampler_options.ways=3", "--set", "sampler_options.shots=2", "--set", "sampler_options.batches=3"]
    assert main(argv) == 0, capsys.readouterr().err
    config = load_checkpoint(tmp_path / "run").meta["config"]
    assert config["sampler"] == "episodic" and config["sampler_options"] == {"ways": 3, "shots": 2, "batches": 3}
    assert main([*argv[:-2], "--set", "sampler_options.bad=1"]) == 2
    assert "sampler 'episodic' has no option 'bad'" in capsys.readouterr().err
