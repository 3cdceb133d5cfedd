"""Small arithmetic builders shared by the datapaths."""
from amaranth.hdl import Const, unsigned

__all__ = ["tree_sum", "width_for"]


def tree_sum(terms):
    """Balanced adder tree over ``terms`` (Amaranth values); ``Const(0)`` if empty.

    Amaranth widens each ``+`` by one bit, so a balanced tree of n one-bit
    terms ends ``ceil(log2 n) + 1`` bits wide: never more than it needs.
    """
    terms = list(terms)
    if not terms:
        return Const(0, unsigned(1))
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def width_for(lo, hi):
    """``(width, signed)`` of the narrowest integer type holding ``lo..hi``."""
    lo, hi = int(lo), int(hi)
    if lo >= 0:
        return max(hi.bit_length(), 1), False
    return max((-lo - 1).bit_length(), hi.bit_length()) + 1, True
