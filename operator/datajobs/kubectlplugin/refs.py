"""Kinds and job references as users type them: `ij/NAME`, `mex NAME...`, `integrityjobs.datajobs.io/NAME`."""

from __future__ import annotations

from dataclasses import dataclass

from datajobs.models import GROUP, KINDS, KindInfo


class UsageError(ValueError):
    """A command line that cannot mean anything; the message says why (exit code 2, like kubectl's)."""


def _aliases(kind: KindInfo) -> set[str]:
    names = {kind.kind.lower(), kind.plural, kind.singular, *kind.short_names}
    return names | {f"{n}.{GROUP}" for n in (kind.plural, kind.singular, kind.kind.lower())}


ALIASES: dict[str, KindInfo] = {alias: kind for kind in KINDS for alias in _aliases(kind)}
CATEGORY_NAMES = frozenset({"datajobs", "datajob", "all"})


@dataclass(frozen=True, order=True)
class Ref:
    """One job: its namespace, kind and name."""

    namespace: str
    kind_name: str
    name: str

    @property
    def kind(self) -> KindInfo:
        return next(k for k in KINDS if k.kind == self.kind_name)

    @property
    def short(self) -> str:
        """`ij/NAME`: what the table shows, and what every command accepts back."""
        return f"{self.kind.short_names[0]}/{self.name}"

    @property
    def qualified(self) -> str:
        """`integrityjob.datajobs.io/NAME`: what kubectl prints in its action messages."""
        return f"{self.kind.singular}.{GROUP}/{self.name}"


def kind_of(word: str) -> KindInfo:
    kind = ALIASES.get(word.lower())
    if kind is None:
        known = ", ".join(sorted(f"{k.short_names[0]} ({k.kind})" for k in KINDS))
        raise UsageError(f'the server doesn\'t have a resource type "{word}" here; use one of: {known}')
    return kind


def kinds_of(word: str) -> tuple[KindInfo, ...]:
    """Both kinds for the category (`datajobs`, `all`), else the one kind the word names."""
    return KINDS if word.lower() in CATEGORY_NAMES else (kind_of(word),)


@dataclass(frozen=True)
class Selection:
    """What the positional arguments ask for: named jobs, or every job of some kinds."""

    kinds: tuple[KindInfo, ...]
    names: tuple[tuple[KindInfo, str], ...]  # empty: every job of `kinds`


def parse_targets(args: list[str]) -> Selection:
    """`[KIND] [NAME...]` or `KIND/NAME...` (both kinds when empty), as `kubectl get` reads them."""
    if not args:
        return Selection(KINDS, ())
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            raise UsageError(
                "there is no need to specify a resource type as a separate argument when "
                "passing arguments in resource/name form (e.g. 'ij/foo' or 'ij foo', not both)"
            )
        names = []
        for arg in args:
            word, _, name = arg.partition("/")
            if not name or "/" in name:
                raise UsageError(f"{arg!r} is not KIND/NAME")
            names.append((kind_of(word), name))
        return Selection(tuple(dict.fromkeys(k for k, _ in names)), tuple(names))
    kinds = kinds_of(args[0])
    if len(args) == 1:
        return Selection(kinds, ())
    if len(kinds) != 1:
        raise UsageError(f"name a kind (ij or mex) before job names, not {args[0]!r}")
    return Selection(kinds, tuple((kinds[0], n) for n in args[1:]))
