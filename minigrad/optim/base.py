"""The Optimizer base class: parameters, per-parameter state, hyperparameters, state_dict."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from minigrad.parameter import Parameter

__all__ = ["BLOCK_SIZE", "HyperparameterChecks", "Optimizer"]

#: Parameters with more entries are updated in blocks of this many (1 MiB of float32)
BLOCK_SIZE = 1 << 18

#: hyperparameter name -> check(name, value) returning the normalised value
HyperparameterChecks = dict[str, Callable[[str, Any], Any]]


class Optimizer:
    """Base class of optimizers.

    An optimizer holds a list of :class:`Parameter` objects and, for each one, its state
    (momentum buffers, moments, a step count), keyed by the Parameter object itself and
    allocated once at construction. ``step()`` updates every ``parameter.value`` **in
    place** from ``parameter.grad``, so layers and optimizers share the same arrays.

    Hyperparameters are attributes that may change between steps (``optimizer.lr = 0.01``
    is how a schedule changes the learning rate). Every assignment is validated: a
    subclass lists its hyperparameters in ``hyperparameter_checks``, each with the function
    that checks and normalises its value, writes its update rule as a small function of
    (value, grad, state, hyperparameters) beside the class, and calls it from ``_update``.

    Parameters
    ----------
    params : iterable of Parameter
        Usually ``model.parameters()``. Must be non-empty, without duplicates.
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
    """

    hyperparameter_checks: ClassVar[HyperparameterChecks] = {
        "lr": lambda name, value: check_non_negative("learning rate", value),
    }

    def __init__(self, params: Iterable[Parameter], **hyperparameters: Any) -> None:
        self.params = _parameter_list(params)
        self._set_hyperparameters(hyperparameters)
        self.state: dict[Parameter, dict[str, Any]] = {
            p: self._initial_state(p) for p in self.params
        }
        # One work array per dtype, shared by all parameters and reused by every step, so that
        # updates allocate nothing. A parameter larger than BLOCK_SIZE entries is updated block
        # by block through it, which also keeps each block's arrays in cache between the
        # several passes of an update rule.
        sizes: dict[np.dtype, int] = {}
        for p in self.params:
            sizes[p.dtype] = max(sizes.get(p.dtype, 0), min(p.size, BLOCK_SIZE))
        self._work = {dtype: np.empty(size, dtype) for dtype, size in sizes.items()}
        self._whole: dict[Parameter, NDArray[np.floating]] = {
            p: self._work[p.dtype][: p.size].reshape(p.shape)
            for p in self.params
            if p.size <= BLOCK_SIZE
        }

    def __setattr__(self, name: str, value: Any) -> None:
        check = self.hyperparameter_checks.get(name)
        super().__setattr__(name, value if check is None else check(name, value))

    # -- what a subclass writes ------------------------------------------------------------

    def _initial_state(self, param: Parameter) -> dict[str, Any]:
        """The state of one parameter before the first step (buffers allocated here)."""
        return {}

    def _update(self, value: NDArray, grad: NDArray, state: dict[str, Any], work: NDArray) -> None:
        """Update ``value`` in place from ``grad`` and ``state``, using ``work`` as scratch.

        The arrays are a whole parameter, or one block of it (then ``state``'s arrays are the
        matching blocks of the parameter's state); all four have the same shape.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement _update")

    # -- the public interface ---------------------------------------------------------------

    def step(self) -> None:
        """Apply one update to every parameter, in place."""
        for param, state in self.state.items():
            work = self._whole.get(param)
            if work is not None:
                self._update(param.value, param.grad, state, work)
            else:
                for value, grad, block_state, block_work in self._blocks(param, state):
                    self._update(value, grad, block_state, block_work)

    def _blocks(
        self, param: Parameter, state: dict[str, Any]
    ) -> Iterator[tuple[NDArray, NDArray, dict[str, Any], NDArray]]:
        """Consecutive blocks of at most BLOCK_SIZE entries of a large parameter, its gradient
        and its state arrays (views of the flattened arrays), with the work array."""
        work = self._work[param.dtype]
        arrays = {"value": param.value, "grad": param.grad}
        arrays.update((k, v) for k, v in state.items() if isinstance(v, np.ndarray))
        for name, array in arrays.items():
            if not array.flags.c_contiguous:
                raise ValueError(
                    f"the optimizer needs contiguous arrays; {name} of {param!r} is not"
                )
        flat = {name: array.reshape(-1) for name, array in arrays.items()}
        for start in range(0, param.size, work.size):
            stop = min(start + work.size, param.size)
            block = {name: array[start:stop] for name, array in flat.items()}
            value, grad = block.pop("value"), block.pop("grad")
            yield value, grad, {**state, **block}, work[: stop - start]

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero.

        Never required in minigrad (a layer's backward overwrites ``.grad`` rather than
        adding to it) and always safe to call, so PyTorch-style loops work unchanged.
        """
        for param in self.params:
            param.zero_grad()

    @property
    def hyperparameter_names(self) -> tuple[str, ...]:
        """The names of the hyperparameters, in ``hyperparameter_checks`` order."""
        return tuple(self.hyperparameter_checks)

    def hyperparameters(self) -> dict[str, Any]:
        """The current hyperparameters, by name."""
        return {name: getattr(self, name) for name in self.hyperparameter_checks}

    def _validated_hyperparameters(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Every hyperparameter checked and normalised; nothing is set."""
        unknown = set(values) - set(self.hyperparameter_checks)
        missing = set(self.hyperparameter_checks) - set(values)
        if unknown or missing:
            raise ValueError(
                f"{type(self).__name__} hyperparameters are {list(self.hyperparameter_checks)}; "
                f"missing {sorted(missing)}, unexpected {sorted(unknown)}"
            )
        return {
            name: check(name, values[name]) for name, check in self.hyperparameter_checks.items()
        }

    def _set_hyperparameters(self, values: Mapping[str, Any]) -> None:
        for name, value in self._validated_hyperparameters(values).items():
            setattr(self, name, value)

    def state_dict(self) -> dict[str, Any]:
        """A snapshot: hyperparameters and, per parameter in order, copies of its state."""
        return {
            "hyperparameters": self.hyperparameters(),
            "state": [
                {key: _copy(value) for key, value in self.state[p].items()} for p in self.params
            ],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and per-parameter state from :meth:`state_dict` output.

        Everything is checked (count, keys, shapes, dtypes) before anything is written.
        Buffers are copied into the existing arrays.
        """
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"hyperparameters", "state"}:
            raise ValueError(
                "an optimizer state_dict is a dict with the keys 'hyperparameters' and 'state', "
                f"got {type(state_dict).__name__}"
                + (f" with keys {sorted(state_dict)}" if isinstance(state_dict, Mapping) else "")
            )
        states = state_dict["state"]
        if len(states) != len(self.params):
            raise ValueError(
                f"optimizer state has {len(states)} parameters, this optimizer has "
                f"{len(self.params)}"
            )
        for index, (param, saved) in enumerate(zip(self.params, states, strict=True)):
            own = self.state[param]
            if set(saved) != set(own):
                raise ValueError(
                    f"optimizer state of parameter {index} has keys {sorted(saved)}, "
                    f"expected {sorted(own)}"
                )
            for key, value in own.items():
                _check_state_entry(
                    f"optimizer state {key!r} of parameter {index}", value, saved[key]
                )
        self._validated_hyperparameters(state_dict["hyperparameters"])
        # everything is valid: write
        self._set_hyperparameters(state_dict["hyperparameters"])
        for param, saved in zip(self.params, states, strict=True):
            own = self.state[param]
            for key, value in own.items():
                if isinstance(value, np.ndarray):
                    np.copyto(value, saved[key])
                else:
                    own[key] = int(saved[key])

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({settings})"


def _check_state_entry(what: str, own: Any, saved: Any) -> None:
    """Raise unless ``saved`` can replace ``own``: an array of the same shape and dtype, or a
    count (int >= 0)."""
    if isinstance(own, np.ndarray):
        given = np.asarray(saved)
        if given.shape != own.shape or given.dtype != own.dtype:
            raise ValueError(
                f"{what} has shape {given.shape} and dtype {given.dtype}, "
                f"expected {own.shape} and {own.dtype}"
            )
    elif isinstance(saved, bool) or not isinstance(saved, (int, np.integer)) or saved < 0:
        raise ValueError(f"{what} must be an integer count >= 0, got {saved!r}")


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) else value


def _parameter_list(params: Iterable[Parameter]) -> list[Parameter]:
    if not isinstance(params, Iterable):
        raise TypeError(
            f"an optimizer takes an iterable of Parameters, got {type(params).__name__}; "
            "pass model.parameters()"
        )
    params = list(params)
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    for index, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(
                f"optimizer parameter {index} is a {type(p).__name__}, not a minigrad "
                "Parameter; pass model.parameters()"
            )
    seen: dict[int, int] = {}
    for index, p in enumerate(params):
        if id(p) in seen:
            raise ValueError(
                f"optimizer got the same Parameter ({p.name or 'unnamed'}) twice: "
                f"at positions {seen[id(p)]} and {index}"
            )
        seen[id(p)] = index
    return params


def check_fraction(name: str, value: float) -> float:
    """``value`` as a float in [0, 1), or ValueError."""
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


def check_non_negative(name: str, value: float) -> float:
    """``value`` as a finite float >= 0, or ValueError."""
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def decayed_gradient(
    value: NDArray, grad: NDArray, weight_decay: float, scratch: NDArray
) -> NDArray:
    """g + weight_decay * value (the L2 gradient), in ``scratch``; ``grad`` itself when 0."""
    if weight_decay == 0:
        return grad
    np.multiply(value, weight_decay, out=scratch)
    scratch += grad
    return scratch
