"""The files of a Docker build context: a directory filtered by its `.dockerignore` rules."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    """One `.dockerignore` line: a path pattern, and whether it re-includes (`!`) what it matches."""

    pattern: str
    include: bool
    regex: re.Pattern[str]


def _translate(pattern: str) -> re.Pattern[str]:
    """Docker's matching: `**` spans any number of path segments, `*` and `?` stay within one segment."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def parse(text: str) -> list[Rule]:
    """The rules of a `.dockerignore`, in order (the last rule that matches a path decides)."""
    rules: list[Rule] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        rules.append(Rule(pattern, include, _translate(pattern)))
    return rules


def excluded(path: str, rules: list[Rule]) -> bool:
    """Whether a context-relative path is left out: a rule matches the path or one of its parents."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for rule in rules:
        if any(rule.regex.match(p) for p in prefixes):
            verdict = not rule.include
    return verdict


def _may_include_below(directory: str, rules: list[Rule]) -> bool:
    """Whether some `!` rule could re-include a path under an excluded directory (else skip walking it)."""
    for rule in rules:
        if not rule.include:
            continue
        literal = re.split(r"[*?\[]", rule.pattern, maxsplit=1)[0]
        if literal.startswith(directory + "/") or directory.startswith(literal.rstrip("/")) or not literal:
            return True
    return False


def context_files(root: Path) -> list[str]:
    """Sorted context-relative paths of the regular files a build of `root` sends (symlinks count too)."""
    ignore = root / ".dockerignore"
    rules = parse(ignore.read_text()) if ignore.is_file() else []
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [
            d for d in dirnames if not excluded(rel_dir + d, rules) or _may_include_below(rel_dir + d, rules)
        ]
        found.extend(rel_dir + f for f in filenames if not excluded(rel_dir + f, rules))
    return sorted(found)
