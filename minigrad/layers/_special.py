"""The error function and its complement, vectorised: what the exact GELU needs (NumPy has no
erf, and scipy is not a dependency).

The rational approximations are those of Sun's fdlibm (s_erf.c), accurate to within an ulp
in float64. Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved. Developed at
SunPro, a Sun Microsystems, Inc. business. Permission to use, copy, modify, and distribute
this software is freely granted, provided that this notice is preserved.

Each function evaluates the approximation of each interval of |x| only on the entries that
fall in it. float32 arrays are computed in float32 (to a few float32 ulps), float16 ones in
float32 and rounded back; integers and booleans become float64.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from minigrad.typing import FloatArray

# erf(1) rounded to 24 bits: on [0.84375, 1.25], erf(x) = ERX + P(s) / Q(s) with s = |x| - 1
_ERX = 8.45062911510467529297e-01
# On |x| < 0.84375: erf(x) = x + x P(x^2) / Q(x^2)
_PP = (
    1.28379167095512558561e-01,
    -3.25042107247001499370e-01,
    -2.84817495755985104766e-02,
    -5.77027029648944159157e-03,
    -2.37630166566501626084e-05,
)
_QQ = (
    1.0,
    3.97917223959155352819e-01,
    6.50222499887672944485e-02,
    5.08130628187576562776e-03,
    1.32494738004321644526e-04,
    -3.96022827877536812320e-06,
)
_PA = (
    -2.36211856075265944077e-03,
    4.14856118683748331666e-01,
    -3.72207876035701323847e-01,
    3.18346619901161753674e-01,
    -1.10894694282396677476e-01,
    3.54783043256182359371e-02,
    -2.16637559486879084300e-03,
)
_QA = (
    1.0,
    1.06420880400844228286e-01,
    5.40397917702171048937e-01,
    7.18286544141962662868e-02,
    1.26171219808761642112e-01,
    1.36370839120290507362e-02,
    1.19844998467991074170e-02,
)
# On 1.25 <= |x| < 1/0.35 (RA, SA) and 1/0.35 <= |x| < 28 (RB, SB), with s = 1 / x^2:
# erfc(|x|) = exp(-x^2 - 0.5625 + R(s) / S(s)) / |x|
_RA = (
    -9.86494403484714822705e-03,
    -6.93858572707181764372e-01,
    -1.05586262253232909814e01,
    -6.23753324503260060396e01,
    -1.62396669462573470355e02,
    -1.84605092906711035994e02,
    -8.12874355063065934246e01,
    -9.81432934416914548592e00,
)
_SA = (
    1.0,
    1.96512716674392571292e01,
    1.37657754143519042600e02,
    4.34565877475229228821e02,
    6.45387271733267880336e02,
    4.29008140027567833386e02,
    1.08635005541779435134e02,
    6.57024977031928170135e00,
    -6.04244152148580987438e-02,
)
_RB = (
    -9.86494292470009928597e-03,
    -7.99283237680523006574e-01,
    -1.77579549177547519889e01,
    -1.60636384855821916062e02,
    -6.37566443368389627722e02,
    -1.02509513161107724954e03,
    -4.83519191608651397019e02,
)
_SB = (
    1.0,
    3.03380607434824582924e01,
    3.25792512996573918826e02,
    1.53672958608443695994e03,
    3.19985821950859553908e03,
    2.55305040643316442583e03,
    4.74528541206955367215e02,
    -2.24409524465858183362e01,
)
#: Beyond this |x|, erfc(|x|) underflows to 0 in float64 (and so erf(x) = +-1)
_LARGE = 28.0
#: Integer views and masks that keep the upper half of a float's significand, so that the
#: square of the truncated value is exact (fdlibm's SET_LOW_WORD(z, 0))
_TRUNCATE = {
    np.dtype(np.float64): (np.uint64, np.uint64(0xFFFF_FFFF_0000_0000)),
    np.dtype(np.float32): (np.uint32, np.uint32(0xFFFF_E000)),
}


def erf(x: ArrayLike) -> FloatArray:
    """The error function erf(x) = 2 / sqrt(pi) int_0^x exp(-t^2) dt, element-wise.

    Shape: any -> same, of x's float dtype (float64 for integers and booleans).

    >>> erf(np.array([0.0, 0.5, -3.0, np.inf]))
    array([ 0.        ,  0.52049988, -0.99997791,  1.        ])
    """
    x, dtype = _floats(x)
    flat, out = x.reshape(-1), np.empty(x.size, x.dtype)
    small, near_one, tail = _intervals(flat)
    t = flat.take(small)
    out[small] = t + t * _ratio(t * t, _PP, _QQ)
    t = flat.take(near_one)
    out[near_one] = np.copysign(_ERX + _ratio(np.abs(t) - 1.0, _PA, _QA), t)
    t = flat.take(tail)  # NaN included: copysign(1 - NaN, NaN) is NaN
    out[tail] = np.copysign(1.0 - _erfc_tail(np.abs(t)), t)
    return out.reshape(x.shape).astype(dtype, copy=False)


def erfc(x: ArrayLike) -> FloatArray:
    """The complementary error function erfc(x) = 1 - erf(x), element-wise, with full
    relative precision in its tail (erfc(26) = 5.6e-296 in float64, where 1 - erf(26) is 0).

    Shape: any -> same, of x's float dtype (float64 for integers and booleans).

    >>> erfc(np.array([0.0, 1.0, 10.0, -np.inf]))
    array([1.00000000e+00, 1.57299207e-01, 2.08848758e-45, 2.00000000e+00])
    """
    x, dtype = _floats(x)
    flat, out = x.reshape(-1), np.empty(x.size, x.dtype)
    small, near_one, tail = _intervals(flat)
    # Branches are chosen by arithmetic, not np.where: on a random pattern (the signs of a
    # layer's inputs) np.where costs ten times more than these exact blends
    t = flat.take(small)
    ratio = t * _ratio(t * t, _PP, _QQ)
    # 1 - (x + x R) loses bits once x exceeds 1/4: fdlibm's 0.5 - (x R + (x - 0.5)) does not
    below = (t < 0.25).astype(t.dtype)
    out[small] = (1.0 - (t + ratio)) * below + (0.5 - (ratio + (t - 0.5))) * (1.0 - below)
    t = flat.take(near_one)
    sign = np.sign(t)  # (1 - erx) - R for x > 0, (1 + erx) + R for x < 0
    out[near_one] = (1.0 - sign * _ERX) - sign * _ratio(np.abs(t) - 1.0, _PA, _QA)
    t = flat.take(tail)
    sign = np.sign(t)  # erfc(|x|) for x > 0, 2 - erfc(|x|) for x < 0; NaN stays NaN
    out[tail] = (1.0 - sign) + sign * _erfc_tail(np.abs(t))
    return out.reshape(x.shape).astype(dtype, copy=False)


def _floats(x: ArrayLike) -> tuple[FloatArray, np.dtype]:
    """``x`` as float32 or float64 to compute in, and the dtype to return."""
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    if dtype.itemsize < 4:
        return x.astype(np.float32), dtype
    return x.astype(dtype, copy=False), dtype


def _intervals(x: FloatArray) -> tuple[NDArray[np.intp], ...]:
    """The indices of the entries of the flat ``x`` with |x| < 0.84375, with |x| in
    [0.84375, 1.25), and the rest (NaN included): each interval has its approximation.

    Gathering and scattering with index arrays costs a fraction of boolean indexing,
    whose random pattern defeats branch prediction."""
    a = np.abs(x)
    small = a < 0.84375
    rest = ~small
    rest &= ~(a < 1.25)
    return np.flatnonzero(small), np.flatnonzero((a >= 0.84375) & (a < 1.25)), np.flatnonzero(rest)


def _erfc_tail(a: FloatArray) -> FloatArray:
    """erfc(a) for a >= 1.25 (or NaN)."""
    out = np.where(np.isnan(a), a, 0.0)  # erfc(a) underflows to 0 for a >= 28; NaN stays
    finite = np.flatnonzero(a < _LARGE)
    a = a.take(finite)
    s = 1.0 / (a * a)
    middle = a < 1 / 0.35
    ratio = np.empty_like(a)
    ratio[middle] = _ratio(s[middle], _RA, _SA)
    ratio[~middle] = _ratio(s[~middle], _RB, _SB)
    # exp(-a^2) with a^2 exact: a = z + (a - z) with z of half the significand, so that
    # -a^2 = -z^2 - (z - a)(z + a) and z^2 is exact (a rounded a^2 loses ~a^2 ulps in exp)
    integer, mask = _TRUNCATE[a.dtype]
    z = (a.view(integer) & mask).view(a.dtype)
    ratio += (z - a) * (z + a)
    value = np.exp(ratio)
    value *= np.exp(-z * z - 0.5625)
    value /= a
    out[finite] = value
    return out


def _ratio(t: FloatArray, p: tuple[float, ...], q: tuple[float, ...]) -> FloatArray:
    """p(t) / q(t) for polynomials given by their coefficients from the constant up."""
    return _horner(t, p) / _horner(t, q)


def _horner(t: FloatArray, coefficients: tuple[float, ...]) -> FloatArray:
    result = t * coefficients[-1]
    for c in coefficients[-2:0:-1]:
        result += c
        result *= t
    result += coefficients[0]
    return result
