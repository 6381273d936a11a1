"""minigrad's type hints, checked as a user's type checker sees them: typical user code
type-checks cleanly under ``mypy --strict``, and typical mistakes are flagged on their lines.

The package itself is checked by ``mypy`` (strict, configured in pyproject.toml) in CI. These
tests need mypy (``pip install -e '.[typecheck]'``) and skip without it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "typing_cases"
EXPECTED = re.compile(r"#\s*error:\s*([a-z-]+)\s*$")


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory):
    """{(file name, line): [error codes]} from one strict mypy run over both case files."""
    api = pytest.importorskip("mypy.api", reason="mypy is not installed (the typecheck extra)")
    cache = tmp_path_factory.mktemp("mypy-cache")
    files = [str(CASES / "user_code.py"), str(CASES / "mistakes.py")]
    stdout, stderr, status = api.run(
        [
            *files,
            "--strict",
            "--cache-dir",
            str(cache),
            "--python-version",
            "3.10",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--no-pretty",
            "--show-error-codes",
        ]
    )
    assert status in (0, 1), f"mypy did not run: {stderr}{stdout}"
    errors: dict[tuple[str, int], list[str]] = {}
    for line in stdout.splitlines():
        found = re.match(r"(.+?):(\d+): error: .*\[([a-z-]+)\]$", line)
        if found:
            key = (Path(found.group(1)).name, int(found.group(2)))
            errors.setdefault(key, []).append(line)
    return errors


def test_typical_user_code_type_checks_cleanly(mypy_errors):
    found = [e for (name, _), lines in mypy_errors.items() if name == "user_code.py" for e in lines]
    assert not found, "mypy --strict flags typical user code:\n" + "\n".join(found)


def test_typical_mistakes_are_flagged_on_their_lines(mypy_errors):
    lines = (CASES / "mistakes.py").read_text().splitlines()
    expected = {
        number: match.group(1)
        for number, text in enumerate(lines, start=1)
        if (match := EXPECTED.search(text))
    }
    assert len(expected) >= 10
    problems = []
    for number, code in expected.items():
        flagged = mypy_errors.get(("mistakes.py", number), [])
        if not any(line.endswith(f"[{code}]") for line in flagged):
            problems.append(
                f"line {number} ({lines[number - 1].strip()}): want [{code}], "
                f"got {flagged or 'nothing'}"
            )
    unexpected = [
        line
        for (name, number), found in mypy_errors.items()
        if name == "mistakes.py" and number not in expected
        for line in found
    ]
    assert not problems, "mistakes mypy did not flag as expected:\n" + "\n".join(problems)
    assert not unexpected, "mypy flags lines that are not mistakes:\n" + "\n".join(unexpected)
