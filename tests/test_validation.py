"""The shared checks: Checked attributes, allocation sizes and float dtypes."""

from __future__ import annotations

import pickle
from functools import partial

import numpy as np
import pytest

from minigrad import _validation
from minigrad._validation import (
    Checked,
    check_allocation,
    check_bool,
    check_float_dtype,
    check_real,
)


class Owner:
    flag = Checked(check_bool, "A flag.")
    rate = Checked(partial(check_real, above=0), "A rate.")
    _flag = False  # the default of an instance that never assigns one

    def __init__(self, rate=1.0):
        self.rate = rate


class Child(Owner):
    pass


# -- Checked -----------------------------------------------------------------------------------


def test_assignments_are_checked_in_the_constructor_and_after():
    with pytest.raises(ValueError, match=r"Owner rate must be a finite number > 0, got -1"):
        Owner(rate=-1)
    owner = Owner()
    with pytest.raises(TypeError, match=r"Owner flag must be True or False, got 'False' \(str\)"):
        owner.flag = "False"
    with pytest.raises(TypeError, match=r"Owner rate must be a real number, got '2' \(str\)"):
        owner.rate = "2"
    assert owner.flag is False and owner.rate == 1.0  # unchanged by the refused assignments


def test_the_checked_value_is_what_is_stored_and_read():
    owner = Owner(rate=np.float32(0.5))
    owner.flag = np.bool_(True)
    assert owner.flag is True and type(owner.rate) is float and owner.rate == 0.5
    assert vars(owner) == {"_rate": 0.5, "_flag": True}


def test_a_class_attribute_gives_the_default_and_the_message_names_the_subclass():
    assert Owner().flag is False
    with pytest.raises(TypeError, match=r"^Child flag must be True or False"):
        Child().flag = 1


def test_an_attribute_without_default_that_was_never_set_is_an_attribute_error():
    class Bare:
        value = Checked(check_bool)

    with pytest.raises(AttributeError, match="_value"):
        _ = Bare().value


def test_the_class_attribute_is_the_descriptor_with_its_docstring():
    assert isinstance(Owner.flag, Checked) and isinstance(Owner.flag, property)
    assert Owner.flag.__doc__ == "A flag."
    assert Owner.__dict__["rate"].check.func is check_real


def test_checked_objects_survive_pickling():
    owner = Owner(rate=3.0)
    owner.flag = True
    copy = pickle.loads(pickle.dumps(owner))
    assert (copy.flag, copy.rate) == (True, 3.0)
    with pytest.raises(TypeError):
        copy.flag = "yes"


# -- check_allocation --------------------------------------------------------------------------


def test_an_allocation_that_fits_passes():
    check_allocation("a matrix", (1000, 1000), np.float64)
    check_allocation("nothing", (0, 10**30), np.float64)


def test_an_allocation_beyond_this_machines_memory_is_refused(monkeypatch):
    monkeypatch.setattr(_validation, "physical_memory", lambda: 2**30)
    with pytest.raises(
        MemoryError,
        match=r"^a matrix would hold 200,000,000 values of float64 \(1\.49 GiB\), more than "
        r"this machine's 1 GiB of memory$",
    ):
        check_allocation("a matrix", (10_000, 20_000), np.float64)
    monkeypatch.setattr(_validation, "physical_memory", lambda: None)  # not known: no limit
    check_allocation("a matrix", (10_000, 20_000), np.float64)


def test_an_allocation_beyond_any_array_is_refused():
    with pytest.raises(MemoryError, match=r"would hold 1\.27e\+30 values of int8 .*any array"):
        check_allocation("a vector", (2**100,), np.int8)


# -- check_float_dtype ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, "float32", np.dtype(np.float64), float])
def test_float_dtypes_are_returned_as_numpy_dtypes(dtype):
    assert check_float_dtype("dtype", dtype) == np.dtype(dtype)


@pytest.mark.parametrize(
    ("dtype", "shown"),
    [(None, "None"), (np.int64, "int64"), (complex, "complex128"), ("x", r"'x' \(str\)")],
)
def test_other_dtypes_are_a_type_error_naming_the_argument(dtype, shown):
    with pytest.raises(
        TypeError, match=rf"^layer dtype must be a floating-point type.*got {shown}"
    ):
        check_float_dtype("layer dtype", dtype)
