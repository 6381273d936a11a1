"""The documentation's prose pages run: every ```python block of docs/getting-started.md,
docs/guide/*.md and docs/design.md, in order, in one fresh namespace per page.

Conventions the pages follow (and this test reads):

- ``<!-- requires: safetensors, torch -->`` on the line right before a ```python fence: that
  block runs only where those modules import (later blocks must not depend on it); anywhere
  else on the page: the whole page is skipped without them.
- A ```text block that follows a ```python block with nothing but blank lines between them is
  that block's output: what the block prints must match it, numbers to within 1% (BLAS
  libraries add up products in different orders, so the last digits of a trained loss may
  differ from machine to machine), everything else exactly.
- ```bash blocks are commands for the reader and are not run.

Each page runs in a temporary working directory, so files its examples write land there.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(
    [
        DOCS / "index.md",
        DOCS / "getting-started.md",
        *(DOCS / "guide").glob("*.md"),
        DOCS / "design.md",
    ]
)
#: what a block may say it needs (``<!-- requires: ... -->``): a misspelt name fails the test
KNOWN_REQUIREMENTS = {
    "hypothesis",
    "matplotlib",
    "onnx",
    "onnxruntime",
    "safetensors",
    "sklearn",
    "torch",
    "tqdm",
}

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
REQUIRES = re.compile(r"<!--\s*requires:\s*([\w.,\s-]+?)\s*-->")
# a number, its thousands separated by commas or not ("1,418" is one number)
NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def blocks(text: str) -> list[tuple[str, str, set[str], str | None]]:
    """``(language, code, required modules, expected output)`` for each fenced block."""
    found = []
    matches = list(FENCE.finditer(text))
    for index, match in enumerate(matches):
        language, code = match.group(1), match.group(2)
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        marker = REQUIRES.fullmatch(before.strip())
        required = _names(marker.group(1)) if marker else set()
        expected = None
        if language == "python" and index + 1 < len(matches):
            following = matches[index + 1]
            between = text[match.end() : following.start()]
            if following.group(1) == "text" and not between.strip():
                expected = following.group(2)
        found.append((language, code, required, expected))
    return found


def page_requirements(text: str) -> set[str]:
    """Modules named by ``requires`` markers that are not right before a fence."""
    names: set[str] = set()
    for match in REQUIRES.finditer(text):
        rest = text[match.end() :].lstrip(" \t")
        if not rest.startswith("\n```") and not rest.startswith("```"):
            names |= _names(match.group(1))
    return names


def _names(listed: str) -> set[str]:
    return {name.strip() for name in listed.split(",") if name.strip()}


def _available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def same_output(printed: str, expected: str) -> bool:
    """Whether ``printed`` reads as ``expected``: the same text, numbers within 1%."""
    printed_lines = [line.rstrip() for line in printed.strip("\n").splitlines()]
    expected_lines = [line.rstrip() for line in expected.strip("\n").splitlines()]
    if len(printed_lines) != len(expected_lines):
        return False
    for got, want in zip(printed_lines, expected_lines, strict=True):
        if NUMBER.split(got) != NUMBER.split(want):
            return False
        for a, b in zip(NUMBER.findall(got), NUMBER.findall(want), strict=True):
            if not any(mark in a + b for mark in ".eE"):  # counts, sizes, epochs: exact
                if a != b:
                    return False
                continue
            x, y = float(a.replace(",", "")), float(b.replace(",", ""))
            if abs(x - y) > 0.01 * max(abs(y), 1e-3) + 1e-9:
                return False
    return True


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_examples_run(page, tmp_path, monkeypatch):
    text = page.read_text()
    for name in sorted(page_requirements(text)):
        pytest.importorskip(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict[str, object] = {"__name__": "__docs__"}
    with torch_defaults(), own_registrations():
        left_out = run_blocks(page, text, namespace)
    if left_out:  # the page's other blocks ran and passed; say what did not run
        pytest.skip(f"{page.name}: not run for want of a module: {'; '.join(left_out)}")


@contextlib.contextmanager
def own_registrations():
    """The classes a page registers (``mg.register_layer``) are forgotten after it, so that
    they do not take names that other tests register."""
    from minigrad.serialization import architecture

    tables = (architecture._LAYERS, architecture._OPTIMIZERS)
    saved = [dict(table) for table in tables]
    try:
        yield
    finally:
        for table, before in zip(tables, saved, strict=True):
            table.clear()
            table.update(before)


@contextlib.contextmanager
def torch_defaults():
    """PyTorch's own default dtype (float32), as a reader has it, while a page runs: the
    oracle tests set float64 for the whole session."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def run_blocks(page, text, namespace) -> list[str]:
    """Runs the page's python blocks in order; returns those left out, with what they need."""
    left_out = []
    for number, (language, code, required, expected) in enumerate(blocks(text), start=1):
        if language != "python":
            continue
        unknown = required - KNOWN_REQUIREMENTS
        assert not unknown, f"{page.name}, block {number}: unknown requirement {unknown}"
        missing = sorted(name for name in required if not _available(name))
        if missing:
            left_out.append(f"block {number} ({', '.join(missing)})")
            continue
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"{page.name}, block {number}", "exec"), namespace)
        if expected is not None:
            assert same_output(printed.getvalue(), expected), (
                f"{page.name}, block {number} printed\n{printed.getvalue()}\n"
                f"but the page shows\n{expected}"
            )
    return left_out


def test_every_page_is_tested():
    """The pages this test reads are every Markdown page of the site but the included
    changelog and the notebooks' list, which hold no examples of their own."""
    pages = set(DOCS.glob("*.md")) | set((DOCS / "guide").glob("*.md"))
    assert set(PAGES) == pages - {DOCS / "changelog.md", DOCS / "notebooks.md"}


def test_output_comparison():
    assert same_output("1,418 parameters", "1,418 parameters")
    assert not same_output("1,414 parameters", "1,418 parameters")  # counts are exact
    assert not same_output("epoch 10", "epoch 11")
    assert same_output("loss 0.1234\n", "loss 0.1235")
    assert not same_output("loss 0.1234", "accuracy 0.1234")
    assert not same_output("loss 0.2", "loss 0.1")
    assert not same_output("a\nb", "a")
