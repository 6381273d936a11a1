"""Checks the built sdist and wheel beyond `twine check`: the metadata a user sees on the
package index (version, license, Python versions, extras, URLs) and the files each holds.

Usage: python .ci/check_artifacts.py SDIST WHEEL
"""

import email.parser
import re
import sys
import tarfile
import zipfile
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = re.search(
    r'^__version__ = "([^"]+)"', (ROOT / "minigrad" / "__init__.py").read_text(), re.M
).group(1)
CI_PYTHONS = re.search(r"^PYTHONS=\(([^)]*)\)", (ROOT / ".ci" / "run").read_text(), re.M)
problems = []


def expect(condition, message):
    if not condition:
        problems.append(message)


def check_metadata(text, where):
    metadata = email.parser.Parser().parsestr(text)
    expect(metadata["Name"] == "minigrad-nn", f"{where}: Name is {metadata['Name']}")
    expect(metadata["Version"] == VERSION, f"{where}: Version {metadata['Version']} != {VERSION}")
    expect(metadata["License-Expression"] == "MIT", f"{where}: no License-Expression: MIT")
    expect("LICENSE" in metadata.get_all("License-File", []), f"{where}: no License-File")
    expect(metadata["Requires-Python"] == ">=3.10", f"{where}: {metadata['Requires-Python']}")
    expect(
        metadata["Description-Content-Type"] == "text/markdown",
        f"{where}: the README is not declared as Markdown",
    )
    extras = set(metadata.get_all("Provides-Extra", []))
    wanted = set(PYPROJECT["project"]["optional-dependencies"])
    expect(extras == wanted, f"{where}: extras {sorted(extras)} != pyproject's {sorted(wanted)}")
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL", []))
    for label in ("Documentation", "Source", "Changelog", "Issues"):
        expect(label in urls, f"{where}: no Project-URL {label}")
    classifiers = set(metadata.get_all("Classifier", []))
    for version in CI_PYTHONS.group(1).split():
        classifier = f"Programming Language :: Python :: {version}"
        expect(classifier in classifiers, f"{where}: no classifier {classifier!r}")
    expect("Typing :: Typed" in classifiers, f"{where}: no 'Typing :: Typed'")


def main(sdist, wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = f"minigrad_nn-{VERSION}.dist-info"
        check_metadata(archive.read(f"{dist_info}/METADATA").decode(), "wheel")
        expect(f"{dist_info}/licenses/LICENSE" in names, "wheel: LICENSE is missing")
        expect("minigrad/py.typed" in names, "wheel: minigrad/py.typed is missing")
        expect("minigrad/layers/conv.py" in names, "wheel: subpackages are missing")
        stray = [
            n for n in names if n.split("/")[0] in {"tests", "benchmarks", "notebooks", "docs"}
        ]
        expect(not stray, f"wheel: holds files outside the package: {stray[:5]}")
        entry = archive.read(f"{dist_info}/entry_points.txt").decode()
        expect("minigrad = minigrad.__main__:main" in entry, "wheel: no minigrad command")
    with tarfile.open(sdist) as archive:
        top = f"minigrad_nn-{VERSION}"
        names = set(archive.getnames())
        check_metadata(archive.extractfile(f"{top}/PKG-INFO").read().decode(), "sdist")
        for needed in ("pyproject.toml", "README.md", "LICENSE", "minigrad/py.typed"):
            expect(f"{top}/{needed}" in names, f"sdist: {needed} is missing")
    if problems:
        print("release: the artifacts are not right:", *problems, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"release: metadata and contents of both artifacts checked (version {VERSION})")


if __name__ == "__main__":
    main(*sys.argv[1:])
