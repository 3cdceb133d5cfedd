"""Exact real arithmetic for reading a float graph as the integers it denotes.

A QONNX graph is float math on float constants. Every float32/float64
constant is an exact rational, and what a quantized layer does to its
integer sum ``Z`` is a chain of affine maps (weight and input scales, bias,
``Mul`` / ``Div``, BatchNorm), ``Relu`` and a quantizer. Only BatchNorm's
``1 / sqrt(var + eps)`` leaves the rationals, so one neuron's values live in
``Q(sqrt(r))``: :class:`Surd` is ``a + b sqrt(r)`` with rational ``a``, ``b``
and compares exactly (no float rounding decides a threshold).
"""
import math
from fractions import Fraction

from ..errors import HwgenError

__all__ = ["Surd", "exact", "floor", "ceil"]


def exact(x):
    """The exact rational value of a float or integer (numpy scalars too)."""
    if isinstance(x, Fraction):
        return x
    if isinstance(x, int):
        return Fraction(x)
    value = float(x)
    if not math.isfinite(value):
        raise HwgenError(f"constant {value} is not finite")
    return Fraction(value)


def _square_root(r):
    """``sqrt(r)`` as a Fraction when ``r`` is the square of a rational, else None."""
    n, d = r.numerator, r.denominator
    sn, sd = math.isqrt(n), math.isqrt(d)
    return Fraction(sn, sd) if sn * sn == n and sd * sd == d else None


class Surd:
    """``a + b * sqrt(r)``: ``a``, ``b`` rationals, ``r`` a positive rational
    that is not a square (or None when ``b`` is 0)."""
    __slots__ = ("a", "b", "r")

    def __init__(self, a, b=Fraction(0), r=None):
        self.a, self.b, self.r = exact(a), exact(b), r
        if self.b == 0:
            self.r = None

    @classmethod
    def sqrt(cls, r):
        """``sqrt(r)`` of a positive rational, exactly."""
        r = exact(r)
        if r <= 0:
            raise HwgenError(f"square root of {float(r)}, which is not positive")
        root = _square_root(r)
        return cls(root) if root is not None else cls(0, 1, r)

    @staticmethod
    def of(x):
        return x if isinstance(x, Surd) else Surd(x)

    def _radicand(self, other):
        if self.r is not None and other.r is not None and self.r != other.r:
            raise HwgenError("two BatchNormalizations scale one neuron by different square roots; "
                             "hwgen folds one BatchNormalization per layer")
        return self.r if self.r is not None else other.r

    def __add__(self, other):
        other = Surd.of(other)
        return Surd(self.a + other.a, self.b + other.b, self._radicand(other))

    __radd__ = __add__

    def __neg__(self):
        return Surd(-self.a, -self.b, self.r)

    def __sub__(self, other):
        return self + (-Surd.of(other))

    def __rsub__(self, other):
        return Surd.of(other) - self

    def __mul__(self, other):
        other = Surd.of(other)
        r = self._radicand(other)
        rr = r if r is not None else Fraction(0)
        return Surd(self.a * other.a + self.b * other.b * rr, self.a * other.b + self.b * other.a, r)

    __rmul__ = __mul__

    def inverse(self):
        if self.sign() == 0:
            raise HwgenError("division by zero in a constant")
        if self.r is None:
            return Surd(1 / self.a)
        norm = self.a * self.a - self.b * self.b * self.r   # nonzero: sqrt(r) is irrational
        return Surd(self.a / norm, -self.b / norm, self.r)

    def __truediv__(self, other):
        return self * Surd.of(other).inverse()

    def __rtruediv__(self, other):
        return Surd.of(other) * self.inverse()

    def sign(self):
        """-1, 0 or +1, exactly: compares ``a`` with ``-b sqrt(r)`` by squares."""
        sa = (self.a > 0) - (self.a < 0)
        sb = (self.b > 0) - (self.b < 0)
        if sb == 0 or sa == sb:
            return sa if sa else sb
        if sa == 0:
            return sb
        # opposite signs: the larger magnitude wins; never equal (sqrt(r) irrational)
        return sa if self.a * self.a > self.b * self.b * self.r else sb

    def _cmp(self, other):
        return (self - Surd.of(other)).sign()

    def __eq__(self, other):
        return self._cmp(other) == 0

    def __lt__(self, other):
        return self._cmp(other) < 0

    def __le__(self, other):
        return self._cmp(other) <= 0

    def __gt__(self, other):
        return self._cmp(other) > 0

    def __ge__(self, other):
        return self._cmp(other) >= 0

    __hash__ = None

    def is_rational(self):
        return self.b == 0

    def __float__(self):
        return float(self.a) + (float(self.b) * math.sqrt(self.r) if self.r is not None else 0.0)

    def __repr__(self):
        return f"Surd({self.a}, {self.b}, {self.r})"


def floor(x):
    """The largest integer ``<= x`` (a Surd or a rational), exactly."""
    x = Surd.of(x)
    if x.r is None:
        return math.floor(x.a)
    n = math.floor(float(x))
    while Surd(n) > x:
        n -= 1
    while Surd(n + 1) <= x:
        n += 1
    return n


def ceil(x):
    """The smallest integer ``>= x``, exactly."""
    return -floor(-Surd.of(x))
