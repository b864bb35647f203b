"""``zslkit list [KIND]`` and ``zslkit plugins``.

``zslkit list`` reads the built-in components from the generated manifest
(:mod:`zslkit.manifest`) and the installed plugins from the package metadata, importing
neither zslkit's components nor the plugins (no PyTorch: a fraction of a second).
Plugins' components are known only once a plugin is imported: ``--plugins`` does that and
lists them with the built-ins, from the live registry.
"""

from __future__ import annotations

from zslkit.registry import KINDS


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list registered components")
    p.add_argument("kind", nargs="?", choices=KINDS, help="only this kind")
    p.add_argument("--pattern", default="*", help="fnmatch pattern on names (default: %(default)s, all)")
    p.add_argument("--origin", action="store_true", help="show where each component comes from")
    p.add_argument("--describe", action="store_true", help="show the first line of each component's docstring")
    p.add_argument("--plugins", action="store_true",
                   help="import the installed plugins and list their components too (default: the built-in "
                        "components and the plugins' names, without importing anything)")
    p.set_defaults(func=run_list)

    p = sub.add_parser("plugins", help="list installed plugins and their components")
    p.set_defaults(func=run_plugins)


def run_list(args) -> int:
    from zslkit.manifest import builtin_entries, entries_of, live_entries
    from zslkit.plugins import installed_plugins

    entries = live_entries(builtin_only=False) if args.plugins else builtin_entries()
    for kind in [args.kind] if args.kind else list(KINDS):
        print(f"{kind}:")
        for entry in entries_of(entries, kind, args.pattern):
            origin = f"  ({entry.origin})" if args.origin else ""
            summary = f"  {entry.summary}" if args.describe and entry.summary else ""
            print(f"  {entry.name}{origin}{summary}")
    plugins = [] if args.plugins else installed_plugins()
    if plugins:
        print("plugins, not imported (`zslkit list --plugins` imports them and lists their components too):")
        for info in plugins:
            print(f"  {info.name} ({info.distribution or '?'} {info.version or '?'})")
    return 0


def run_plugins(args) -> int:
    import zslkit

    plugins = zslkit.list_plugins()
    if not plugins:
        print("no plugins installed (entry-point group 'zslkit')")
        return 0
    for info in plugins:
        version = info.version or "?"
        comps = ", ".join(f"{k}:{n}" for k, n in info.components) or "-"
        status = f"ERROR {info.error}" if info.error else "ok"
        print(f"{info.name} {version} [{status}] components: {comps}")
    return 0
