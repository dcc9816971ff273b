"""Compositions typed as text: ``"Pt"``, ``"Pt3Ni"`` or ``"Pt:0.5, Pd:0.5"``.

:func:`parse_composition` turns what a user types into a text box (the nanoparticle builder
panel of :mod:`nnp_lab.widgets`) into what :func:`nnp_lab.build.nanoparticle` takes.
"""

from __future__ import annotations

from nnp_lab.errors import InputError

__all__ = ["parse_composition"]

#: Characters that make a text a list of ``element:fraction`` parts rather than a formula.
_LIST_SEPARATORS = (":", "=", ",", ";")


def parse_composition(text: str) -> str | dict[str, float]:
    """Read a nanoparticle composition typed in a text box.

    Parameters
    ----------
    text
        An element (``"Pt"``), a formula (``"Pt3Ni"``) or comma-separated fractions
        ``"Pt:0.2, Pd:0.2, Rh:0.2, Ir:0.2, Ru:0.2"`` (``=`` works as well as ``:``; an element
        without a fraction counts 1; fractions are normalised by the builder).

    Returns
    -------
    str or dict
        The element/formula string, or ``{symbol: fraction}``.

    Raises
    ------
    InputError
        Empty text, or a fraction that is not a number.

    Examples
    --------
    >>> parse_composition("Pt3Ni")
    'Pt3Ni'
    >>> parse_composition("Pt:0.5, Pd = 0.5")
    {'Pt': 0.5, 'Pd': 0.5}
    """
    text = (text or "").strip()
    if not text:
        raise InputError(
            "enter an element ('Pt'), a formula ('Pt3Ni') or fractions such as 'Pt:0.5, Pd:0.5'"
        )
    if not any(sep in text for sep in _LIST_SEPARATORS):
        return text
    comp: dict[str, float] = {}
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if part:
            symbol, fraction = _element_fraction(part)
            comp[symbol] = comp.get(symbol, 0.0) + fraction
    if not comp:
        raise InputError(f"no element found in {text!r}; write e.g. 'Pt:0.5, Pd:0.5'")
    return comp


def _element_fraction(part: str) -> tuple[str, float]:
    """``"Pt:0.5"`` / ``"Pt = 0.5"`` -> ``("Pt", 0.5)``; a bare ``"Pt"`` counts 1."""
    sep = ":" if ":" in part else "=" if "=" in part else None
    if sep is None:
        symbol, value = part, "1"
    else:
        symbol, value = (s.strip() for s in part.split(sep, 1))
    try:
        return symbol, float(value)
    except ValueError:
        raise InputError(
            f"the fraction of {symbol or '?'} in {part!r} is not a number; write "
            "element:fraction pairs separated by commas, e.g. 'Pt:0.5, Pd:0.5'"
        ) from None
