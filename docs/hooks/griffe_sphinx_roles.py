"""Sphinx cross-reference roles in docstrings, turned into mkdocstrings links when the site is built.

zslkit's docstrings name other objects the Sphinx way (``:func:`register```, ``:class:`~zslkit.x.Y```,
``:mod:`feature store <zslkit.datasets.store>```); Markdown would show those roles literally. This griffe
extension (``mkdocs.yml``: ``plugins.mkdocstrings.handlers.python.options.extensions``) rewrites each role
in every docstring of a loaded package, before mkdocstrings renders it:

* the target is resolved the way Sphinx does, relative to the documented object: its members, then the
  members of each enclosing class, module and package (imported names included), then as a full dotted
  path, then as the one object of the package whose path ends with that name;
* a resolved target becomes an mkdocs-autorefs reference to the object's canonical path, marked
  ``optional``: it is a link wherever that object is rendered on the site, and plain code where it is
  not (a private helper), so ``mkdocs build --strict`` never fails on it;
* an unresolvable target (another library's object, a typo, two candidates) becomes plain code.

Titles follow Sphinx: ``~a.b.c`` shows ``c``, ``title <target>`` shows ``title``, ``!target`` is never
a link. An attribute with no docstring gets the Sphinx doc-comment above it (``#: ...`` lines), so
the module constants those roles name are rendered too. No source file changes; only what the site
shows.
"""

from __future__ import annotations

import html
import logging
import re
from collections import defaultdict
from collections.abc import Iterator

import griffe

_log = logging.getLogger("mkdocs.plugins.zslkit.sphinx_roles")

#: ``:func:`x```, ``:py:class:`x```, ...: the Python-domain roles Sphinx links
ROLE = re.compile(r":(?:py:)?(?P<role>func|class|meth|mod|attr|data|exc|obj|const|type):`(?P<body>[^`]+)`")
EXPLICIT = re.compile(r"(?P<title>.*?\S)\s*<(?P<target>[^<>]+)>", re.DOTALL)
FENCE = re.compile(r"^\s*(```|~~~)")
DOC_COMMENT = re.compile(r"^\s*#:\s?(?P<text>.*)$")
_LOOKUP_ERRORS = (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError)


def split_role(body: str) -> tuple[str, str, bool]:
    """``(title, target, may_link)`` of a role's text, with Sphinx's ``~``, ``!``, ``.`` and ``title <target>``."""
    explicit = EXPLICIT.fullmatch(body.strip())
    target = "".join((explicit["target"] if explicit else body).split())  # a role may wrap onto the next line
    may_link = not target.startswith("!")
    target = target.lstrip("!")
    short = target.startswith("~")
    target = target.lstrip("~").lstrip(".")
    if explicit:
        title = " ".join(explicit["title"].split())
    else:
        title = target.rsplit(".", 1)[-1] if short else target
    return title, target, may_link


def real_objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    """``obj`` and every object defined under it (imported names, i.e. aliases, left out)."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from real_objects(member)


def doc_comment(attribute: griffe.Object) -> str | None:
    """The ``#:`` lines right above ``attribute``'s assignment (Sphinx's doc-comment), joined; None if none."""
    if attribute.filepath is None or attribute.lineno is None:
        return None
    lines = attribute.lines_collection[attribute.filepath]
    comment: list[str] = []
    row = attribute.lineno - 2  # the line above, 0-based
    while row >= 0 and (match := DOC_COMMENT.match(lines[row])):
        comment.insert(0, match["text"])
        row -= 1
    return "\n".join(comment) or None


class Resolver:
    """Finds the canonical path of a role's target among the loaded packages."""

    def __init__(self, collection: griffe.ModulesCollection, package: griffe.Module) -> None:
        self.collection = collection
        self.by_name: dict[str, set[str]] = defaultdict(set)
        for obj in real_objects(package):
            self.by_name[obj.name].add(obj.path)

    def canonical(self, path: str) -> str | None:
        """The canonical path of the loaded object at ``path``; None where nothing loaded is there."""
        try:
            found = self.collection[path]
            return found.final_target.path if found.is_alias else found.path
        except _LOOKUP_ERRORS:
            return None

    def resolve(self, target: str, scope: griffe.Object) -> str | None:
        """The canonical path ``target`` names, seen from ``scope``; None when unknown or ambiguous."""
        head, _, rest = target.partition(".")
        outer: griffe.Object | None = scope
        while outer is not None:
            if head in outer.members:  # the name is defined or imported here: it is this one or nothing
                member = outer.members[head]
                base = member.target_path if member.is_alias else member.path
                return self.canonical(f"{base}.{rest}" if rest else base)
            outer = outer.parent
        if (path := self.canonical(target)) is not None:
            return path
        candidates = {path for path in self.by_name.get(target.rsplit(".", 1)[-1], ())
                      if path == target or path.endswith(f".{target}")}
        return candidates.pop() if len(candidates) == 1 else None


def rewrite(text: str, scope: griffe.Object, resolver: Resolver, counts: dict[str, int] | None = None) -> str:
    """``text`` with every role outside fenced code made an autorefs link (resolved) or inline code."""
    counts = {} if counts is None else counts

    def replace(match: re.Match) -> str:
        title, target, may_link = split_role(match["body"])
        path = resolver.resolve(target, scope) if may_link else None
        kind = "linked" if path else "code"
        counts[kind] = counts.get(kind, 0) + 1
        if path is None:
            _log.debug("%s: %s stays code (no object found)", scope.path, match[0])
            return f"`{title}`"
        return f'<autoref identifier="{path}" optional><code>{html.escape(title)}</code></autoref>'

    out: list[str] = []
    prose: list[str] = []  # joined before substitution: a role may wrap onto the next line
    fenced = False
    for line in text.split("\n"):
        if FENCE.match(line):
            if not fenced and prose:
                out.append(ROLE.sub(replace, "\n".join(prose)))
                prose = []
            fenced = not fenced
            out.append(line)
        elif fenced:
            out.append(line)
        else:
            prose.append(line)
    if prose:
        out.append(ROLE.sub(replace, "\n".join(prose)))
    return "\n".join(out)


class SphinxRoles(griffe.Extension):
    """Rewrites the Sphinx roles of every docstring of a package once it is fully loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
        resolver = Resolver(loader.modules_collection, pkg)
        counts: dict[str, int] = {}
        for obj in real_objects(pkg):
            if obj.is_attribute and obj.docstring is None and (comment := doc_comment(obj)):
                obj.docstring = griffe.Docstring(comment, parent=obj)
            if obj.docstring is not None and ":`" in obj.docstring.value:
                obj.docstring.value = rewrite(obj.docstring.value, obj, resolver, counts)
        _log.debug("%s: %d roles linked, %d left as code", pkg.path, counts.get("linked", 0), counts.get("code", 0))
