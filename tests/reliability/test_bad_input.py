"""Bad input, clear error: every case of issue #7 through the command line, in a real process.

Each case writes one wrong file (or passes one wrong argument) and runs a ``zslkit``
command in a separate process (the ``cli`` fixture). The process must exit with code
2 and print exactly one line on stderr -- ``zslkit <command>: error: <file or
argument>: <what was expected, what was found>`` -- and no traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

import zslkit
import zslkit.training
from tests.datasets.conftest import TinyXlsa17, make_tiny_xlsa17, write_feature_h5
from zslkit.contracts import ContractError
from zslkit.datasets import create_store, relative_image_path
from zslkit.datasets.xlsa17 import split_file_checksums
from zslkit.plugins import Registrar

SMALL = [arg for option in ("num_classes=8", "images_per_class=8", "channels=8", "grid=3", "embedding_dim=6")
         for arg in ("--dataset-option", option)]


@dataclass
class Case:
    """A command and the error line it must print."""

    argv: list[str]
    expected: str  # regex searched in the one error line
    command: str = ""


def data_check(folder: Path, *extra) -> list[str]:
    return ["data", "check", "--xlsa17", str(folder), *map(str, extra)]


def train_h5(path: Path) -> list[str]:
    return ["train", "--dataset", "feature_h5", "--dataset-option", f"path={path}", "--epochs", "1", "--no-progress"]


def with_att_splits(tiny: TinyXlsa17, **changes) -> Path:
    content = tiny.att_splits()
    for key, value in changes.items():
        if value is None:
            del content[key]
        else:
            content[key] = value
    return tiny.write(att_splits=content)


def column(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


# ------------------------------------------------------------------------ the cases
def wrong_rank_features(tmp, tiny):
    write_feature_h5(tmp / "bad.h5", tiny, feature_shape=(8, 9))
    return Case(train_h5(tmp / "bad.h5"), r"bad.h5: feature_map must be \(N, C, H, W\), found shape \(20, 8, 9\)")


def wrong_channel_count(tmp, tiny):
    run = tmp / "run"
    zslkit.training.train(zslkit.load_dataset("synthetic", num_classes=8, images_per_class=8, channels=8, grid=3,
                                              embedding_dim=6), "msdn", zslkit.training.TrainConfig(epochs=1), out_dir=run,
                          progress=False)
    argv = ["eval", str(run), *[a.replace("channels=8", "channels=16") for a in SMALL]]
    return Case(argv, r"run: dataset 'synthetic' has 16-channel features \(shape \(64, 16, 3, 3\)\), the model expects feature_dim=8")


def nan_in_features(tmp, tiny):
    image = int(tiny.splits["trainval"][0])
    maps = np.random.default_rng(1).normal(size=(20, 8, 3, 3)).astype(np.float32)
    maps[image, 2, 1, 0] = np.nan
    write_feature_h5(tmp / "bad.h5", tiny, feature_map=maps)
    return Case(train_h5(tmp / "bad.h5"),
                rf"bad.h5: features of image {image} hold a non-finite value \(nan\) at \(channel, row, column\) \(2, 1, 0\)")


def nan_in_class_attributes(tmp, tiny):
    att = tiny.att.copy()
    att[1, 2] = np.nan
    return Case(data_check(with_att_splits(tiny, att=att)), r"att_splits.mat: att \(I, K\) has a non-finite value \(nan\) at index \(1, 2\)")


def inf_in_attribute_vectors(tmp, tiny):
    vectors = np.ones((6, 4))
    vectors[2, 1] = np.inf
    np.save(tmp / "w2v.npy", vectors)
    return Case(data_check(tiny.folder, "--attribute-vectors", tmp / "w2v.npy"),
                r"w2v.npy: attribute vectors has a non-finite value \(inf\) at index \(2, 1\)")


def class_attributes_do_not_match_labels(tmp, tiny):
    return Case(data_check(with_att_splits(tiny, att=tiny.att[:, :4], original_att=tiny.original_att[:, :4],
                                           allclasses_names=None)),
                r"att_splits.mat: att has 4 class columns \(shape \(6, 4\)\), the labels of res101.mat use 5 classes")


def class_rows_do_not_match_labels_h5(tmp, tiny):
    write_feature_h5(tmp / "bad.h5", tiny, att=tiny.att.T[:4], original_att=tiny.original_att.T[:4])
    return Case(train_h5(tmp / "bad.h5"), r"bad.h5: labels holds 4, out of range: expected 0-based values in \[0, 3\]")


def seen_and_unseen_overlap(tmp, tiny):
    trainval = np.append(tiny.splits["trainval"], tiny.splits["test_unseen"][0])  # an image of unseen class 4
    folder = with_att_splits(tiny, trainval_loc=column(trainval + 1))
    return Case(data_check(folder), r"TINY: seen and unseen classes overlap \(e.g. class 4\); trainval and test_unseen must hold")


def splits_miss_a_class(tmp, tiny):
    unseen = tiny.splits["test_unseen"][tiny.labels[tiny.splits["test_unseen"]] != 1]  # drop unseen class 1
    folder = with_att_splits(tiny, test_unseen_loc=column(unseen + 1))
    name = tiny.class_names[1]
    return Case(data_check(folder), rf"TINY: class 1 \({name}\) has 4 images but is neither seen \(in trainval\) nor unseen")


def split_index_out_of_range(tmp, tiny):
    folder = with_att_splits(tiny, trainval_loc=column(np.append(tiny.splits["trainval"] + 1, 99)))
    return Case(data_check(folder), r"att_splits.mat: trainval_loc holds 99, out of range: expected 1-based values in \[1, 20\]")


def one_based_where_zero_based(tmp, tiny):
    write_feature_h5(tmp / "bad.h5", tiny, trainval_loc=tiny.splits["trainval"] + 1)
    return Case(train_h5(tmp / "bad.h5"),
                r"bad.h5: trainval_loc holds 20, out of range: expected 0-based values in \[0, 19\] -- looks 1-based")


def zero_based_where_one_based(tmp, tiny):
    folder = with_att_splits(tiny, test_seen_loc=column(tiny.splits["test_seen"]))
    return Case(data_check(folder), r"att_splits.mat: test_seen_loc holds 0; expected 1-based values in \[1, 20\] -- this file's indices look 0-based")


def attribute_embeddings_wrong_rows(tmp, tiny):
    np.save(tmp / "w2v.npy", np.ones((5, 4)))
    return Case(data_check(tiny.folder, "--attribute-vectors", tmp / "w2v.npy"), r"w2v.npy: 5 attribute vectors for 6 attributes")


def truncated_mat(tmp, tiny):
    path = tiny.folder / "res101.mat"
    path.write_bytes(path.read_bytes()[:1000])
    return Case(data_check(tiny.folder), r"res101.mat: damaged MATLAB file: truncated\? the variable at byte 128 declares")


def corrupt_mat(tmp, tiny):
    path = tiny.folder / "att_splits.mat"
    data = bytearray(path.read_bytes())
    data[176] = 219  # the type code of att's data element (miDOUBLE = 9) becomes unknown
    path.write_bytes(bytes(data))
    return Case(data_check(tiny.folder), r"att_splits.mat: damaged MATLAB file: unknown data type 219 in a variable")


def truncated_h5(tmp, tiny):
    write_feature_h5(tmp / "bad.h5", tiny)
    (tmp / "bad.h5").write_bytes((tmp / "bad.h5").read_bytes()[:3000])
    return Case(train_h5(tmp / "bad.h5"), r"bad.h5: cannot open HDF5 file .*truncated or not HDF5\?")


def h5_variable_of_the_wrong_type(tmp, tiny):
    write_feature_h5(tmp / "bad.h5", tiny)
    with h5py.File(tmp / "bad.h5", "a") as f:
        del f["labels"]
        f["labels"] = np.array([b"cat"] * 20)
    return Case(train_h5(tmp / "bad.h5"), r"bad.h5: labels must hold integers, found dtype \|S3")


def store(tmp: Path, tiny: TinyXlsa17, **metadata) -> Path:
    files = [relative_image_path(f"/x/images/{r}") for r in tiny.relative]
    writer = create_store(tmp / "store", (20, 8, 3, 3), metadata={"files": files, **metadata})
    writer.write(0, np.zeros((20, 8, 3, 3)))
    writer.finish()
    return tmp / "store"


def truncated_store(tmp, tiny):
    path = store(tmp, tiny) / "features.npy"
    path.write_bytes(path.read_bytes()[:-100])
    return Case(data_check(tiny.folder, "--features", path.parent),
                r"store/features.npy: truncated: \d+ bytes, expected \d+ for shape \(20, 8, 3, 3\) float16")


def corrupt_store_metadata(tmp, tiny):
    path = store(tmp, tiny) / "store.json"
    path.write_text(path.read_text()[:50])
    return Case(data_check(tiny.folder, "--features", path.parent), r"store/store.json: not valid JSON")


def store_checksum_mismatch(tmp, tiny):
    folder = store(tmp, tiny, split_files_sha256=split_file_checksums(tiny.folder)).parent
    with_att_splits(tiny, att=tiny.att * 2)  # the split file changed after extraction
    return Case(data_check(tiny.folder, "--features", folder / "store"),
                r"store: extracted with another att_splits.mat than .*TINY/att_splits.mat \(sha256 [0-9a-f]{12}\.\.\. recorded")


def missing_split_variable(tmp, tiny):
    return Case(data_check(with_att_splits(tiny, test_seen_loc=None)), r"att_splits.mat: missing variable 'test_seen_loc' \(found variables: ")


def config_unknown_key(tmp, tiny):
    (tmp / "mine.yaml").write_text("epoch: 3\nlr: 1.0e-3\n")
    return Case(["train", "--config", tmp / "mine.yaml", *SMALL], r"mine.yaml: unknown key 'epoch'; did you mean 'epochs'\?")


def set_unknown_key(tmp, tiny):
    return Case(["train", "--set", "batchsize=8", *SMALL], r"unknown key 'batchsize'; did you mean 'batch_size' or 'eval_batch_size'\?")


def unknown_model_option(tmp, tiny):
    return Case(["train", "--set", "model_options.scorr=unit_rows", "--epochs", "1", *SMALL],
                r"model 'msdn' has no option 'scorr'; did you mean 'scorer'")


def plugin_breaks_its_contract_at_first_use(tmp, tiny):
    return Case(["train", "--set", "model_options.branches.a2v.attention=reliability_bad_shape", "--epochs", "1",
                 "--no-progress", *SMALL],
                r"attention 'reliability_bad_shape' \(branch 'a2v', reliability_bad_mod.BadShape "
                r"\(plugin zslkit-reliability-bad 1.0\)\): forward must return an object with .scores of shape \(\d+, 54\); found \(\d+, 8\)")


CASES = [wrong_rank_features, wrong_channel_count, nan_in_features, nan_in_class_attributes, inf_in_attribute_vectors,
         class_attributes_do_not_match_labels, class_rows_do_not_match_labels_h5, seen_and_unseen_overlap,
         splits_miss_a_class, split_index_out_of_range, one_based_where_zero_based, zero_based_where_one_based,
         attribute_embeddings_wrong_rows, truncated_mat, corrupt_mat, truncated_h5, h5_variable_of_the_wrong_type,
         truncated_store, corrupt_store_metadata, store_checksum_mismatch, missing_split_variable, config_unknown_key,
         set_unknown_key, unknown_model_option, plugin_breaks_its_contract_at_first_use]


@pytest.mark.parametrize("make_case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_gives_one_clear_line_and_no_traceback(cli, tmp_path, make_case):
    tiny = make_tiny_xlsa17(tmp_path, with_images=False)
    case = make_case(tmp_path, tiny)
    result = cli(case.argv)
    assert result.exit == 2, result
    assert "Traceback" not in result.stderr
    assert len(result.error_lines) == 1, result.stderr
    line = result.error_lines[0]
    assert line.startswith(f"zslkit {case.argv[0]}: error: "), line
    assert re.search(case.expected, line), f"\nexpected: {case.expected}\nfound:    {line}"


def test_scanning_a_feature_file_reports_its_first_non_finite_image(cli, tmp_path):
    tiny = make_tiny_xlsa17(tmp_path, with_images=False)
    maps = np.ones((20, 8, 3, 3), dtype=np.float32)
    maps[13, 0, 2, 2] = -np.inf
    write_feature_h5(tmp_path / "maps.h5", tiny, feature_map=maps)
    assert cli(data_check(tiny.folder, "--features", tmp_path / "maps.h5")).exit == 0  # not read whole by default
    result = cli(data_check(tiny.folder, "--features", tmp_path / "maps.h5", "--scan-features"))
    assert result.exit == 1 and result.stderr == ""
    assert "PROBLEM: " + str(tmp_path / "maps.h5") + ": features of image 13 hold a non-finite value (-inf)" in result.stdout


@pytest.mark.parametrize("route", ["plugin", "zslkit.register"])
def test_a_plugin_factory_breaking_the_contract_is_refused_at_registration_naming_the_plugin(route):
    """The same check for a plugin's registrar and for ``zslkit.register`` in a user's script (issue #24)."""
    def register(factory):
        if route == "plugin":
            return Registrar("my-plugin", "2.0").register("attention", "no_dims", factory)
        return zslkit.register("attention", "no_dims")(factory)

    class NoDims:
        def __init__(self, width):
            pass

    where = r" \(plugin my-plugin\)" if route == "plugin" else ""
    with pytest.raises(ContractError, match=rf"attention 'no_dims'{where}: factory must accept keyword options "
                                            r"feature_dim, embedding_dim, num_attributes; missing feature_dim"):
        register(NoDims)
    assert "no_dims" not in zslkit.list_components("attention")

    class Flexible:  # **options can take anything: accepted
        def __init__(self, **options):
            self.options = options

    register(Flexible)
    if route != "plugin":  # the registrar stages; zslkit.register registers at once
        assert zslkit.get_component("attention", "no_dims") is Flexible
        zslkit.registry.unregister("attention", "no_dims")
