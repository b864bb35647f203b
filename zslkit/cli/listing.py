"""``zslkit list [KIND]`` and ``zslkit plugins``."""

from __future__ import annotations

import zslkit
from zslkit.registry import KINDS


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list registered components")
    p.add_argument("kind", nargs="?", choices=KINDS, help="only this kind")
    p.add_argument("--pattern", default="*", help="fnmatch pattern on names (default: %(default)s, all)")
    p.add_argument("--origin", action="store_true", help="show where each component comes from")
    p.set_defaults(func=run_list)

    p = sub.add_parser("plugins", help="list installed plugins and their components")
    p.set_defaults(func=run_plugins)


def run_list(args) -> int:
    kinds = [args.kind] if args.kind else list(KINDS)
    for kind in kinds:
        names = zslkit.list_components(kind, args.pattern)
        print(f"{kind}:")
        for name in names:
            extra = f"  ({zslkit.component_info(kind, name).origin})" if args.origin else ""
            print(f"  {name}{extra}")
    return 0


def run_plugins(args) -> int:
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
