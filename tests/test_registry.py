import pytest
import torch

import zslkit
from tests.conftest import run_python
from zslkit.registry import (
    ComponentNotFoundError,
    DuplicateComponentError,
    Origin,
    Registration,
    register_component,
    register_components,
    unregister,
)


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


def test_register_components_is_all_or_nothing(scratch_loss):
    def first():
        return 1

    register_component("loss", "scratch_taken", first)
    scratch_loss.append("scratch_taken")
    batch = [
        Registration("loss", "scratch_new", lambda: 2),
        Registration("loss", "scratch_taken", lambda: 3, origin=Origin("pkg.Other", plugin="dist-x", plugin_version="1")),
    ]
    with pytest.raises(DuplicateComponentError) as err:
        register_components(batch)
    assert "test_registry" in str(err.value) and "first" in str(err.value)
    assert "pkg.Other (plugin dist-x 1)" in str(err.value)
    assert "scratch_new" not in zslkit.list_components("loss")  # nothing of the batch was kept
    assert zslkit.create("loss", "scratch_taken") == 1


def test_register_components_refuses_a_clash_inside_the_batch():
    batch = [Registration("loss", "scratch_twice", lambda: 1), Registration("loss", "scratch_twice", lambda: 2)]
    with pytest.raises(DuplicateComponentError, match="'scratch_twice' is already registered by"):
        register_components(batch)
    assert "scratch_twice" not in zslkit.list_components("loss")


def test_register_components_records_origins_and_overrides(scratch_loss):
    register_component("loss", "scratch_base", lambda: 1)
    scratch_loss.extend(["scratch_base", "scratch_extra"])
    done = register_components(
        [
            Registration("loss", "scratch_base", lambda: 2, override=True),
            Registration("loss", "scratch_extra", lambda: 3, origin=Origin("pkg.Extra", plugin="dist-y")),
        ]
    )
    assert [(c.kind, c.name) for c in done] == [("loss", "scratch_base"), ("loss", "scratch_extra")]
    assert zslkit.create("loss", "scratch_base") == 2 and zslkit.create("loss", "scratch_extra") == 3
    assert str(zslkit.component_info("loss", "scratch_extra").origin) == "pkg.Extra (plugin dist-y)"


def test_registration_checks_kind_name_and_factory():
    with pytest.raises(ComponentNotFoundError, match="unknown component kind 'los'"):
        register_components([Registration("los", "x", lambda: 1)])
    with pytest.raises(ValueError, match="non-empty string"):
        register_components([Registration("loss", "", lambda: 1)])
    with pytest.raises(TypeError, match="factory must be a class or function, got int"):
        register_components([Registration("loss", "scratch_int", 5)])


def test_loaders_run_before_the_first_lookup():
    code = """
    import zslkit
    from zslkit import registry
    calls = []
    def loader():
        if not calls:
            registry.register_component("loss", "from_loader", lambda: 7)
        calls.append(1)
    registry.add_loader(loader)
    registry.add_loader(loader)  # once only
    print(zslkit.create("loss", "from_loader"), len(calls), "eszsl" in zslkit.list_components("method"), len(calls))
    """
    result = run_python(code, env={"ZSLKIT_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["7", "1", "True", "2"]


def test_a_failed_builtin_import_makes_every_lookup_raise_naming_it():
    code = """
    import sys
    sys.modules["zslkit.methods"] = None  # its import now fails with ModuleNotFoundError
    import zslkit
    from zslkit.registry import BuiltinImportError
    for lookup in (lambda: zslkit.list_components("loss"), lambda: zslkit.get_component("loss", "attribute_ce"),
                   lambda: zslkit.list_components(), lambda: zslkit.create("dataset", "synthetic")):
        try:
            lookup()
        except BuiltinImportError as exc:
            print(str(exc))
        else:
            print("no error")
    """
    result = run_python(code, env={"ZSLKIT_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    expected = (
        "zslkit's built-in components are incomplete: importing zslkit.methods failed: "
        "ModuleNotFoundError: import of zslkit.methods halted; None in sys.modules"
    )
    assert lines == [expected] * 4
