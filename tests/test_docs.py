"""The documentation site builds without a warning, and what it shows holds together.

The site is built once per session, strictly as CI builds it (`sphinx-build -W --keep-going
-n`: every warning, a broken cross-reference included, is an error), into a temporary folder.
The built pages are then read with the standard library's HTML parser: every public name has
its entry in the API reference, every link between pages reaches a page and an anchor that
exist, the home page leads to every section, and the notebooks show their outputs.

Needs the ``docs`` extra (``pip install -e '.[docs]'``); skipped without it.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import minigrad

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDE_PAGES = [
    "index",
    "models",
    "layers",
    "losses",
    "optimizers",
    "training",
    "data",
    "saving",
    "testing-layers",
    "performance",
    "distributed",
]

_MISSING = [
    name
    for name in ("sphinx", "pydata_sphinx_theme", "myst_nb", "sphinx_copybutton")
    if importlib.util.find_spec(name) is None
]
pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"the docs extra is not installed (no {', '.join(_MISSING)}): pip install -e '.[docs]'",
)


class Page(HTMLParser):
    """The ids, the links (with whether they sit in the article) and the outputs of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, bool]] = []  # (href, inside <article>)
        self.output_blocks = 0  # notebook cell outputs holding an image or text
        self.article_text: list[str] = []
        self._open: list[tuple[str, bool, bool]] = []  # (tag, in article, in cell output)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        in_article = tag == "article" or any(entry[1] for entry in self._open[-1:])
        in_output = "cell_output" in values.get("class", "").split() or any(
            entry[2] for entry in self._open[-1:]
        )
        if values.get("id"):
            self.ids.add(values["id"])
        if tag == "a" and "href" in values:
            self.links.append((values["href"], in_article))
        if in_output and tag in ("img", "pre"):
            self.output_blocks += 1
        if tag not in _VOID:
            self._open.append((tag, in_article, in_output))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                del self._open[index:]
                return

    def handle_data(self, data: str) -> None:
        if any(entry[1] for entry in self._open[-1:]) and data.strip():
            self.article_text.append(data.strip())


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Page]:
    """Build the site as CI does; map each page's path ("api/layers.html") to its contents."""
    out = tmp_path_factory.mktemp("html")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-b", "html"]
    command += ["-d", str(out / ".doctrees"), str(DOCS), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"sphinx-build failed ({result.returncode}):\n{output}"
    warnings = [line for line in output.splitlines() if "WARNING" in line]
    assert not warnings, "sphinx-build warned:\n" + "\n".join(warnings)
    return {path.relative_to(out).as_posix(): parse(path) for path in out.rglob("*.html")}


def public_objects() -> list[tuple[object, list[str]]]:
    """Each object in minigrad's __all__ or a public module's, with all its public paths."""
    modules = ["minigrad"] + [
        info.name
        for info in pkgutil.iter_modules(minigrad.__path__, "minigrad.")
        if not info.name.rpartition(".")[2].startswith("_")
    ]
    found: dict[int, tuple[object, list[str]]] = {}
    for name in modules:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            found.setdefault(id(obj), (obj, []))[1].append(f"{name}.{attr}")
    return list(found.values())


def test_every_public_name_has_one_reference_entry(site: dict[str, Page]) -> None:
    api_ids: dict[str, str] = {}
    for path, page in site.items():
        if path.startswith("api/"):
            api_ids.update(dict.fromkeys(page.ids, path))
    problems = []
    for obj, paths in public_objects():
        ids = [f"module-{obj.__name__}"] if isinstance(obj, type(minigrad)) else paths
        documented = [name for name in ids if name in api_ids]
        if not documented:
            problems.append(f"{' = '.join(paths)}: no entry on any API page")
        elif len(documented) > 1:
            where = ", ".join(f"{name} ({api_ids[name]})" for name in documented)
            problems.append(f"{' = '.join(paths)}: documented more than once: {where}")
    assert not problems, "\n".join(problems)


def test_internal_links_resolve(site: dict[str, Page]) -> None:
    broken = []
    for path, page in site.items():
        for href, _ in page.links:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith("//"):
                continue  # another site
            target_path = unquote(parts.path)
            if target_path and not target_path.endswith(".html"):
                continue  # a download, an image, a stylesheet
            if target_path:
                target = (Path(path).parent / target_path).as_posix()
                target = _normalise(target)
            else:
                target = path
            if target not in site:
                broken.append(f"{path}: {href} -> no page {target}")
            elif parts.fragment and unquote(parts.fragment) not in site[target].ids:
                broken.append(f"{path}: {href} -> no id {parts.fragment!r} in {target}")
    assert not broken, f"{len(broken)} broken links:\n" + "\n".join(broken[:50])


def _normalise(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def _linked_pages(path: str, page: Page, article_only: bool = False) -> set[str]:
    pages = set()
    for href, in_article in page.links:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path.endswith(".html"):
            continue
        if article_only and not in_article:
            continue
        pages.add(_normalise((Path(path).parent / unquote(parts.path)).as_posix()))
    return pages


def test_index_links_to_every_section(site: dict[str, Page]) -> None:
    linked = _linked_pages("index.html", site["index.html"])
    notebooks = sorted(path.stem for path in (ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found in notebooks/"
    wanted = [f"guide/{name}.html" for name in GUIDE_PAGES]
    wanted += [f"notebooks/{name}.html" for name in notebooks]
    wanted += ["getting-started.html", "api/index.html", "design.html", "changelog.html"]
    missing = [page for page in wanted if page not in linked]
    assert not missing, f"index.html does not link to: {', '.join(missing)}"


def test_guide_pages_link_to_the_site(site: dict[str, Page]) -> None:
    unlinked = []
    for name in GUIDE_PAGES:
        path = f"guide/{name}.html"
        assert path in site, f"{path} was not built"
        others = _linked_pages(path, site[path], article_only=True) - {path}
        if not others & set(site):
            unlinked.append(path)
    assert not unlinked, f"guide pages whose text links to no other page: {', '.join(unlinked)}"


def test_notebook_pages_show_outputs(site: dict[str, Page]) -> None:
    notebooks = sorted(path.stem for path in (ROOT / "notebooks").glob("*.ipynb"))
    empty = []
    for name in notebooks:
        path = f"notebooks/{name}.html"
        assert path in site, f"{path} was not built"
        if site[path].output_blocks == 0:
            empty.append(path)
    assert not empty, f"notebook pages without a rendered output: {', '.join(empty)}"
