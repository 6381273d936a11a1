"""Sphinx configuration for the minigrad documentation.

Build strictly, as CI does (every warning, broken cross-reference included, is an error)::

    sphinx-build -W --keep-going -n -b html docs docs/_build/html

or serve it locally with a rebuild on every change::

    sphinx-autobuild docs docs/_build/html
"""

from __future__ import annotations

import importlib
import inspect
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
copyright = "minigrad authors, MIT License"  # noqa: A001 (Sphinx reads this name)
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
autodoc_default_options = {"show-inheritance": True}
# A layer's forward and backward follow the contract documented once on Layer; without their
# own docstring they are left out instead of repeating it on every layer.
autodoc_inherit_docstrings = False
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
# Signatures show these names as written in the source, not what they expand to.
autodoc_type_aliases = {
    "ArrayLike": "numpy.typing.ArrayLike",
    "DTypeLike": "numpy.typing.DTypeLike",
    "FloatArray": "minigrad.typing.FloatArray",
    "IntArray": "minigrad.typing.IntArray",
    "Initializer": "minigrad.init.Initializer",
}

napoleon_google_docstring = False
napoleon_numpy_docstring = True
# The docstrings give types in words ("int, numpy.random.Generator or None", "Parameter of
# shape (out_features,)"): render them as text in the parameter lists rather than as
# cross-references that nitpicky mode would check word by word.
napoleon_use_param = False
napoleon_use_rtype = False
napoleon_use_ivar = False
napoleon_custom_sections = ["Shape", "Contract", ("Attributes", "params_style")]

# -- Nitpicky mode: what cannot be resolved here ---------------------------------------------
# The build runs without network access, so intersphinx cannot fetch NumPy's or Python's
# inventories: references to their objects (mostly from type annotations in signatures) have
# no target. Only those namespaces are ignored; a minigrad.* target that does not resolve is
# always an error.
nitpick_ignore_regex = [
    (r"py:.*", r"numpy(\..+)?"),
    (r"py:.*", r"np\..+"),
]
nitpick_ignore = [
    ("py:class", "pathlib.Path"),
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
                obj = inspect.getattr_static(obj, attr) if inspect.isclass(obj) else getattr(
                    obj, attr
                )
        except AttributeError:
            return None
        return obj
    return None


def _documented(env: Any) -> dict[int, str]:
    """id(object) -> documented name, for every object the Python domain holds."""
    cache = getattr(env, "_minigrad_documented", None)
    if cache is None or cache[0] != len(env.domains["py"].objects):
        table: dict[int, str] = {}
        for name, entry in env.domains["py"].objects.items():
            if entry.aliased or not name.startswith("minigrad"):
                continue
            obj = _lookup(name)
            if obj is not None and (inspect.ismodule(obj) or callable(obj) or entry.objtype in ("class", "exception")):
                table.setdefault(id(obj), name)
        cache = (len(env.domains["py"].objects), table)
        env._minigrad_documented = cache
    return cache[1]


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


def setup(app: Any) -> None:
    app.connect("missing-reference", resolve_minigrad)
