"""Sphinx configuration for the minigrad documentation.

Build strictly, as CI does (every warning, broken cross-reference included, is an error)::

    sphinx-build -W --keep-going -n -b html docs docs/_build/html

or serve it locally with a rebuild on every change::

    sphinx-autobuild docs docs/_build/html
"""

from __future__ import annotations

import importlib
import inspect
import re
import shutil
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the package from this checkout, installed or not

import minigrad  # noqa: E402

project = "minigrad"
author = "the minigrad authors"
copyright = "minigrad authors, MIT License"
release = minigrad.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",
    "sphinx_copybutton",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path: list[str] = []
html_static_path: list[str] = []

# -- The notebooks -------------------------------------------------------------------------
# They live in the repository's notebooks/ folder; Sphinx reads only files under docs/, so the
# build copies them into docs/notebooks/ (git-ignored). A file is rewritten only when its
# content changed, so that sphinx-autobuild, which watches docs/, does not rebuild forever.
NOTEBOOKS = DOCS / "notebooks"


def copy_notebooks() -> None:
    NOTEBOOKS.mkdir(exist_ok=True)
    sources = {path.name: path for path in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    for stale in NOTEBOOKS.glob("*.ipynb"):
        if stale.name not in sources:
            stale.unlink()
    for name, source in sources.items():
        target = NOTEBOOKS / name
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)


copy_notebooks()

nb_execution_mode = "off"  # rendered with their committed outputs, never run by the build
nb_merge_streams = True  # one output block per cell, not one per print
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath"]
myst_heading_anchors = 3  # [text](page.md#a-heading) links to a section of another page

# -- API reference: autodoc and napoleon -----------------------------------------------------
autodoc_member_order = "bysource"
# A class whose base is private (Conv1d's minigrad.layers.conv._ConvNd) lists, in its page,
# ":inherited-members:" with its public bases: what it inherits from the private base is
# documented on it, what it inherits from Layer or object is documented there, once.
autodoc_default_options = {"show-inheritance": True}
# A layer's forward and backward follow the contract documented once on Layer; without their
# own docstring they are left out instead of repeating it on every layer.
autodoc_inherit_docstrings = False
# Signatures show names and defaults, as NumPy's and SciPy's references do: the numpydoc
# Parameters sections give each type in words ("int, numpy.random.Generator or None"), which
# reads better than the expanded annotations (DTypeLike alone is a union of a dozen types).
autodoc_typehints = "none"

napoleon_google_docstring = False
napoleon_numpy_docstring = True
# The docstrings give types in words ("int, numpy.random.Generator or None", "Parameter of
# shape (out_features,)"): render them as text in the parameter lists rather than as
# cross-references that nitpicky mode would check word by word.
napoleon_use_param = False
napoleon_use_rtype = False
napoleon_use_ivar = False
napoleon_custom_sections = [
    "Shape",
    "Forward",
    "Backward",
    "Contract",
    ("Attributes", "params_style"),
]

# -- Nitpicky mode: what cannot be resolved here ---------------------------------------------
# The build runs without network access, so intersphinx cannot fetch NumPy's or Python's
# inventories: references to their objects have no target. Only those names are ignored; a
# minigrad.* target that does not resolve is always an error.
nitpick_ignore_regex = [
    # NumPy's classes and functions: in the FloatArray and IntArray aliases' values
    # (numpy.ndarray[..., numpy.dtype[numpy.floating]]) and the typing page's prose
    (r"py:(class|data|func|obj)", r"numpy(\..+)?"),
]
nitpick_ignore = [
    # Python's abstract base class of ParamGroup, named in the reference
    ("py:class", "collections.abc.MutableMapping"),
]

# -- HTML -----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"minigrad {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True


# -- Resolving minigrad names the way Python does --------------------------------------------
# Each public object is documented once, at its shortest public path (minigrad.Dense, not
# minigrad.layers.Dense nor minigrad.layers.dense.Dense). References written with another path
# of the same object (a docstring's :class:`~minigrad.layers.base.Layer`, a signature's
# annotation, which names the defining module) or with a bare name that the docstring's own
# module imports (:class:`GradientBounds` in minigrad/optim/safe_step.py) are resolved here to
# that one entry. A name that is not a documented object stays unresolved and fails the build.


def _lookup(path: str) -> Any:
    """The object a dotted path names, importing modules on the way, or None."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = (
                    inspect.getattr_static(obj, attr)
                    if inspect.isclass(obj)
                    else getattr(obj, attr)
                )
        except AttributeError:
            return None
        return obj
    return None


_DOCUMENTED: dict[str, Any] = {}  # in memory only: id() means nothing in another process


def _documented(env: Any) -> dict[int, str]:
    """id(object) -> documented name, for every object the Python domain holds."""
    objects = env.domains["py"].objects
    if _DOCUMENTED.get("key") != (id(env), len(objects)):
        table: dict[int, str] = {}
        for name, entry in objects.items():
            if entry.aliased or not name.startswith("minigrad"):
                continue
            obj = _lookup(name)
            if inspect.ismodule(obj) or inspect.isroutine(obj) or inspect.isclass(obj):
                table.setdefault(id(obj), name)
            elif isinstance(obj, (property, staticmethod, classmethod)):
                table.setdefault(id(obj), name)
        _DOCUMENTED.update(key=(id(env), len(objects)), table=table)
    return _DOCUMENTED["table"]


def _candidates(node: Any) -> list[str]:
    target = node["reftarget"]
    if target.startswith("minigrad."):
        return [target]
    # A bare or relative name: look it up where the docstring was written, that is the module
    # that defines the object being documented (and its class, for a method).
    found = []
    parent = node.parent
    while parent is not None and parent.tagname != "desc_content":
        parent = parent.parent
    signature = None
    if parent is not None:
        signature = next(iter(parent.parent.findall(lambda n: n.tagname == "desc_signature")), None)
    names = []
    if signature is not None and signature.get("fullname"):
        names.append(f"{signature['module']}.{signature['fullname']}")
    elif node.get("py:module"):
        names.append(node["py:module"] + (f".{node['py:class']}" if node.get("py:class") else ""))
    for owner_path in names:
        owner = _lookup(owner_path)
        if inspect.ismodule(owner):
            home = owner.__name__
        else:
            home = getattr(inspect.unwrap(owner), "__module__", None) if owner is not None else None
        if home:
            found.append(f"{home}.{target}")
            cls = node.get("py:class")
            if cls:
                found.append(f"{home}.{cls}.{target}")
    return found


def resolve_minigrad(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    domain = env.domains["py"]
    table = _documented(env)
    for candidate in _candidates(node):
        parts = candidate.split(".")
        for split in range(len(parts), 1, -1):
            obj = _lookup(".".join(parts[:split]))
            if obj is None or id(obj) not in table:
                continue
            name = ".".join([table[id(obj)], *parts[split:]])
            if name in domain.objects:
                node = node.deepcopy()
                node["reftarget"] = name
                node["refspecific"] = False
                return domain.resolve_xref(
                    env, node["refdoc"], app.builder, node["reftype"], name, node, contnode
                )
            break
    return None


# -- Docstrings written as plain text --------------------------------------------------------
# The docstrings read well in help() and write absolute values and norms as |x| and ||g||,
# which reStructuredText would take for substitutions: escape the bars outside literal text.
_LITERAL = re.compile(r"(``.*?``|:[a-z:]+:`[^`]*`|`[^`]*`_?)")


def _escape_bars(lines: list[str]) -> None:
    literal_indent = None  # indentation of the paragraph that opened a literal block
    doctest = False
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if not stripped:
            doctest = False
            continue
        if literal_indent is not None and indent > literal_indent:
            continue
        literal_indent = None
        if stripped.startswith(">>>") or doctest:
            doctest = True
            continue
        if stripped.endswith("::"):
            literal_indent = indent
        if "|" in line:
            parts = _LITERAL.split(line)
            lines[index] = "".join(
                part if number % 2 else part.replace("|", r"\|")
                for number, part in enumerate(parts)
            )


# Many docstrings give the shapes (and a layer's forward and backward maths) in one paragraph
# opening with "Shape: " rather than under a heading, which reads well in help() but which
# napoleon would take for one more entry of the section above it: make each such paragraph a
# section of its own.
_INLINE_SECTION = re.compile(r"^(Shape|Forward|Backward): (.*)$")


def _inline_sections(lines: list[str]) -> None:
    for index in range(len(lines) - 1, -1, -1):
        found = _INLINE_SECTION.match(lines[index])
        if found and (index == 0 or not lines[index - 1].strip()):
            title, text = found.groups()
            lines[index : index + 1] = [title, "-" * len(title), text]


def process_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    _escape_bars(lines)
    _inline_sections(lines)
    # napoleon reads the first line of an attribute's or property's docstring as "type:
    # description" (Google style); these docstrings are numpydoc, where a colon on that line
    # is prose ("Whether the layer is in training mode: ..."). An empty comment first keeps it.
    if what in ("attribute", "property", "data") and any(line.strip() for line in lines):
        lines[:0] = ["..", ""]


def process_bases(app: Any, name: str, obj: Any, options: Any, bases: list[Any]) -> None:
    """Show a private base class (minigrad.layers.conv._ConvNd) as its public bases."""
    public: list[Any] = []
    pending = list(bases)
    while pending:
        base = pending.pop(0)
        if getattr(base, "__name__", "").startswith("_"):
            pending[:0] = list(base.__bases__)
        elif base not in public:
            public.append(base)
    bases[:] = public


# viewcode links each function in a source page back to its entry, with one prefix per source
# module: minigrad/optim/adam.py holds Adam (documented as minigrad.Adam) and adam_update
# (minigrad.optim.adam_update), and both links would start with "minigrad.". Point each link
# at the entry of the object it is next to.
_BACKLINK = re.compile(
    r'(<div class="viewcode-block" id="(?P<name>[^"]+)">\s*'
    r'<a class="viewcode-back" href="(?P<page>[^"#]*)#)(?P<anchor>[^"]*)"'
)


def fix_source_backlinks(
    app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    if not pagename.startswith("_modules/") or "body" not in context:
        return
    module = pagename.removeprefix("_modules/").replace("/", ".")
    table = _documented(app.env)

    def anchor(match: re.Match[str]) -> str:
        obj = _lookup(f"{module}.{match['name']}")
        name = table.get(id(obj), match["anchor"]) if obj is not None else match["anchor"]
        return f'{match.group(1)}{name}"'

    context["body"] = _BACKLINK.sub(anchor, context["body"])


def setup(app: Any) -> None:
    app.connect("html-page-context", fix_source_backlinks)
    app.connect("autodoc-process-docstring", process_docstring, priority=400)  # before napoleon
    app.connect("autodoc-process-bases", process_bases)
    app.connect("missing-reference", resolve_minigrad)
