"""``zslkit list`` reads a manifest of the built-in components instead of importing them; the manifest equals the registry.

Each check runs in a fresh interpreter: the live registry there holds exactly what zslkit and the
installed plugins register, and ``sys.modules`` there tells what the listing imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import astuple

from zslkit.manifest import builtin_entries

HEAVY = ("torch", "numpy", "timm", "sklearn", "scipy", "zslkit_example_plugin")


def child(code: str, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_the_manifest_equals_the_live_registry():
    result = child("""
        import json
        from dataclasses import astuple
        from zslkit.manifest import live_entries
        print(json.dumps([astuple(e) for e in live_entries()]))
    """)
    live = [tuple(row) for row in json.loads(result.stdout)]
    listed = [astuple(e) for e in builtin_entries()]
    stale = "zslkit/_builtin_components.py is stale: regenerate it with `python -m zslkit.manifest`"
    assert listed == live, f"{stale}; first difference: {next((a, b) for a, b in zip(listed + [None] * len(live), live + [None] * len(listed)) if a != b)}"
    assert {e[0] for e in live} >= {"model", "attention", "backbone", "method", "dataset"}  # the registry was filled


def test_zslkit_list_imports_no_torch_and_names_the_plugins_it_did_not_import():
    result = child(f"""
        import sys
        from zslkit.cli import main
        assert main(["list"]) == 0
        print("IMPORTED", sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r})))
    """)
    assert "IMPORTED []" in result.stdout
    lines = result.stdout.splitlines()
    assert "model:" in lines and "  msdn" in lines and "  timm_tokens" in lines
    assert "plugins, not imported (`zslkit list --plugins` imports them and lists their components too):" in lines
    assert "  example (zslkit-example-plugin 0.1.0)" in lines
    assert "example_temperature_attention" not in result.stdout


def test_zslkit_list_plugins_lists_their_components_and_autoload_off_lists_none():
    listed = child("from zslkit.cli import main; main(['list', 'attention', '--plugins', '--origin'])").stdout
    assert "  example_temperature_attention  (zslkit_example_plugin." in listed and "(plugin zslkit-example-plugin 0.1.0)" in listed
    assert "  prototype  (zslkit.attention.prototype.Prototype)" in listed and "not imported" not in listed
    quiet = child("from zslkit.cli import main; main(['list', 'scorer', '--describe'])", ZSLKIT_DISABLE_PLUGIN_AUTOLOAD="1").stdout
    assert quiet.splitlines()[0] == "scorer:" and "plugins" not in quiet
    assert "  cosine_rows  Raw rows divided by their norm plus ``eps`` at scoring time." in quiet.splitlines()
