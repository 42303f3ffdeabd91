"""The README's tested examples: a ```sh block after a `<!-- doctest -->` mark, its expected ```text output.

A fenced ```sh block right after a `<!-- doctest -->` line is run (bash, `set -euo pipefail`, from the repo
root); the ```text block that follows it, if any, is its expected output. In the expected output `...`
within a line stands for any text, a line that is only `...` for any number of lines, and runs of
spaces for any run of spaces (table columns). Blocks run in README order, in one shell session's
variables (`run_examples`)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
MARK = "<!-- doctest -->"
SETUP_MARK = "<!-- doctest: the test provides these -->"
WALKTHROUGH = "## Try it locally with `make dev`"
"""The heading that starts the `make dev` walkthrough: blocks before it are the Helm section's."""


@dataclass(frozen=True)
class Example:
    line: int  # 1-based line of the ```sh fence
    script: str
    expected: str | None


def _fenced(lines: list[str], start: int, info: str) -> tuple[str, int] | None:
    """The body of the fenced block with this info string opening at or after `start` (blank lines only)."""
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or lines[i].strip() != f"```{info}":
        return None
    end = lines.index("```", i + 1)
    return "\n".join(lines[i + 1 : end]), end + 1


def examples(text: str, mark: str = MARK) -> list[Example]:
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.strip() != mark:
            continue
        block = _fenced(lines, i + 1, "sh")
        assert block is not None, f"README line {i + 1}: {mark} is not followed by a ```sh block"
        script, after = block
        output = _fenced(lines, after, "text")
        found.append(Example(i + 2, script, output[0] if output else None))
    return found


def expected_pattern(expected: str) -> re.Pattern[str]:
    parts = []
    for line in expected.strip("\n").splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        pieces = [
            r"[ \t]+".join(re.escape(w) for w in re.split(r"[ \t]+", p)) for p in line.strip().split("...")
        ]
        # `...` within a line never crosses a line end: no backtracking across lines on a mismatch
        parts.append(r"[ \t]*" + "[^\n]*?".join(pieces) + r"[ \t]*\n")
    return re.compile("".join(parts), re.S)


def matches(expected: str, actual: str) -> bool:
    normalized = "".join(line.strip() + "\n" for line in actual.strip("\n").splitlines())
    return expected_pattern(expected).fullmatch(normalized) is not None


def shell_script(example: Example, state: Path) -> str:
    """The block as one shell session would run it: variables set by earlier blocks are still set."""
    names = sorted(set(re.findall(r"^(?:export )?([A-Z_][A-Z0-9_]*)=", example.script, re.M)))
    keep = f"declare -p {' '.join(names)} >> {state}\n" if names else ""
    return f"set -euo pipefail\nsource {state}\n{example.script}\n{keep}"


def sections(text: str) -> tuple[list[Example], list[Example]]:
    """The Helm section's examples (before WALKTHROUGH) and the `make dev` walkthrough's (after it)."""
    split = text.index(WALKTHROUGH)
    line = text[:split].count("\n") + 1
    found = examples(text)
    return [e for e in found if e.line < line], [e for e in found if e.line > line]


def run_examples(
    found: list[Example], env: dict[str, str], state: Path, timeout: float = 180, fresh: bool = True
) -> None:
    """Run each block in order in one shell session's variables (kept in `state`, emptied first unless not
    `fresh`); assert its exit code and its output."""
    if fresh:
        state.write_text("")
    for example in found:
        proc = subprocess.run(
            ["bash", "-c", shell_script(example, state)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        where = f"README.md line {example.line}:\n{example.script}\n"
        assert proc.returncode == 0, (
            f"{where}exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
        assert example.expected is not None
        assert matches(example.expected, proc.stdout), (
            f"{where}--- expected:\n{example.expected}\n--- got:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
