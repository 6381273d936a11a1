"""Testing helpers that minigrad's own tests use and users can call for their layers.

- :func:`check_gradients`: central finite-difference check of any Layer, model or Loss.
- :func:`numerical_gradient`: the finite-difference estimate itself.
- Hypothesis strategies (need the ``hypothesis`` package, in the ``test`` extra):
  :func:`batches`, :func:`batches_for`, :func:`floats_away_from_zero`,
  :func:`sequential_stacks`, :func:`nested_containers`, :func:`image_batches`,
  :func:`conv_stacks`.
"""

from minigrad.testing.gradcheck import (
    GradientCheckError,
    GradientReport,
    check_gradients,
    numerical_gradient,
)

_STRATEGIES = (
    "batches",
    "batches_for",
    "conv_stacks",
    "floats_away_from_zero",
    "image_batches",
    "nested_containers",
    "sequential_stacks",
)

__all__ = [
    "GradientCheckError",
    "GradientReport",
    "check_gradients",
    "numerical_gradient",
    *_STRATEGIES,
]


def __getattr__(name: str) -> object:
    # The strategies need hypothesis; import them on first use so that the gradient check
    # works without it.
    if name in _STRATEGIES:
        try:
            from minigrad.testing import strategies
        except ImportError as error:
            raise ImportError(
                f"minigrad.testing.{name} needs hypothesis: pip install 'minigrad-nn[test]' "
                "(or pip install hypothesis)"
            ) from error
        return getattr(strategies, name)
    raise AttributeError(f"module 'minigrad.testing' has no attribute {name!r}")
