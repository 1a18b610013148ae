"""Sizes: polynomials over size variables, and the three-way size solver.

A size is ``?`` (``None`` where a size is stored) or a ``Size``: an integer polynomial over
atoms with ``+ - *``. An atom is a size variable (a name) or an opaque ``//`` / ``%`` term
whose arguments are sizes. Variables and ``%`` terms denote non-negative integers, and so
does a ``//`` term whose numerator cannot be negative, which is what lets the solver decide
signs. ``decide(a, b)`` answers whether ``a = b`` is VALID (for every assignment), UNSAT
(for none) or UNKNOWN (a runtime check); it never answers VALID or UNSAT wrongly.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from typing import Union

from gtdsl._records import record


@record
class Opaque:
    """``num // den`` or ``num % den``: an atom the polynomial algebra does not look inside."""

    op: str  # "//" or "%"
    num: Size
    den: Size

    def __str__(self) -> str:
        return f"{_operand(self.num, False)} {self.op} {_operand(self.den, True)}"


Atom = Union[str, Opaque]
Mono = tuple[tuple[Atom, int], ...]  # sorted (atom, power) pairs; () is the constant monomial


# Sort keys and products are memoised: the checker builds the same few atoms and monomials
# over and over. The tables are bounded; a full one starts again empty.
_CACHE_LIMIT = 1 << 16
_ATOM_KEYS: dict[Atom, tuple[int, str]] = {}
_MONO_KEYS: dict[Mono, tuple] = {}
_MONO_PRODUCTS: dict[tuple[Mono, Mono], Mono] = {}


def _remember(table: dict, key: object, value: object) -> None:
    if len(table) >= _CACHE_LIMIT:
        table.clear()
    table[key] = value


def _atom_key(atom: Atom) -> tuple[int, str]:
    key = _ATOM_KEYS.get(atom)
    if key is None:
        key = (0, atom) if isinstance(atom, str) else (1, str(atom))
        _remember(_ATOM_KEYS, atom, key)
    return key


def _mono_key(mono: Mono) -> tuple:
    key = _MONO_KEYS.get(mono)
    if key is None:
        key = (-sum(p for _, p in mono), tuple((_atom_key(a), -p) for a, p in mono))
        _remember(_MONO_KEYS, mono, key)
    return key


def _term_key(term: tuple[Mono, int]) -> tuple:
    return _mono_key(term[0])


def _ap_key(ap: tuple[Atom, int]) -> tuple[int, str]:
    return _atom_key(ap[0])


def _mono_mul(a: Mono, b: Mono) -> Mono:
    if not a:
        return b
    if not b:
        return a
    out = _MONO_PRODUCTS.get((a, b))
    if out is None:
        powers: dict[Atom, int] = dict(a)
        for atom, p in b:
            powers[atom] = powers.get(atom, 0) + p
        out = tuple(sorted(powers.items(), key=_ap_key))
        _remember(_MONO_PRODUCTS, (a, b), out)
    return out


def _mono_div(a: Mono, b: Mono) -> Mono | None:
    """``a / b`` when ``b`` divides ``a``, else None."""
    powers: dict[Atom, int] = dict(a)
    for atom, p in b:
        if powers.get(atom, 0) < p:
            return None
        powers[atom] -= p
    return tuple(sorted(((k, v) for k, v in powers.items() if v), key=lambda ap: _atom_key(ap[0])))


@record
class Size:
    """An integer polynomial: ``terms`` are (monomial, nonzero coefficient), canonically sorted."""

    terms: tuple[tuple[Mono, int], ...]

    # ---------------------------------------------------------------- construction
    @staticmethod
    def of(value: int | str | Size) -> Size:
        cls = type(value)
        if cls is str:
            found = _NAMED.get(value)  # type: ignore[arg-type]
            if found is not None:
                return found
        elif cls is Size:
            return value  # type: ignore[return-value]
        elif cls is int:
            found = _SMALL.get(value)  # type: ignore[arg-type]
            if found is not None:
                return found
        if isinstance(value, Size):
            return value
        if isinstance(value, bool):
            raise TypeError("a size is not a bool")
        if isinstance(value, int):
            made = Size(((((), value),)) if value else ())
            if cls is int and -1024 <= value <= 1024:
                _SMALL[value] = made
            return made
        found = _NAMED.get(value)
        if found is None:
            found = Size((((((value, 1),), 1),)))
            _remember(_NAMED, value, found)
        return found

    @staticmethod
    def _make(coeffs: Mapping[Mono, int]) -> Size:
        items = [(m, c) for m, c in coeffs.items() if c]
        if len(items) > 1:
            items.sort(key=_term_key)
        return Size(tuple(items))

    @staticmethod
    def atom(atom: Atom) -> Size:
        return Size((((((atom, 1),), 1),)))

    # ---------------------------------------------------------------- algebra
    def __add__(self, other: Size | int) -> Size:
        other = Size.of(other)
        if not other.terms:
            return self
        if not self.terms:
            return other
        coeffs = dict(self.terms)
        for m, c in other.terms:
            coeffs[m] = coeffs.get(m, 0) + c
        return Size._make(coeffs)

    __radd__ = __add__

    def __neg__(self) -> Size:
        return Size(tuple((m, -c) for m, c in self.terms))

    def __sub__(self, other: Size | int) -> Size:
        return self + (-Size.of(other))

    def __rsub__(self, other: int) -> Size:
        return Size.of(other) - self

    def __mul__(self, other: Size | int) -> Size:
        other = Size.of(other)
        if len(other.terms) == 1 and not other.terms[0][0]:  # a nonzero constant
            return self._scaled(other.terms[0][1])
        if len(self.terms) == 1 and not self.terms[0][0]:
            return other._scaled(self.terms[0][1])
        coeffs: dict[Mono, int] = {}
        for ma, ca in self.terms:
            for mb, cb in other.terms:
                m = _mono_mul(ma, mb)
                coeffs[m] = coeffs.get(m, 0) + ca * cb
        return Size._make(coeffs)

    __rmul__ = __mul__

    def _scaled(self, k: int) -> Size:
        """``k * self`` for a nonzero integer ``k``: the monomials and their order stay."""
        if k == 1:
            return self
        return Size(tuple((m, c * k) for m, c in self.terms))

    def exact_div(self, other: Size) -> Size | None:
        """``self / other`` when ``other`` is a monomial that divides every term exactly."""
        if len(other.terms) != 1:
            return None
        (mono, coeff), = other.terms
        coeffs: dict[Mono, int] = {}
        for m, c in self.terms:
            q = _mono_div(m, mono)
            if q is None or c % coeff:
                return None
            coeffs[q] = c // coeff
        return Size._make(coeffs)

    def floordiv(self, other: Size | int) -> Size:
        other = Size.of(other)
        a, b = self.constant(), other.constant()
        if a is not None and b is not None and b > 0:
            return Size.of(a // b)
        if not self.terms:
            return self
        exact = self.exact_div(other) if other.terms else None
        if exact is not None and _nonneg_monomial(other):
            return exact
        return Size.atom(Opaque("//", self, other))

    def mod(self, other: Size | int) -> Size:
        other = Size.of(other)
        a, b = self.constant(), other.constant()
        if a is not None and b is not None and b > 0:
            return Size.of(a % b)
        if not self.terms or b == 1:
            return Size.of(0)
        if other.terms and self.exact_div(other) is not None and _nonneg_monomial(other):
            return Size.of(0)
        return Size.atom(Opaque("%", self, other))

    # ---------------------------------------------------------------- inspection
    def constant(self) -> int | None:
        """The value when the polynomial is a constant, else None."""
        if not self.terms:
            return 0
        if len(self.terms) == 1 and self.terms[0][0] == ():
            return self.terms[0][1]
        return None

    def const_part(self) -> int:
        return sum(c for m, c in self.terms if m == ())

    def atoms(self) -> frozenset[Atom]:
        return frozenset(a for m, _ in self.terms for a, _ in m)

    def variables(self) -> frozenset[str]:
        """Every size variable, including those inside opaque atoms."""
        found: set[str] = set()
        for m, _ in self.terms:
            for atom, _p in m:
                if isinstance(atom, str):
                    found.add(atom)
                else:
                    found |= atom.num.variables() | atom.den.variables()
        return frozenset(found)

    def single_variable(self) -> str | None:
        """The variable when the polynomial is exactly one (``n``, not ``2*n`` or ``n*n``)."""
        terms = self.terms
        if len(terms) == 1:
            ((mono, coeff),) = terms
            if coeff == 1 and len(mono) == 1:
                ((atom, power),) = mono
                if power == 1 and atom.__class__ is str:
                    return atom
        return None

    def has_opaque(self) -> bool:
        return any(isinstance(a, Opaque) for a in self.atoms())

    def is_linear_in(self, var: str) -> bool:
        """``var`` occurs only to the first power, outside every opaque atom (so knowing the
        other variables' values solves for it)."""
        for m, _ in self.terms:
            for atom, p in m:
                if atom == var and p != 1:
                    return False
                if not isinstance(atom, str) and var in Size.atom(atom).variables():
                    return False
        return True

    def linear_coefficient(self, var: str) -> tuple[int, Size] | None:
        """``(a, rest)`` with ``self == a*var + rest`` and ``var`` absent from ``rest``."""
        coeff, rest = 0, {}
        for m, c in self.terms:
            if m == ((var, 1),):
                coeff = c
            else:
                rest[m] = c
        if coeff == 0:
            return None
        rest_size = Size._make(rest)
        if var in rest_size.variables():
            return None
        return coeff, rest_size

    def substitute(self, env: Callable[[str], Size | None]) -> Size:
        """Replace every variable ``v`` with ``env(v)`` (None keeps it), renormalising.
        ``env`` is a function of the variable alone (it may be asked once per variable)."""
        if not self.terms:
            return self
        var = self.single_variable()
        if var is not None:  # what the general case below gives a lone variable
            value = env(var)
            return self if value is None else value
        # The common cases without polynomial arithmetic: nothing changes, or variables are
        # renamed to variables (a call's fresh copies of its callee's sizes).
        renames: dict[Atom, str] = {}
        simple = True
        for m, _ in self.terms:
            for atom, _p in m:
                if not isinstance(atom, str):
                    simple = False
                    break
                if atom in renames:
                    continue
                value = env(atom)
                if value is None:
                    renames[atom] = atom
                    continue
                renamed = value.single_variable()
                if renamed is None:
                    simple = False
                    break
                renames[atom] = renamed
            if not simple:
                break
        if simple:
            if all(k == v for k, v in renames.items()):
                return self
            coeffs: dict[Mono, int] = {}
            for m, c in self.terms:
                powers: dict[Atom, int] = {}
                for atom, p in m:
                    new = renames[atom]
                    powers[new] = powers.get(new, 0) + p
                mono = tuple(sorted(powers.items(), key=_ap_key)) if len(powers) > 1 else \
                    tuple(powers.items())
                coeffs[mono] = coeffs.get(mono, 0) + c
            return Size._make(coeffs)
        out = Size.of(0)
        for m, c in self.terms:
            term = Size.of(c)
            for atom, p in m:
                if isinstance(atom, str):
                    value = env(atom)
                    base = value if value is not None else Size.atom(atom)
                else:
                    num, den = atom.num.substitute(env), atom.den.substitute(env)
                    base = num.floordiv(den) if atom.op == "//" else num.mod(den)
                for _ in range(p):
                    term = term * base
            out = out + term
        return out

    def evaluate(self, env: Mapping[str, int]) -> int | None:
        """The value under a full assignment; None where a ``//`` or ``%`` divides by zero."""
        total = 0
        for m, c in self.terms:
            term = c
            for atom, p in m:
                if isinstance(atom, str):
                    value = env[atom]
                else:
                    num, den = atom.num.evaluate(env), atom.den.evaluate(env)
                    if num is None or den is None or den <= 0:
                        return None
                    value = num // den if atom.op == "//" else num % den
                term *= value**p
            total += term
        return total

    # ---------------------------------------------------------------- printing
    def __str__(self) -> str:
        if not self.terms:
            return "0"
        out = ""
        for i, (m, c) in enumerate(self.terms):
            factors = [_atom_str(a, p, len(m) > 1 or abs(c) != 1) for a, p in m]
            mag = abs(c)
            if not factors:
                body = str(mag)
            elif mag == 1:
                body = "*".join(factors)
            else:
                body = "*".join([str(mag), *factors])
            if i == 0:
                out = ("-" if c < 0 else "") + body
            else:
                out += (" - " if c < 0 else " + ") + body
        return out

    def __repr__(self) -> str:
        return f"Size({str(self)!r})"


_NAMED: dict[str, Size] = {}
_SMALL: dict[int, Size] = {}  # the constants -1024..1024 made so far (most sizes are small)


def _atom_str(atom: Atom, power: int, in_product: bool) -> str:
    text = str(atom) if isinstance(atom, str) or not in_product else f"({atom})"
    return "*".join([text] * power)


def _operand(size: Size, right: bool) -> str:
    """``size`` as an operand of ``//`` or ``%`` (left-associative, same level as ``*``)."""
    text = str(size)
    single = len(size.terms) == 1 and size.terms[0][1] > 0
    if not size.terms or (single and (not right or (len(size.terms[0][0]) <= 1
                                                     and (size.terms[0][1] == 1
                                                          or size.terms[0][0] == ())))):
        return text
    return f"({text})"


def _nonneg_monomial(size: Size) -> bool:
    return len(size.terms) == 1 and size.terms[0][1] > 0


def size_str(size: Size | None) -> str:
    return "?" if size is None else str(size)


# ============================================================================ the solver


class Verdict(enum.Enum):
    VALID = "valid"
    UNSAT = "unsat"
    UNKNOWN = "unknown"


def _nonneg_atom(atom: Atom) -> bool:
    """A variable or ``%`` term is never negative; ``n // d`` only when ``n`` cannot be."""
    if isinstance(atom, str) or atom.op == "%":
        return True
    return all(c >= 0 and _nonneg_mono(m) for m, c in atom.num.terms)


def _nonneg_mono(mono: Mono) -> bool:
    return all(p % 2 == 0 or _nonneg_atom(a) for a, p in mono)


def sign_forced(d: Size) -> bool:
    """True when ``d`` is nonzero for every assignment of non-negative variables."""
    const = d.const_part()
    if not all(_nonneg_mono(m) for m, _ in d.terms):
        return False  # a ``//`` of a possibly negative numerator: no sign to go by
    others = [c for m, c in d.terms if m != ()]
    if const > 0 and all(c >= 0 for c in others):
        return True
    if const < 0 and all(c <= 0 for c in others):
        return True
    return False


def decide(a: Size, b: Size) -> Verdict:
    """Decide ``a = b`` over all assignments of non-negative integers to the atoms."""
    if a == b:  # canonical forms: the difference is 0
        return Verdict.VALID
    d = a - b
    if not d.terms:
        return Verdict.VALID
    if sign_forced(d):
        return Verdict.UNSAT
    # a*x + c = 0 with x the only atom: UNSAT unless -c/a is a non-negative integer.
    if len(d.atoms()) == 1 and all(len(m) <= 1 for m, _ in d.terms):
        (atom,) = d.atoms()
        if isinstance(atom, str):
            solved = d.linear_coefficient(atom)
            if solved is not None:
                coeff, rest = solved
                c = rest.constant()
                if c is not None and (c % coeff or -c // coeff < 0):
                    return Verdict.UNSAT
    return Verdict.UNKNOWN


@record
class Solution:
    """``var := value`` solves ``a = b`` exactly (for every assignment of the other atoms)."""

    var: str
    value: Size


def _monomial_coefficient(d: Size, var: str) -> tuple[Size, Size] | None:
    """``(m, rest)`` with ``d == m*var + rest`` for a positive monomial ``m`` (``H*K' - H*K``
    gives ``(H, -H*K)``), ``var`` absent from both; None otherwise."""
    coeffs: dict[Mono, int] = {}
    rest: dict[Mono, int] = {}
    for m, c in d.terms:
        powers = dict(m)
        if var in powers:
            if powers[var] != 1:
                return None
            coeffs[tuple(ap for ap in m if ap[0] != var)] = c
        else:
            rest[m] = c
    coeff, rest_size = Size._make(coeffs), Size._make(rest)
    if not _nonneg_monomial(coeff) or var in coeff.variables() | rest_size.variables():
        return None
    return coeff, rest_size


def solve_for(a: Size, b: Size, flexible: Iterable[str]) -> Solution | None:
    """Solve ``a = b`` for one flexible variable occurring linearly, when exact."""
    flexible = frozenset(flexible)
    var = a.single_variable()
    if var is not None and var in flexible and not b.variables() & flexible:
        # `n = b` with no other flexible variable: what the general search below finds
        c = b.constant()
        return None if c is not None and c < 0 else Solution(var, b)
    d = a - b
    for var in sorted(d.variables() & frozenset(flexible)):
        solved: tuple[int | Size, Size] | None = d.linear_coefficient(var)
        if solved is None:
            solved = _monomial_coefficient(d, var)
            if solved is None:
                continue
        coeff, rest = solved
        div = coeff if isinstance(coeff, Size) else Size.of(coeff)
        value = (-rest).exact_div(div) if rest.terms else Size.of(0)
        if value is None:
            continue
        c = value.constant()
        if c is not None and c < 0:
            continue
        if value.has_opaque() and var in value.variables():
            continue
        return Solution(var, value)
    return None
