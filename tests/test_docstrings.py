"""Every public class and function has a docstring with an example, every public method one
line at least.

Public means listed in ``minigrad.__all__`` or in the ``__all__`` of a module under minigrad/
(modules whose name starts with an underscore are private). The examples themselves run as
doctests (``--doctest-modules``); this test makes sure they are there.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import typing
from collections.abc import Callable
from types import ModuleType

import pytest

import minigrad

EXAMPLES_SECTION = re.compile(r"^\s*Examples\s*\n\s*-{3,}\s*$", re.MULTILINE)


def public_modules() -> list[ModuleType]:
    """minigrad and every module under it whose dotted name has no private part."""
    names = [
        info.name
        for info in pkgutil.walk_packages(minigrad.__path__, "minigrad.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
    return [minigrad, *(importlib.import_module(name) for name in sorted(names))]


def is_class_or_function(obj: object) -> bool:
    """A class or a function, not a type alias such as ``dict[str, int]``.

    On Python 3.10 ``inspect.isclass`` says yes to a parametrised generic (``list[int]``
    passes ``isinstance(..., type)`` there), and its docstring is the origin's (dict's).
    """
    if typing.get_origin(obj) is not None:
        return False
    return inspect.isclass(obj) or inspect.isfunction(obj)


def public_objects() -> dict[str, object]:
    """Every class and function exported by an ``__all__``, once, by its qualified name."""
    found: dict[str, object] = {}
    for module in public_modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if is_class_or_function(obj):
                found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return found


def has_example(doc: str | None) -> bool:
    return bool(doc) and (">>>" in doc or EXAMPLES_SECTION.search(doc) is not None)


def public_methods(cls: type) -> dict[str, object]:
    """The functions (and property getters) a class defines itself under a public name."""
    methods = {}
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        elif isinstance(member, property):
            member = member.fget
        if inspect.isfunction(member):
            methods[name] = member
    return methods


def problems(obj: object) -> list[str]:
    """What is missing from the documentation of a public class or function."""
    name = getattr(obj, "__qualname__", repr(obj))
    doc = obj.__doc__  # its own: a class without a docstring does not inherit one
    found = []
    if not (doc and doc.strip()):
        found.append(f"{name} has no docstring")
    elif not has_example(doc):
        found.append(f"{name} has no Examples section or >>> line")
    if inspect.isclass(obj):
        for method_name, method in public_methods(obj).items():
            method_doc = method.__doc__
            if not (method_doc and method_doc.strip()):
                found.append(f"{name}.{method_name} has no docstring")
            elif not (has_example(method_doc) or has_example(doc)):
                found.append(f"{name}.{method_name} has no example, nor has its class")
    return found


OBJECTS = public_objects()


def test_the_walk_finds_the_public_api() -> None:
    for name in ("minigrad.layers.dense.Dense", "minigrad.training.fit", "minigrad.init.he_normal"):
        assert name in OBJECTS
    assert len(OBJECTS) > 80


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_public_object_is_documented_with_an_example(name: str) -> None:
    found = problems(OBJECTS[name])
    assert not found, "\n".join(found)


def test_type_aliases_are_not_taken_for_classes() -> None:
    aliases = [list[int], dict[str, Callable[[str, int], int]], Callable[[int], int]]
    assert not any(is_class_or_function(alias) for alias in aliases)
    assert is_class_or_function(dict) and is_class_or_function(public_modules)
    assert not [name for name in OBJECTS if name.startswith(("builtins.", "collections."))]


def test_the_check_catches_what_is_missing() -> None:
    def documented():
        """Twice x.

        >>> documented()
        """

    def no_example():
        """Twice x, with no example."""

    def undocumented():
        pass

    class Documented:
        """A class with an example.

        Examples
        --------
        >>> Documented().method()
        """

        def method(self) -> None:
            """One line is enough for a method."""

        def bare(self) -> None:
            pass

        @property
        def value(self) -> int:
            return 1

        def _private(self) -> None:
            pass

    def short(found: list[str]) -> list[str]:
        return [problem.rsplit(".", 1)[-1] for problem in found]

    assert problems(documented) == []
    assert short(problems(no_example)) == ["no_example has no Examples section or >>> line"]
    assert short(problems(undocumented)) == ["undocumented has no docstring"]
    assert short(problems(Documented)) == ["bare has no docstring", "value has no docstring"]
