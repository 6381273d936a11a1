"""The Optimizer base class: parameters, per-parameter state, hyperparameters, state_dict."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from minigrad._validation import _given, _shortened, check_integer, check_real
from minigrad.errors import ShapeError
from minigrad.optim import fused as fused_kernels
from minigrad.parameter import Parameter
from minigrad.typing import FloatArray

__all__ = ["BLOCK_SIZE", "GroupsDifferError", "HyperparameterChecks", "Optimizer", "ParamGroup"]

#: Parameters with more entries are updated in blocks of this many (1 MiB of float32)
BLOCK_SIZE = 1 << 18

#: The largest step count a state may hold: beyond 2**53 a count is no longer exact as a
#: float, and a count from a file near Python's float range would overflow beta ** t
MAX_COUNT = 2**53

#: Hyperparameters that enter the update as scalars of the dtype it computes in, so they
#: must be finite in that dtype (lr = 1e39 is inf in float32)
_ARRAY_SCALARS = ("lr", "weight_decay", "eps")

#: hyperparameter name -> check(name, value) returning the normalised value
HyperparameterChecks = dict[str, Callable[[str, Any], Any]]

#: hyperparameters of other optimizers (here, in PyTorch, Keras): assigning one that an
#: optimizer does not have is refused, as no update would read it
_OTHER_HYPERPARAMETERS = frozenset(
    {"learning_rate", "momentum", "nesterov", "dampening", "betas", "beta_1", "beta_2"}
    | {"beta1", "beta2", "eps", "epsilon", "weight_decay", "amsgrad", "rho", "decay"}
)


class Optimizer:
    """Base class of optimizers.

    An optimizer holds a list of :class:`Parameter` objects and, for each one, its state
    (momentum buffers, moments, a step count), keyed by the Parameter object itself and
    allocated once, at construction (or, for a parameter frozen then, at the first step
    after it is unfrozen). ``step()`` updates every trainable ``parameter.value`` **in
    place** from ``parameter.grad``, so layers and optimizers share the same arrays; a
    frozen parameter (``requires_grad = False``) is skipped: no update, no weight decay,
    no state created or changed.

    Param groups, as in torch.optim: ``params`` may be a list of dicts, each with
    ``"params"`` and any hyperparameters for those parameters (the others take the
    constructor's values, ``optimizer.defaults``); ``param_groups`` lists them (dicts
    holding ``"params"``, every hyperparameter and ``"initial_lr"``) and
    :meth:`add_param_group` adds one. A parameter may be in one group only.

    Hyperparameters are attributes that may change between steps (``optimizer.lr = 0.01``
    sets every group's lr; reading it gives the groups' common value, and a
    :class:`GroupsDifferError` when they differ). Schedules scale each group from its own
    initial lr (:meth:`set_scheduled_lr`). Every assignment is validated, so that
    a mistake fails where it is made and ``step()`` checks nothing: a subclass lists its
    hyperparameters in ``hyperparameter_checks``, each with the function that checks and
    normalises its value (numbers must be real numbers, not bools nor strings; flags must
    be bools), writes its update rule as a small function of (value, grad, state,
    hyperparameters) beside the class, and calls it from ``_update``. Assigning a
    hyperparameter that this optimizer does not have but others do (``sgd.momentum = 0.9``,
    Keras' ``optimizer.learning_rate = 0.01``) is an AttributeError, as no update reads it.

    float16 parameters are updated in float32: their state buffers are float32, and each
    step widens the value and the gradient into float32 work arrays, computes the update
    there and rounds the result into the float16 value once. In float16 itself Adam's eps
    (1e-8) rounds to 0 and a zero gradient gives 0/0 = NaN, and a momentum buffer
    overflows past 65504. (Unlike mixed-precision training, no float32 copy of the
    parameter is kept: a change smaller than half a float16 step is rounded away.)

    Proving steps finite (for :class:`~minigrad.optim.SafeStep`, through which ``fit``
    takes every step): a subclass may write ``step_bound(grad_norms, value_norms,
    state_norms)`` returning, per parameter, an upper bound on ||p' - p||, one on every
    array the step computes, and the new bounds on its state buffers' norms (which
    ``state_norms()`` measures); without it every step is taken with copies kept and
    checked.

    ``step()`` updates the arrays a parameter holds; if ``value`` or ``grad`` was replaced
    by another array since the last step, that array is checked first (same shape and
    dtype as when the optimizer was built, value writeable) and nothing is updated if one
    does not fit. Every step also reads the ``writeable`` flag of each value and state
    buffer (a flag can change in place), so that a read-only array stops the step before
    any update, not half-way through it.

    ``lr``, ``weight_decay`` and ``eps`` must be finite in the dtype the update computes in
    (float32 for float16 and float32 parameters): ``lr = 1e39`` is refused for float32
    parameters, whose update would turn it into inf. A state loaded with
    :meth:`load_state_dict` must hold finite buffers and counts up to 2**53.

    Parameters
    ----------
    params : iterable of Parameter, or list of dict
        Usually ``model.parameters()``. Must be non-empty, without duplicates. Or param
        groups: ``[{"params": head.parameters(), "lr": 1e-3}, {"params": ...}]``.
    fused : bool or None, default None, keyword only
        Update float32 and float64 parameters in one pass with the subclass's numba kernel
        (``_fused_update``, :mod:`minigrad.optim.fused`): the same bits as the NumPy
        update, faster (float16 ones keep the NumPy update). None uses it when numba is
        installed (``pip install 'minigrad-nn[fast]'``), True requires it (ImportError
        without numba), False never uses it; :attr:`fused` says which. Not a
        hyperparameter: state_dict and checkpoints leave it out.
    **hyperparameters
        One value for each name in ``hyperparameter_checks``.

    Shape: every state buffer has its parameter's shape; ``step()`` keeps shapes and dtypes.

    Examples
    --------
    sign-SGD, p <- p - lr sign(g): a subclass writes only the update (the base class holds
    the parameters and checks ``lr`` on every assignment):

    >>> from minigrad import Parameter
    >>> class SignSGD(Optimizer):
    ...     def _update(self, value, grad, state, work):
    ...         value -= self.lr * np.sign(grad)
    >>> p = Parameter(np.array([1.0, 2.0]))
    >>> p.grad[:] = [0.3, -4.0]
    >>> optimizer = SignSGD([p], lr=0.1)
    >>> optimizer.step()
    >>> p.value, optimizer
    (array([0.9, 2.1]), SignSGD(lr=0.1))
    >>> optimizer.lr = -1.0
    Traceback (most recent call last):
        ...
    ValueError: learning rate must be a finite number >= 0, got -1.0
    >>> optimizer.lr = "0.1"
    Traceback (most recent call last):
        ...
    TypeError: learning rate must be a real number, got '0.1' (str)

    Param groups: a larger lr for ``q``; inside ``_update`` ``self.lr`` is the lr of the
    group being updated:

    >>> q = Parameter(np.array([0.0]))
    >>> q.grad[:] = 1.0
    >>> optimizer = SignSGD([{"params": [p]}, {"params": [q], "lr": 1.0}], lr=0.1)
    >>> optimizer.step()
    >>> p.value, q.value, optimizer
    (array([0.8, 2.2]), array([-1.]), SignSGD(lr=0.1, param_groups=[{}, {'lr': 1.0}]))
    """

    hyperparameter_checks: ClassVar[HyperparameterChecks] = {
        "lr": lambda name, value: check_non_negative("learning rate", value),
    }

    def __init__(
        self,
        # Parameters or param-group dicts, not a mix (refused at run time); typed as one
        # iterable of either, as against a union of two iterables mypy infers a list of
        # groups with different keys (an lr in one only) as list[object] and refuses it
        params: Iterable[Parameter | Mapping[str, Any]],
        *,
        fused: bool | None = None,
        **hyperparameters: Any,
    ) -> None:
        self.__dict__["revision"] = 0  # counts hyperparameter changes (see _changed)
        #: the constructor's hyperparameters: what a group leaves out, and what groups added
        #: later (add_param_group) take
        self.defaults = self._validated_hyperparameters(hyperparameters)
        self.params: list[Parameter] = []
        self.param_groups: list[ParamGroup] = []
        self.state: dict[Parameter, dict[str, Any]] = {}
        # the shape and dtype every step relies on: the state buffers are made for them
        self._layouts: list[tuple[tuple[int, ...], np.dtype]] = []
        # per parameter, its group's hyperparameters (the group's own dict, so that a change
        # to the group reaches the step without a rebind)
        self._settings: list[dict[str, Any]] = []
        self._group: dict[str, Any] | None = None  # during a step: the group being updated
        specs, plain = _group_specs(params)
        for spec in specs:
            self._append_group(spec, plain)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        dtypes = [p.dtype for p in self.params]
        name = type(self).__name__
        self._fused = fused_kernels.resolve(fused, _has_fused_kernel(type(self)), dtypes, name)
        self._allocate_work()
        self._flags: list[bool] | None = None  # requires_grad per parameter at the last bind
        self._bound: list[tuple[Parameter, FloatArray, FloatArray]] = []
        self._plan: list[tuple[Any, ...]] = []
        self._fused_plan: list[
            tuple[FloatArray, FloatArray, dict[str, Any], dict[str, FloatArray], dict[str, Any]]
        ] = []
        self._buffers: list[FloatArray] = []  # every state array, whose flags step() reads
        self._active_states: list[dict[str, Any]] = []  # the states of trainable parameters
        self._bind()

    def _allocate_work(self) -> None:
        """One work array per computing dtype, shared by all parameters and reused by every
        step, so that updates allocate nothing. A parameter larger than BLOCK_SIZE entries is
        updated block by block through it, which also keeps each block's arrays in cache
        between the several passes of an update rule. float16 parameters are computed in
        float32 (see the class docstring): two more float32 arrays receive their value and
        gradient, block by block when they are large."""
        sizes: dict[np.dtype, int] = {}
        half = 0
        for p in self.params:
            dtype = state_dtype(p.dtype)
            sizes[dtype] = max(sizes.get(dtype, 0), min(p.size, BLOCK_SIZE))
            if dtype != p.dtype:
                half = max(half, min(p.size, BLOCK_SIZE))
        self._work = {dtype: np.empty(size, dtype) for dtype, size in sizes.items()}
        self._widened = (np.empty(half, np.float32), np.empty(half, np.float32))

    def _append_group(self, spec: dict[str, Any], plain: bool = False) -> None:
        """Check the param group ``spec`` (a dict with "params" and some hyperparameters),
        then add it; nothing is changed when a check fails."""
        index = len(self.param_groups)
        what = f"{type(self).__name__} param group {index}"
        if "params" not in spec:
            raise ValueError(
                f"{what} has no 'params': a param group is a dict "
                "{'params': parameters, hyperparameter: value, ...}"
            )
        allowed = {"params", "initial_lr", *self.hyperparameter_checks}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(
                f"{what} sets {_keys(unknown)}, which {type(self).__name__} does not have; its "
                f"hyperparameters are {', '.join(self.hyperparameter_checks)}"
            )
        params = spec["params"]
        if isinstance(params, Parameter):
            params = [params]
        # a plain list of parameters keeps the messages it always had ("optimizer ...")
        params = _parameter_list(params, "optimizer" if plain else what)
        places = {
            id(p): (group_index, position)
            for group_index, group in enumerate(self.param_groups)
            for position, p in enumerate(group["params"])
        }
        for position, p in enumerate(params):
            if id(p) in places:
                first, first_position = places[id(p)]
                raise ValueError(
                    f"a Parameter ({p.name or 'unnamed'}) is in two param groups of "
                    f"{type(self).__name__}: group {first} (position {first_position}) and "
                    f"group {index} (position {position}); give each parameter one group"
                )
        narrowest = _narrowest(params, len(self.params))
        settings = {
            name: self._checked(name, spec.get(name, self.defaults[name]), narrowest)
            for name in self.hyperparameter_checks
        }
        initial_lr = spec.get("initial_lr", settings["lr"])
        settings["initial_lr"] = check_non_negative(f"{what} initial_lr", initial_lr)
        values = {"params": params, **settings}
        self.params.extend(params)
        self._layouts.extend((p.shape, p.dtype) for p in params)
        self._settings.extend(values for _ in params)
        self.param_groups.append(ParamGroup(self, values, narrowest))

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (torch's method).

        ``param_group`` is a dict with ``"params"`` (Parameters none of the existing groups
        hold) and any hyperparameters; those it leaves out take the constructor's values
        (``optimizer.defaults``). The new parameters' state is allocated now.

        Examples
        --------
        >>> from minigrad import Parameter, SGD
        >>> body, head = Parameter(np.zeros(2)), Parameter(np.zeros(1))
        >>> optimizer = SGD([body], lr=0.1)
        >>> optimizer.add_param_group({"params": [head], "lr": 0.5})
        >>> [group["lr"] for group in optimizer.param_groups]
        [0.1, 0.5]
        """
        if not isinstance(param_group, Mapping):
            raise TypeError(
                "add_param_group takes a dict {'params': parameters, hyperparameter: value, ...}"
                f", got {_given(param_group)}"
            )
        self._append_group(dict(param_group))
        self._allocate_work()
        self._bind()
        self._changed()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("params", "state", "param_groups") and name in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}.{name} cannot be replaced: the state buffers and the "
                "step are built for the parameters given at construction; build a new "
                "optimizer for other parameters, or add some with add_param_group"
            )
        if name not in self.hyperparameter_checks and name in _OTHER_HYPERPARAMETERS:
            # optimizer.learning_rate = 0.01 (Keras' name) or sgd.momentum = 0.9 would set an
            # attribute that no update reads: refuse it instead of changing nothing
            raise AttributeError(
                f"{type(self).__name__} has no hyperparameter {name!r}, so setting it would "
                f"change nothing; its hyperparameters are {', '.join(self.hyperparameter_checks)}"
                + (" (the learning rate is lr)" if name == "learning_rate" else "")
            )
        if name in self.hyperparameter_checks:
            # every group's value, checked first against the dtypes of that group
            groups = self.param_groups
            checked = [self._checked(name, value, group._narrowest) for group in groups]
            for group, new in zip(groups, checked, strict=True):
                group._values[name] = new
            self._changed()
            return
        super().__setattr__(name, value)

    def __getattr__(self, name: str) -> Any:
        # called only for names that are not attributes: the hyperparameters
        if name in type(self).hyperparameter_checks:
            current = self.__dict__.get("_group")
            if current is not None:  # inside a step: the group being updated
                return current[name]
            groups = self.__dict__.get("param_groups")
            if groups:
                values = [group._values[name] for group in groups]
                if all(value == values[0] for value in values[1:]):
                    return values[0]
                raise GroupsDifferError(
                    f"{type(self).__name__}'s param groups have different {name} values "
                    f"({', '.join(repr(value) for value in values)}), so there is no one "
                    f"optimizer.{name}; read optimizer.param_groups[i][{name!r}] instead"
                )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _changed(self) -> None:
        """Count a change of hyperparameters, so that bounds proven for the old values are
        known to be stale (SafeStep compares ``revision``)."""
        self.__dict__["revision"] = self.__dict__.get("revision", 0) + 1

    def _checked(self, name: str, value: Any, narrowest: tuple[np.dtype, str] | None = None) -> Any:
        """Hyperparameter ``name``'s value, checked and normalised by its check and, for the
        scalars an update multiplies arrays by, against the dtype the update computes in
        (``narrowest``: that of the smallest range among a group's parameters, with the
        first parameter updated in it, named for messages)."""
        value = self.hyperparameter_checks[name](name, value)
        if name == "eps" and narrowest is not None and narrowest[0].type(value) == 0 < value:
            dtype, parameter = narrowest
            raise ValueError(
                f"eps={value!r} rounds to 0 in {dtype}, the dtype {parameter} "
                f"is updated in, and 0 / 0 would give NaN; eps must be at least "
                f"{float(np.finfo(dtype).smallest_subnormal):.3g} there (1e-8 is usual)"
            )
        if name in _ARRAY_SCALARS and isinstance(value, float) and narrowest is not None:
            dtype, parameter = narrowest
            if abs(value) > float(np.finfo(dtype).max):
                raise ValueError(
                    f"{name}={value!r} overflows {dtype} (largest {np.finfo(dtype).max:.3g}), "
                    f"the dtype {parameter} is updated in"
                )
        return value

    def _parameter_name(self, index: int) -> str:
        """``"parameter 0 (weight)"``, for messages."""
        return f"parameter {index} ({self.params[index].name or 'unnamed'})"

    def _per_parameter(self, name: str) -> list[Any]:
        """Hyperparameter ``name`` of each parameter's group, in parameter order (what a
        ``step_bound`` computes with)."""
        return [settings[name] for settings in self._settings]

    # -- what a subclass writes ------------------------------------------------------------

    def _initial_state(self, param: Parameter) -> dict[str, Any]:
        """The state of one parameter before the first step (buffers allocated here, with
        :meth:`_zeros` so that they have the dtype the update computes in)."""
        return {}

    def _update(
        self, value: FloatArray, grad: FloatArray, state: dict[str, Any], work: FloatArray
    ) -> None:
        """Update ``value`` in place from ``grad`` and ``state``, using ``work`` as scratch.

        The arrays are a whole parameter, or one block of it (then ``state``'s arrays are the
        matching blocks of the parameter's state); all four have the same shape and the same
        dtype (float32 copies of the value and the gradient for a float16 parameter).
        Hyperparameters read here (``self.lr``) are those of the parameter's group.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement _update")

    #: ``_update`` in one pass, ``_fused_update(value, grad, state, buffers)`` over a
    #: parameter's whole flattened arrays (float32 or float64; ``buffers`` holds state's
    #: arrays flattened, by key, and ``state`` the rest, such as step counts), giving the
    #: same bits: see :mod:`minigrad.optim.fused`. Used only where the class that defines it
    #: also defines the ``_update`` in effect, so that a subclass changing the rule is never
    #: updated by its parent's kernel.
    _fused_update: (
        Callable[[FloatArray, FloatArray, dict[str, Any], dict[str, FloatArray]], None] | None
    ) = None

    def _begin_step(self) -> None:
        """Called by :meth:`step` once the parameters are checked, before any update (Adam
        counts its steps here, in the states of the trainable parameters,
        ``self._active_states``)."""

    def _new_state(self, index: int) -> dict[str, Any]:
        """``_initial_state`` of parameter ``index``, with its group's hyperparameters as
        ``self.<name>`` (Adagrad's initial_accumulator_value)."""
        self.__dict__["_group"] = self._settings[index]
        try:
            return self._initial_state(self.params[index])
        finally:
            self.__dict__["_group"] = None

    def _updating(self) -> dict[str, Any]:
        """The param group being updated, whose hyperparameters an update rule reads
        (``group["lr"]``); only inside :meth:`step`, which sets it."""
        group = self._group
        if group is None:
            raise RuntimeError(
                f"{type(self).__name__} updates run inside step(), which sets the group"
            )
        return group

    def _extra_work(self, work: FloatArray, count: int) -> list[FloatArray]:
        """``count`` more scratch arrays like ``work`` (its shape and dtype), for an update
        rule that needs more than one; allocated once per dtype and reused by every step."""
        size = self._work[work.dtype].size
        extra = self.__dict__.setdefault("_extras", {})
        arrays = extra.get(work.dtype)
        if arrays is None or len(arrays) < count or arrays[0].size < size:
            arrays = extra[work.dtype] = [np.empty(size, work.dtype) for _ in range(count)]
        return [array[: work.size].reshape(work.shape) for array in arrays[:count]]

    def _zeros(self, param: Parameter) -> FloatArray:
        """A state buffer of zeros for ``param``: its shape, the dtype its update computes in."""
        return np.zeros(param.shape, state_dtype(param.dtype))

    # -- the public interface ---------------------------------------------------------------

    def step(self) -> None:
        """Apply one update to every trainable parameter (``requires_grad``), in place.

        Raises
        ------
        ShapeError, TypeError, ValueError
            A parameter's value or gradient was replaced by an array the optimizer cannot
            update (another shape or dtype, read-only); nothing is updated then.
        """
        # flag reads only: a value or a state buffer made read-only in place must stop the
        # step here, before any update, not with NumPy's error half-way through it.
        # Reading param.grad also fills in a pending zero_grad (one flag test; a pass over
        # the array only when pending): a parameter that no backward wrote since zero_grad()
        # is stepped with a zero gradient, not its stale one. After a break, _bind reads
        # every trainable param.grad the same way. A parameter frozen or unfrozen since the
        # last step changes the plan too.
        if [p.requires_grad for p in self.params] != self._flags:
            self._bind()
        else:
            for param, value, grad in self._bound:
                if param.grad is not grad or param.value is not value or not value.flags.writeable:
                    self._bind()
                    break
        for buffer in self._buffers:
            if not buffer.flags.writeable:
                raise self._read_only_buffer(buffer)
        self._begin_step()
        update, fused_update = self._update, self._fused_update
        attributes = self.__dict__
        try:
            for value, grad, state, work, wide_value, wide_grad, settings in self._plan:
                attributes["_group"] = settings
                if wide_value is None and work is not None:
                    update(value, grad, state, work)
                elif work is not None:  # a float16 parameter, whole
                    np.copyto(wide_value, value)
                    np.copyto(wide_grad, grad)
                    update(wide_value, wide_grad, state, work)
                    np.copyto(value, wide_value)
                else:
                    self._update_in_blocks(value, grad, state)
            for value, grad, state, buffers, settings in self._fused_plan:  # whole, flattened
                attributes["_group"] = settings
                assert fused_update is not None, "a fused plan is made only with a fused kernel"
                fused_update(value, grad, state, buffers)
        finally:
            attributes["_group"] = None

    def _read_only_buffer(self, buffer: FloatArray) -> ValueError:
        """The error for a state buffer that was made read-only, naming it."""
        for index, p in enumerate(self.params):
            for key, value in self.state.get(p, {}).items():
                if value is buffer:
                    return ValueError(
                        f"optimizer state {key!r} of {self._parameter_name(index)} is a "
                        "read-only array, and the step updates it in place; nothing was updated"
                    )
        return ValueError("an optimizer state buffer is a read-only array; nothing was updated")

    def _update_in_blocks(self, value: FloatArray, grad: FloatArray, state: dict[str, Any]) -> None:
        """Update a parameter of more than BLOCK_SIZE entries, block by block: consecutive
        blocks of its flattened value, gradient and state arrays (views), through the work
        array (and, for float16, the widened copies). State arrays of another shape (a
        0-d scalar such as NAdam's momentum product) are passed whole."""
        work = self._work[state_dtype(value.dtype)]
        widen = work.dtype != value.dtype
        flat_value, flat_grad = value.reshape(-1), grad.reshape(-1)
        buffers = {
            k: v.reshape(-1)
            for k, v in state.items()
            if isinstance(v, np.ndarray) and v.shape == value.shape
        }
        for start in range(0, value.size, work.size):
            stop = min(start + work.size, value.size)
            block_state = {**state, **{k: v[start:stop] for k, v in buffers.items()}}
            block_value, block_grad = flat_value[start:stop], flat_grad[start:stop]
            block_work = work[: stop - start]
            if widen:
                wide_value = self._widened[0][: stop - start]
                wide_grad = self._widened[1][: stop - start]
                np.copyto(wide_value, block_value)
                np.copyto(wide_grad, block_grad)
                self._update(wide_value, wide_grad, block_state, block_work)
                np.copyto(block_value, wide_value)
            else:
                self._update(block_value, block_grad, block_state, block_work)

    def _checked_arrays(self, index: int) -> tuple[FloatArray, FloatArray]:
        """Parameter ``index``'s value and gradient, if this optimizer can update them: arrays
        of the shape and dtype it was built for, the value writeable and, for a parameter
        updated in blocks, both contiguous. Raised otherwise, naming the parameter."""
        param = self.params[index]
        shape, dtype = self._layouts[index]
        what = f"optimizer parameter {index} ({param.name or 'unnamed'})"
        arrays = {"value": param.value, "grad": param.grad}
        for name, array in arrays.items():
            if not isinstance(array, np.ndarray):
                raise TypeError(
                    f"{what}: its {name} must be a NumPy array, got {type(array).__name__}"
                )
            replaced = (
                f"{what}: its {name} has {{}}, but {type(self).__name__} was built for "
                f"{{}}; change it in place (param.{name}[...] = new) or build a new optimizer"
            )
            if array.shape != shape:
                raise ShapeError(replaced.format(f"shape {array.shape}", f"shape {shape}"))
            if array.dtype != dtype:
                raise TypeError(replaced.format(f"dtype {array.dtype}", f"dtype {dtype}"))
        if not arrays["value"].flags.writeable:
            raise ValueError(
                f"{what}: its value is a read-only array, and the optimizer updates values in "
                "place; give the parameter a writeable array (a copy: np.array(value))"
            )
        if param.size > BLOCK_SIZE:
            for name, array in arrays.items():
                if not array.flags.c_contiguous:
                    raise ValueError(
                        f"{what}: its {name} is not C-contiguous, which an update in blocks "
                        "needs; use np.ascontiguousarray"
                    )
        return arrays["value"], arrays["grad"]

    def _bind(self) -> None:
        """Check the trainable parameters' arrays, allocate the state of those that have none
        yet (frozen until now), and prepare how step() updates them. Frozen parameters get
        no plan and no new state."""
        flags = [p.requires_grad for p in self.params]
        trainable = [index for index, flag in enumerate(flags) if flag]
        arrays = [self._checked_arrays(index) for index in trainable]  # may raise: no change yet
        for index in trainable:
            p = self.params[index]
            if p not in self.state:
                self.state[p] = self._new_state(index)
        self._flags = flags
        self._bound = [
            (self.params[index], value, grad)
            for index, (value, grad) in zip(trainable, arrays, strict=True)
        ]
        self._active_states = [self.state[self.params[index]] for index in trainable]
        self._buffers = [
            buffer
            for state in self._active_states
            for buffer in state.values()
            if isinstance(buffer, np.ndarray)
        ]
        self._plan = []
        self._fused_plan = []
        for index, (value, grad) in zip(trainable, arrays, strict=True):
            p, settings = self.params[index], self._settings[index]
            if (
                self._fused
                and p.dtype in fused_kernels.DTYPES
                and value.flags.c_contiguous
                and grad.flags.c_contiguous
            ):
                # a fused kernel makes one pass over the whole arrays: no blocks, no work array
                buffers = {
                    key: buffer.reshape(-1)
                    for key, buffer in self.state[p].items()
                    if isinstance(buffer, np.ndarray)
                }
                flat = (value.reshape(-1), grad.reshape(-1))
                self._fused_plan.append((*flat, self.state[p], buffers, settings))
                continue
            work = wide_value = wide_grad = None
            if p.size <= BLOCK_SIZE:
                work = self._work[state_dtype(p.dtype)][: p.size].reshape(p.shape)
                if work.dtype != p.dtype:
                    wide_value = self._widened[0][: p.size].reshape(p.shape)
                    wide_grad = self._widened[1][: p.size].reshape(p.shape)
            self._plan.append((value, grad, self.state[p], work, wide_value, wide_grad, settings))

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero, for free: it marks them as zero (see
        :meth:`Parameter.zero_grad <minigrad.Parameter.zero_grad>`).

        The next backward overwrites them without writing the zeros first; anything else
        that reads ``.grad`` (a layer of your own adding into it, clipping, a ``step()``
        with no backward in between) sees zeros. Never required in minigrad (a layer's
        backward overwrites ``.grad`` rather than adding to it) and always safe to call, so
        PyTorch-style loops work unchanged.
        """
        for param in self.params:
            param.zero_grad()

    @property
    def fused(self) -> bool:
        """Whether :meth:`step` updates the float32 and float64 parameters with the fused
        kernels of :mod:`minigrad.optim.fused` (decided at construction from the ``fused``
        argument; float16 parameters always take the NumPy update, computed in float32)."""
        return self._fused

    @property
    def hyperparameter_names(self) -> tuple[str, ...]:
        """The names of the hyperparameters, in ``hyperparameter_checks`` order."""
        return tuple(self.hyperparameter_checks)

    def hyperparameters(self) -> dict[str, Any]:
        """The current hyperparameters, by name, where every param group has the same value
        (a ValueError naming the first that differs otherwise: read ``param_groups``)."""
        return {name: getattr(self, name) for name in self.hyperparameter_checks}

    def set_scheduled_lr(self, lr: float) -> None:
        """Set the learning rate a schedule gives, keeping each group's ratio to the rest.

        A schedule computes the lr for the constructor's lr (``defaults["lr"]``); each param
        group gets ``lr * initial_lr / defaults["lr"]``, its own initial lr scaled by the
        same factor, as PyTorch's schedulers scale each group from its own ``initial_lr``.
        Groups that started at the constructor's lr (all of them, without groups) get
        ``lr`` itself: ``optimizer.lr = lr``. ``LearningRateScheduler`` calls this.

        Examples
        --------
        >>> from minigrad import Parameter, SGD
        >>> body, head = Parameter(np.zeros(2)), Parameter(np.zeros(1))
        >>> optimizer = SGD([{"params": [body]}, {"params": [head], "lr": 0.1}], lr=0.01)
        >>> optimizer.set_scheduled_lr(0.005)  # half the constructor's lr: every group halves
        >>> [group["lr"] for group in optimizer.param_groups]
        [0.005, 0.05]
        """
        lr = check_non_negative("learning rate", lr)
        default = self.defaults["lr"]
        values = []
        for index, group in enumerate(self.param_groups):
            initial = group._values["initial_lr"]
            if initial == default:
                value = lr
            elif default == 0:
                raise ValueError(
                    f"cannot scale param group {index}'s lr from its initial lr {initial!r}: "
                    "the constructor's lr is 0, so a schedule's lr sets no ratio; give the "
                    "optimizer a non-zero lr or set each group's lr yourself"
                )
            else:
                value = lr / default * initial
            values.append(self._checked("lr", value, group._narrowest))
        for group, value in zip(self.param_groups, values, strict=True):
            group._values["lr"] = value
        self._changed()

    def _validated_hyperparameters(
        self, values: Any, narrowest: tuple[np.dtype, str] | None = None, what: str = ""
    ) -> dict[str, Any]:
        """Every hyperparameter checked and normalised; nothing is set."""
        what = what or f"{type(self).__name__} hyperparameters"
        if not isinstance(values, Mapping):
            raise TypeError(f"{what} must be a dict, got {_given(values)}")
        unknown = set(values) - set(self.hyperparameter_checks)
        missing = set(self.hyperparameter_checks) - set(values)
        if unknown or missing:
            raise ValueError(
                f"{what} are {list(self.hyperparameter_checks)}; "
                f"missing {sorted(missing)}, unexpected {_keys(unknown)}"
            )
        return {
            name: self._checked(name, values[name], narrowest)
            for name in self.hyperparameter_checks
        }

    def state_dict(self) -> dict[str, Any]:
        """A snapshot: the constructor's hyperparameters (``"hyperparameters"``), each param
        group's hyperparameters with its parameters as indices (``"param_groups"``, as in
        torch), and, per parameter in order, copies of its state (``{}`` for a parameter
        that has none: frozen since construction)."""
        index = {id(p): i for i, p in enumerate(self.params)}
        return {
            "hyperparameters": dict(self.defaults),
            "param_groups": [
                {
                    "params": [index[id(p)] for p in group["params"]],
                    **{key: value for key, value in group.items() if key != "params"},
                }
                for group in self.param_groups
            ],
            "state": [
                {key: _copy(value) for key, value in self.state.get(p, {}).items()}
                for p in self.params
            ],
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyperparameters, param groups and per-parameter state from
        :meth:`state_dict` output.

        Everything is checked before anything is written: the structure (a dict with
        ``"hyperparameters"``, a dict, ``"state"``, a list with one dict per parameter, and
        optionally ``"param_groups"``), each state's keys, each buffer's shape, dtype and
        values (finite; an optimizer may allow more, see ``_buffer_problem``), each
        count (an integer in [0, 2**53]) and each hyperparameter (as on assignment).
        ``"param_groups"`` must list this optimizer's groups, with the same parameters;
        without it (a state_dict from before param groups) every group takes
        ``"hyperparameters"``. Buffers are copied into the existing arrays; an empty state
        (``{}``) leaves a parameter without state, allocated when it is next stepped.

        Raises
        ------
        TypeError
            A part of the wrong type (``state=None``, a buffer that is not an array, a
            count that is not an integer, a hyperparameter that is not a number).
        ValueError
            The wrong number of parameters or keys, a buffer of another shape or dtype or
            holding NaN or inf, a count out of range, an invalid hyperparameter or param
            groups that are not this optimizer's.
        """
        required = {"hyperparameters", "state"}
        if not isinstance(state_dict, Mapping) or not (
            required <= set(state_dict) <= required | {"param_groups"}
        ):
            raise (ValueError if isinstance(state_dict, Mapping) else TypeError)(
                "an optimizer state_dict is a dict with the keys 'hyperparameters' and 'state' "
                f"(and 'param_groups'), got {type(state_dict).__name__}"
                + (f" with keys {_keys(state_dict)}" if isinstance(state_dict, Mapping) else "")
            )
        states = state_dict["state"]
        if not isinstance(states, (list, tuple)):
            raise TypeError(
                "optimizer state_dict['state'] must be a list with one dict per parameter, "
                f"got {_given(states)}"
            )
        if len(states) != len(self.params):
            raise ValueError(
                f"optimizer state has {len(states)} parameters, this optimizer has "
                f"{len(self.params)}"
            )
        templates: list[dict[str, Any] | None] = []  # None: no state
        for index, (param, saved) in enumerate(zip(self.params, states, strict=True)):
            if not isinstance(saved, Mapping):
                raise TypeError(
                    f"optimizer state of parameter {index} must be a dict, got {_given(saved)}"
                )
            own = self.state.get(param)
            if own is None:
                own = self._new_state(index)
            if not saved and own:
                templates.append(None)
                continue
            if set(saved) != set(own):
                raise ValueError(
                    f"optimizer state of parameter {index} has keys {_keys(saved)}, "
                    f"expected {sorted(own)}"
                )
            for key, value in own.items():
                what = f"optimizer state {key!r} of parameter {index}"
                _check_state_entry(what, value, saved[key])
                if isinstance(value, np.ndarray):
                    problem = self._buffer_problem(key, saved[key])
                    if problem is not None:
                        raise ValueError(f"{what} {problem}; nothing was loaded")
            templates.append(own)
        defaults = self._validated_hyperparameters(
            state_dict["hyperparameters"], _narrowest(self.params, 0)
        )
        groups = self._loaded_groups(state_dict.get("param_groups"), state_dict["hyperparameters"])
        # everything is valid: write
        self.defaults = defaults
        for group, values in zip(self.param_groups, groups, strict=True):
            group._values.update(values)
        for param, saved, own in zip(self.params, states, templates, strict=True):
            if own is None:
                self.state.pop(param, None)
                continue
            self.state[param] = own
            for key, value in own.items():
                if isinstance(value, np.ndarray):
                    np.copyto(value, saved[key])
                else:
                    own[key] = int(saved[key])
        self._flags = None  # states may have been created or dropped: bind again
        self._changed()

    def _loaded_groups(self, saved: Any, hyperparameters: Any) -> list[dict[str, Any]]:
        """Each group's hyperparameters (and initial_lr) from a state_dict's
        ``"param_groups"``, checked against this optimizer's groups; from
        ``"hyperparameters"`` for every group when there are none."""
        if saved is None:
            values = []
            for group in self.param_groups:
                checked = self._validated_hyperparameters(hyperparameters, group._narrowest)
                values.append({**checked, "initial_lr": checked["lr"]})
            return values
        if not isinstance(saved, (list, tuple)):
            raise TypeError(
                f"optimizer state_dict['param_groups'] must be a list, got {_given(saved)}"
            )
        if len(saved) != len(self.param_groups):
            raise ValueError(
                f"optimizer state_dict has {len(saved)} param groups, this optimizer has "
                f"{len(self.param_groups)}"
            )
        position = {id(p): i for i, p in enumerate(self.params)}
        values = []
        for index, (group, entry) in enumerate(zip(self.param_groups, saved, strict=True)):
            what = f"optimizer state_dict param group {index}"
            if not isinstance(entry, Mapping):
                raise TypeError(f"{what} must be a dict, got {_given(entry)}")
            own = [position[id(p)] for p in group["params"]]
            if entry.get("params") != own:
                raise ValueError(
                    f"{what} holds parameters {_shortened(entry.get('params'))}, this "
                    f"optimizer's holds {own}: the groups must be built the same way"
                )
            rest = {key: entry[key] for key in entry if key not in ("params", "initial_lr")}
            checked = self._validated_hyperparameters(rest, group._narrowest, what)
            initial = check_non_negative(
                f"{what} initial_lr", entry.get("initial_lr", checked["lr"])
            )
            values.append({**checked, "initial_lr": initial})
        return values

    def _buffer_problem(self, key: str, buffer: FloatArray) -> str | None:
        """What makes ``buffer`` unfit to be loaded as state buffer ``key`` (its shape and
        dtype are already checked), or None. Here: NaN or inf, which would make every later
        step non-finite. A subclass may refuse more, or allow a value its own steps reach."""
        return _first_bad(buffer, ~np.isfinite(buffer), "NaN or infinite values")

    def __repr__(self) -> str:
        try:
            settings = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        except GroupsDifferError:  # the constructor's values, and what each group changes
            settings = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
            changes = [
                {k: v for k, v in group.items() if k in self.defaults and v != self.defaults[k]}
                for group in self.param_groups
            ]
            settings += f", param_groups={changes!r}"
        return f"{type(self).__name__}({settings})"


class GroupsDifferError(ValueError, AttributeError):
    """``optimizer.lr`` (or another hyperparameter) read where param groups hold different
    values: there is no one value, read ``optimizer.param_groups`` instead.

    A ValueError, and an AttributeError so that ``getattr(optimizer, "lr", None)`` answers
    None rather than raising.

    >>> from minigrad import Parameter, SGD
    >>> optimizer = SGD([{"params": [Parameter(np.zeros(1))], "lr": 0.1},
    ...                  {"params": [Parameter(np.zeros(1))]}], lr=0.01)
    >>> optimizer.lr  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    minigrad.optim.base.GroupsDifferError: SGD's param groups have different lr values ...
    >>> getattr(optimizer, "lr", None) is None
    True
    """


class ParamGroup(MutableMapping[str, Any]):
    """One param group of an optimizer, as a dict: ``"params"`` (its Parameters), every
    hyperparameter, and ``"initial_lr"`` (the lr it started with, which schedules scale).

    Read and written like torch's param-group dicts (``group["lr"] = 0.01``), but every
    assignment is checked as ``optimizer.lr = ...`` is, keys cannot be added or removed,
    and ``"params"`` cannot be replaced (use :meth:`Optimizer.add_param_group`).

    >>> from minigrad import Parameter, SGD
    >>> optimizer = SGD([Parameter(np.zeros(1), name="w")], lr=0.1)
    >>> group = optimizer.param_groups[0]
    >>> group["lr"] = 0.05
    >>> group  # doctest: +NORMALIZE_WHITESPACE
    {'params': [Parameter(name='w', shape=(1,), dtype=float64)], 'lr': 0.05,
     'weight_decay': 0.0, 'initial_lr': 0.1}
    >>> group["lr"] = -1.0
    Traceback (most recent call last):
        ...
    ValueError: learning rate must be a finite number >= 0, got -1.0
    """

    def __init__(
        self,
        optimizer: Optimizer,
        values: dict[str, Any],
        narrowest: tuple[np.dtype, str] | None,
    ) -> None:
        self._optimizer, self._values, self._narrowest = optimizer, values, narrowest

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        optimizer = self._optimizer
        if key == "params":
            raise TypeError(
                "a param group's 'params' cannot be replaced: the optimizer's state is built "
                "for them; add parameters with optimizer.add_param_group({'params': [...]})"
            )
        if key == "initial_lr":
            value = check_non_negative("initial_lr", value)
        elif key in optimizer.hyperparameter_checks:
            value = optimizer._checked(key, value, self._narrowest)
        else:
            raise KeyError(
                f"{type(optimizer).__name__} has no hyperparameter {key!r}; a param group holds "
                f"{', '.join(self._values)}"
            )
        self._values[key] = value
        optimizer._changed()

    def __delitem__(self, key: str) -> None:
        raise TypeError(f"a param group's keys cannot be removed (tried {key!r})")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return repr(self._values)


def _group_specs(params: Any) -> tuple[list[dict[str, Any]], bool]:
    """``params`` as a list of param-group dicts (the dicts given, or one group holding a
    plain iterable of Parameters) and whether it was that plain iterable."""
    if isinstance(params, (Parameter, Mapping)) or not isinstance(params, Iterable):
        raise TypeError(
            f"optimizer takes an iterable of Parameters, got {type(params).__name__}; pass "
            "model.parameters() (or a list of param-group dicts, {'params': ..., 'lr': ...})"
        )
    items = list(params)
    groups = [isinstance(item, Mapping) for item in items]
    if items and all(groups):
        return [dict(item) for item in items], False
    if any(groups):
        raise TypeError(
            "optimizer takes a list of Parameters or a list of param-group dicts "
            f"({{'params': ..., 'lr': ...}}), not a mix: item {groups.index(True)} is a dict"
        )
    return [{"params": items}], True


def _narrowest(params: list[Parameter], offset: int) -> tuple[np.dtype, str] | None:
    """The compute dtype of the smallest range (and eps) among ``params``, with the first
    parameter updated in it, named by its index from ``offset`` (for messages); None for no
    parameters."""
    if not params:
        return None
    dtype, index = max(
        ((state_dtype(p.dtype), index) for index, p in enumerate(params)),
        key=lambda pair: (float(np.finfo(pair[0]).eps), -pair[1]),
    )
    return dtype, f"parameter {offset + index} ({params[index].name or 'unnamed'})"


def state_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype an update computes in, and its state is kept in, for parameters of ``dtype``:
    float32 for float16 (whose 5-bit exponent loses eps, g^2 and momentum sums), else
    ``dtype`` itself.

    >>> state_dtype(np.dtype(np.float16)), state_dtype(np.dtype(np.float64))
    (dtype('float32'), dtype('float64'))
    """
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


def _has_fused_kernel(cls: type[Optimizer]) -> bool:
    """Whether the class that defines ``cls``'s ``_update`` also defines ``_fused_update``."""
    owner = next(c for c in cls.__mro__ if "_update" in c.__dict__)
    return owner.__dict__.get("_fused_update") is not None


def _check_state_entry(what: str, own: Any, saved: Any) -> None:
    """Raise unless ``saved`` can replace ``own``: an array of the same shape and dtype, or a
    count (an integer in [0, MAX_COUNT])."""
    if isinstance(own, np.ndarray):
        if not isinstance(saved, np.ndarray):
            raise TypeError(f"{what} must be a NumPy array, got {_given(saved)}")
        if saved.shape != own.shape or saved.dtype != own.dtype:
            raise ValueError(
                f"{what} has shape {saved.shape} and dtype {saved.dtype}, "
                f"expected {own.shape} and {own.dtype}"
            )
    elif isinstance(saved, (bool, np.bool_)) or not isinstance(saved, (int, np.integer)):
        raise TypeError(f"{what} must be an integer count >= 0, got {_given(saved)}")
    elif saved < 0:
        raise ValueError(f"{what} must be an integer count >= 0, got {_shortened(saved)}")
    elif saved > MAX_COUNT:
        raise ValueError(
            f"{what} must be an integer count of at most 2**53, got {_shortened(saved)}"
        )


def _first_bad(array: FloatArray, bad: NDArray[np.bool_], what: str) -> str | None:
    """``"holds <what>: nan at index (0, 2), 3 in all"`` for the first True of ``bad`` (a mask
    of ``array``'s shape), or None when there is none."""
    if not bad.any():
        return None
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    return f"holds {what}: {array[first]} at index {first}, {int(bad.sum())} in all"


def _keys(mapping: Iterable[Any]) -> list[str]:
    """The keys of a dict from outside, sorted as text for a message, each shortened (a key
    may be any object, even an integer too long for str())."""
    return sorted(key if isinstance(key, str) else _shortened(key) for key in mapping)


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) else value


def _parameter_list(params: Iterable[Parameter], what: str) -> list[Parameter]:
    """``params`` as a list of distinct Parameters, or an error saying what ``what`` takes."""
    if isinstance(params, Parameter) or not isinstance(params, Iterable):
        raise TypeError(
            f"{what} takes an iterable of Parameters, got {type(params).__name__}; "
            "pass model.parameters()"
        )
    params = list(params)
    if not params and what == "optimizer":
        raise ValueError("optimizer got an empty parameter list")
    for index, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(
                f"{what} parameter {index} is a {type(p).__name__}, not a minigrad "
                "Parameter; pass model.parameters()"
            )
    seen: dict[int, int] = {}
    for index, p in enumerate(params):
        if id(p) in seen:
            raise ValueError(
                f"{what} got the same Parameter ({p.name or 'unnamed'}) twice: "
                f"at positions {seen[id(p)]} and {index}"
            )
        seen[id(p)] = index
    return params


def real(name: str, value: Any, **bounds: Any) -> float:
    """:func:`~minigrad._validation.check_real`, with an integer too large for a float
    reported as a ValueError naming ``name`` (float() raises a bare OverflowError)."""
    try:
        return check_real(name, value, **bounds)
    except OverflowError:
        raise ValueError(f"{name} must be a finite number, got {_given(value)}") from None


def raise_for_scalars(function: str, **scalars: Any) -> None:
    """Raise TypeError naming the first of an update function's scalar arguments that is
    not a real number (a ValueError for a ``step`` that is not an integer in [1, 2**53]);
    return if all are. Called only once the update has failed, so it costs the step nothing.
    """
    for name, value in scalars.items():
        if name == "step":
            check_integer(f"{function}: step", value, minimum=1, maximum=MAX_COUNT)
        elif isinstance(value, (str, bytes)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{function}: {name} must be a real number, got {_given(value)}")


def check_fraction(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1): TypeError for a non-number, ValueError outside."""
    number = real(name, value, finite=False)
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {_shortened(value)}")
    return number


def check_non_negative(name: str, value: Any) -> float:
    """``value`` as a finite float >= 0: TypeError for a non-number, ValueError otherwise."""
    return real(name, value, minimum=0.0)


def decayed_gradient(
    value: FloatArray, grad: FloatArray, weight_decay: float, scratch: FloatArray
) -> FloatArray:
    """g + weight_decay * value (the L2 gradient), in ``scratch``; ``grad`` itself when 0."""
    if weight_decay == 0:
        return grad
    np.multiply(value, weight_decay, out=scratch)
    scratch += grad
    return scratch
