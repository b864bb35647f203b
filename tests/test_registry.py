import pytest
import torch

import zslkit
from zslkit.registry import ComponentNotFoundError, DuplicateComponentError, register_component, unregister


@pytest.fixture
def scratch_loss():
    names = []
    yield names
    for name in names:
        unregister("loss", name)


def test_register_decorator_returns_plain_object_and_create_builds_it(scratch_loss):
    @zslkit.register("loss", "scratch_l1")
    class ScratchL1(torch.nn.Module):
        def __init__(self, scale: float = 1.0):
            super().__init__()
            self.scale = scale

    scratch_loss.append("scratch_l1")
    assert zslkit.get_component("loss", "scratch_l1") is ScratchL1
    built = zslkit.create("loss", "scratch_l1", scale=3.0)
    assert isinstance(built, ScratchL1) and built.scale == 3.0
    assert "scratch_l1" in zslkit.list_components("loss")
    assert zslkit.list_components("loss", "scratch_*") == ["scratch_l1"]


def test_default_name_is_lowercased_factory_name(scratch_loss):
    @zslkit.register("loss")
    def ScratchDefault():  # noqa: N802
        return 1

    scratch_loss.append("scratchdefault")
    assert zslkit.create("loss", "scratchdefault") == 1


def test_duplicate_name_raises_naming_both_origins(scratch_loss):
    def first():
        return 1

    def second():
        return 2

    register_component("loss", "scratch_dup", first)
    scratch_loss.append("scratch_dup")
    with pytest.raises(DuplicateComponentError) as err:
        register_component("loss", "scratch_dup", second)
    message = str(err.value)
    assert "test_registry" in message and "first" in message and "second" in message
    assert zslkit.create("loss", "scratch_dup") == 1  # the original is untouched


def test_override_replaces(scratch_loss):
    register_component("loss", "scratch_over", lambda: 1)
    scratch_loss.append("scratch_over")
    register_component("loss", "scratch_over", lambda: 2, override=True)
    assert zslkit.create("loss", "scratch_over") == 2


def test_unknown_name_suggests_closest():
    with pytest.raises(ComponentNotFoundError) as err:
        zslkit.get_component("dataset", "synthetc")
    assert isinstance(err.value, KeyError)
    assert "did you mean 'synthetic'" in str(err.value)


def test_unknown_kind_suggests_closest():
    with pytest.raises(ComponentNotFoundError, match="did you mean 'attention'"):
        zslkit.list_components("atention")


def test_unknown_option_is_named_with_suggestion():
    with pytest.raises(TypeError, match="no option 'num_clases'.*num_classes"):
        zslkit.create("dataset", "synthetic", num_clases=10)


def test_list_components_without_kind_gives_every_kind():
    listing = zslkit.list_components()
    assert list(listing) == list(zslkit.KINDS)
    assert "eszsl" in listing["method"] and "synthetic" in listing["dataset"]
    assert all(names == sorted(names) for names in listing.values())


def test_component_info_records_origin():
    info = zslkit.component_info("method", "eszsl")
    assert info.origin.plugin is None
    assert info.origin.qualname == "zslkit.methods.eszsl.ESZSL"
