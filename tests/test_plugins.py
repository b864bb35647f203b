"""Plugin loading through real entry points, in fresh interpreters."""

import json

import pytest

from tests.conftest import make_distribution, run_python

PROBE = """
import json, sys, warnings
warnings.simplefilter("ignore")
import zslkit
imported_at_import = "zslkit_example_plugin" in sys.modules
names = zslkit.list_components("attention") + zslkit.list_components("loss")
plugins = {p.name: {"version": p.version, "error": p.error, "components": p.components} for p in zslkit.list_plugins()}
print(json.dumps({"lazy": not imported_at_import, "names": names, "plugins": plugins}))
"""


def probe(env=None, extra_path=None):
    result = run_python(PROBE, env=env, extra_path=extra_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def test_example_plugin_is_discovered_lazily_with_its_version():
    data, _ = probe()
    assert data["lazy"], "importing zslkit must not import plugins"
    assert "example_temperature_attention" in data["names"]
    assert "example_attribute_mse" in data["names"]
    info = data["plugins"]["example"]
    assert info["error"] is None and info["version"] == "0.1.0"
    assert ["attention", "example_temperature_attention"] in info["components"]


def test_component_origin_names_the_plugin_distribution():
    result = run_python(
        "import zslkit; print(zslkit.component_info('attention', 'example_temperature_attention').origin)"
    )
    assert "plugin zslkit-example-plugin 0.1.0" in result.stdout


def test_autoload_can_be_disabled():
    data, _ = probe(env={"ZSLKIT_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "example_temperature_attention" not in data["names"]
    assert data["plugins"] == {}


def test_named_plugin_can_be_blocked():
    data, _ = probe(env={"ZSLKIT_DISABLED_PLUGINS": "other,example"})
    assert "example_temperature_attention" not in data["names"]


@pytest.fixture
def broken_plugins(tmp_path):
    make_distribution(
        tmp_path / "site",
        "zslkit-broken-import",
        "1.0",
        {"broken_import": "broken_import_mod"},
        {"broken_import_mod": "raise RuntimeError('boom at import')\n"},
    )
    make_distribution(
        tmp_path / "site",
        "zslkit-clashing",
        "2.0",
        {"clashing": "clashing_mod"},
        {
            "clashing_mod": """
            import zslkit
            def ok_loss():
                return 0
            def evil():
                return 0
            @zslkit.hookimpl
            def zslkit_register_components(registrar):
                registrar.register("loss", "clashing_ok_loss", ok_loss)
                registrar.register("method", "eszsl", evil)  # clashes with the built-in
            """
        },
    )
    make_distribution(
        tmp_path / "site",
        "zslkit-bad-contract",
        "3.0",
        {"bad_contract": "bad_contract_mod"},
        {
            "bad_contract_mod": """
            import zslkit
            class NoDims:
                def __init__(self, width):
                    pass
            @zslkit.hookimpl
            def zslkit_register_components(registrar):
                registrar.register("attention", "no_dims", NoDims)
            """
        },
    )
    return tmp_path / "site"


def test_broken_plugins_are_reported_and_isolated(broken_plugins):
    data, stderr = probe(extra_path=[broken_plugins])
    plugins = data["plugins"]
    assert "boom at import" in plugins["broken_import"]["error"]
    # the clash is named with both origins, and the plugin's other component is not half-registered
    assert "zslkit.methods.eszsl.ESZSL" in plugins["clashing"]["error"]
    assert "zslkit-clashing" in plugins["clashing"]["error"]
    assert "clashing_ok_loss" not in data["names"]
    # a factory breaking the attention contract is refused, naming the plugin
    assert "plugin zslkit-bad-contract" in plugins["bad_contract"]["error"]
    assert "feature_dim" in plugins["bad_contract"]["error"]
    # the healthy plugin still works
    assert plugins["example"]["error"] is None
    assert "example_temperature_attention" in data["names"]


def test_in_process_plugin_registration():
    code = """
    import zslkit
    from zslkit.plugins import register_plugin
    class P:
        @zslkit.hookimpl
        def zslkit_register_components(self, registrar):
            registrar.register("loss", "inproc_loss", lambda: 42)
    info = register_plugin(P(), name="inproc", version="9")
    print(info.error, zslkit.create("loss", "inproc_loss"), zslkit.component_info("loss", "inproc_loss").origin.plugin)
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "42", "inproc"]


def test_a_misspelled_hook_implementation_is_reported_like_any_plugin_error(tmp_path):
    site = make_distribution(
        tmp_path / "site",
        "zslkit-misspelled",
        "1.5",
        {"misspelled": "misspelled_mod"},
        {
            "misspelled_mod": """
            import zslkit
            @zslkit.hookimpl
            def zslkit_register_components(registrar):
                registrar.register("loss", "misspelled_loss", lambda: 0)
            @zslkit.hookimpl
            def zslkit_benchmark_case():  # the spec is zslkit_benchmark_cases
                return []
            """
        },
    )
    code = """
    import json, warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import zslkit
        from zslkit.plugins import PluginWarning
        names = zslkit.list_components("loss")
        info = {p.name: p.error for p in zslkit.list_plugins()}
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    print(json.dumps({"names": names, "info": info, "warnings": messages}))
    """
    result = run_python(code, extra_path=[site])
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    error = data["info"]["misspelled"]
    assert error.startswith("registration with pluggy failed: PluginValidationError: unknown hook 'zslkit_benchmark_case'")
    assert error.endswith("; did you mean 'zslkit_benchmark_cases'?")
    assert data["warnings"] == [f"zslkit plugin 'misspelled': {error}"]
    assert "misspelled_loss" not in data["names"]  # like any plugin error: none of its components are kept
    assert data["info"]["example"] is None and "example_attribute_mse" in data["names"]
