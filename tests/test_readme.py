"""The README's commands and code examples stay true."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_readme_opens_with_the_two_commands():
    train, test = code_blocks("bash")[:2]
    assert train.strip().endswith("pip install -e '.[progress]' && python -m minigrad")
    assert test.strip().endswith("pip install -e '.[test]' && pytest")


def test_ci_runs_the_readmes_test_command():
    test_command = code_blocks("bash")[1].strip().split(" && ", 2)[-1]
    assert test_command == "pip install -e '.[test]' && pytest"
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert f"({test_command}) || status=$?" in ci_lines


def test_python_examples_run(capsys):
    namespace: dict = {}
    torch = None if importlib.util.find_spec("torch") is None else importlib.import_module("torch")
    if torch is not None:  # as a fresh session has it (the oracle tests switch to float64)
        default_dtype = torch.get_default_dtype()
        torch.set_default_dtype(torch.float32)
    try:
        for index, block in enumerate(code_blocks("python")):
            if torch is None and "import torch" in block:
                continue  # the PyTorch round trip needs PyTorch
            exec(compile(block, f"README.md python block {index}", "exec"), namespace)
    finally:
        if torch is not None:
            torch.set_default_dtype(default_dtype)
    out = capsys.readouterr().out
    assert "[False  True  True False]" in out
    assert "validation accuracy 1.00" in out
    if torch is not None:
        assert "True" in out.splitlines()[-1]
    tests = [f for name, f in namespace.items() if name.startswith("test_")]
    assert tests, "the README's hypothesis example defines a test"
    for test in tests:
        test()  # the README's property test runs too


def test_error_examples_are_the_real_messages():
    import numpy as np

    import minigrad as mg

    (block,) = code_blocks("text")
    lines = block.strip().splitlines()
    assert len(lines) == 6
    for call, shown in zip(lines[::2], lines[1::2], strict=True):
        name, message = shown.split(": ", 1)
        with pytest.raises(getattr(mg, name)) as error:
            eval(call.removeprefix(">>> "), {"mg": mg, "np": np})
        assert str(error.value) == message
