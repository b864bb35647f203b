"""The feature store under load: concurrent readers, and an extraction killed again and again."""

from __future__ import annotations

import multiprocessing
import os
import signal

import numpy as np
import pytest
import timm
import torch

from tests.datasets.conftest import make_tiny_xlsa17
from zslkit.datasets import create_store, open_store
from zslkit.datasets.store import store_status

ROWS, SHAPE = 96, (4, 3, 3)


def expected_rows() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(ROWS, *SHAPE)).astype(np.float16)


def read_and_compare(store_or_path, seed: int, batches: int, queue) -> None:
    """A reader process: random batches (as the training loop draws them), each checked against the truth."""
    try:
        store = open_store(store_or_path) if isinstance(store_or_path, (str, os.PathLike)) else store_or_path
        truth, rng = expected_rows(), np.random.default_rng(seed)
        for _ in range(batches):
            idx = np.sort(rng.choice(ROWS, size=int(rng.integers(1, 33)), replace=False))
            np.testing.assert_array_equal(store[idx], truth[idx])
        queue.put(("ok", os.getpid()))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put(("failed", f"{type(exc).__name__}: {exc}"))


def test_concurrent_readers_of_one_store_all_read_the_right_rows(tmp_path):
    writer = create_store(tmp_path / "store", (ROWS, *SHAPE))
    writer.write(0, expected_rows())
    shared = writer.finish()
    shared[[0, 1]]  # the parent has read too: its file descriptor must not leak into the children
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    readers = [context.Process(target=read_and_compare, args=(shared, 1, 300, queue)),  # inherited object
               *[context.Process(target=read_and_compare, args=(tmp_path / "store", seed, 300, queue)) for seed in (2, 3)]]
    for reader in readers:
        reader.start()
    results = [queue.get(timeout=120) for _ in readers]
    for reader in readers:
        reader.join(timeout=60)
    assert [status for status, _ in results] == ["ok"] * 3, results
    assert len({pid for _, pid in results}) == 3 and all(r.exitcode == 0 for r in readers)


def watch_while_written(path, queue) -> None:
    """A reader of a store still being written: every row it is told is done must be the final row."""
    try:
        truth, checked = expected_rows(), 0
        while checked < ROWS:
            if not (path / "store.json").is_file():
                continue
            store = open_store(path, allow_incomplete=True)
            if store.done > checked:
                np.testing.assert_array_equal(store[np.arange(store.done)], truth[: store.done])
                checked = store.done
            store.close()
        queue.put(("ok", checked))
    except BaseException as exc:  # noqa: BLE001
        queue.put(("failed", f"{type(exc).__name__}: {exc}"))


def test_readers_of_a_store_being_written_never_see_unwritten_rows(tmp_path):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    watchers = [context.Process(target=watch_while_written, args=(tmp_path / "store", queue)) for _ in range(2)]
    for watcher in watchers:
        watcher.start()
    writer, truth = create_store(tmp_path / "store", (ROWS, *SHAPE)), expected_rows()
    for start in range(0, ROWS, 8):
        writer.write(start, truth[start : start + 8])
    writer.finish()
    results = [queue.get(timeout=120) for _ in watchers]
    for watcher in watchers:
        watcher.join(timeout=60)
    assert results == [("ok", ROWS)] * 2, results


# ---------------------------------------------------------------- extraction killed again and again
# One thread: the tiny backbone runs 30x faster than with OpenMP threads competing for 2 busy cores.
ONE_THREAD = "import torch; torch.set_num_threads(1)\n"

# Run in the child before ``zslkit extract``: SIGKILL at the chosen point (POINT, WHEN filled in).
KILL = """
import os, signal
from pathlib import Path
import zslkit.datasets.store as store

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

def counted(real, before=None, after=None, only=lambda *args: True):
    calls = {"n": 0}
    def hook(*args, **kwargs):
        hit = only(*args) and (calls.__setitem__("n", calls["n"] + 1) or calls["n"] == WHEN)
        if hit and before:
            before(*args, **kwargs)
        result = real(*args, **kwargs)
        if hit and after:
            after()
        return result
    return hook

def half_rows(fd, data, offset):  # half of a batch's bytes reach the file
    real_pwrite(fd, data[: len(data) // 2], offset)
    die()

def tmp_only(path, content):  # the new progress.json is written beside the old one, not yet moved
    Path(str(path) + ".tmp").write_text("{}")
    die()

real_pwrite, progress = store._pwrite_all, lambda path, content: path.name == "progress.json"
if POINT == "creating":  # the new store's metadata is written in the staging folder
    store._write_json_atomic = counted(store._write_json_atomic, before=die, only=lambda path, content: path.name == "store.json")
elif POINT == "after_batch":  # batch WHEN of this run is on disk and recorded
    store.StoreWriter.write = counted(store.StoreWriter.write, after=die)
elif POINT == "mid_rows":  # half of batch WHEN is on disk
    store._pwrite_all = counted(real_pwrite, before=half_rows)
elif POINT == "before_progress":  # batch WHEN is on disk, not recorded
    store._write_json_atomic = counted(store._write_json_atomic, before=die, only=progress)
elif POINT == "mid_progress":  # batch WHEN is on disk, its record half done
    store._write_json_atomic = counted(store._write_json_atomic, before=tmp_only, only=progress)
elif POINT == "before_complete":  # every row is on disk, the COMPLETE marker is not
    store.StoreWriter.finish = counted(store.StoreWriter.finish, before=die)
"""


@pytest.fixture(scope="module")
def extraction_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("extract")
    tiny = make_tiny_xlsa17(root)  # 20 real JPEGs
    torch.manual_seed(0)
    torch.save(timm.create_model("test_resnet").state_dict(), root / "test_resnet.pth")
    return tiny, root / "test_resnet.pth"


def extract_argv(tiny, weights, out) -> list[str]:
    return ["extract", "--dataset-root", tiny.image_root, "--xlsa17", tiny.folder, "--backbone", "test_resnet",
            "--weights", weights, "--image-size", "32", "--batch-size", "2", "--workers", "0", "--no-progress",
            "--out", out]


def test_extraction_killed_repeatedly_at_random_points_ends_equal_to_an_uninterrupted_one(cli, extraction_inputs, tmp_path):
    tiny, weights = extraction_inputs
    reference = cli(extract_argv(tiny, weights, tmp_path / "reference"), setup=ONE_THREAD)
    assert reference.exit == 0, reference.stderr
    out, rng, done = tmp_path / "store", np.random.default_rng(7), 0

    def run_killed(point: str, when: int) -> None:
        nonlocal done
        result = cli(extract_argv(tiny, weights, out), setup=ONE_THREAD + f"POINT, WHEN = {point!r}, {when}\n" + KILL)
        assert result.signal == signal.SIGKILL, f"not killed at {point}:{when}: {result}"
        if (out / "store.json").is_file():
            status = store_status(out)
            assert not status["complete"] and done <= status["done"] <= 20, (point, when, status)
            done = status["done"]

    run_killed("creating", 1)
    points = ["after_batch", "mid_rows", "before_progress", "mid_progress"]
    for _ in range(5):  # five kills at random points among the batches (of 2 images) still to do
        if done < 20:
            run_killed(points[int(rng.integers(len(points)))], int(rng.integers(1, (20 - done) // 2 + 1)))
    while done < 20:
        run_killed("after_batch", (20 - done) // 2)
    run_killed("before_complete", 1)
    finished = cli(extract_argv(tiny, weights, out), setup=ONE_THREAD)
    assert finished.exit == 0, finished.stderr
    resumed, expected = open_store(out), open_store(tmp_path / "reference")
    np.testing.assert_array_equal(resumed[:], expected[:])  # nothing lost, nothing duplicated or misplaced
    assert resumed.metadata == expected.metadata
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "reference").iterdir())
    assert not (tmp_path / ".store.creating").exists()
