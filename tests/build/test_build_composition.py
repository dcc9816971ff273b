"""Tests for nnp_lab.build.parse_composition (compositions typed as text)."""

from __future__ import annotations

import pytest

from nnp_lab.build import parse_composition
from nnp_lab.errors import InputError


def test_parse_composition() -> None:
    assert parse_composition(" Pt ") == "Pt"
    assert parse_composition("Pt3Ni") == "Pt3Ni"
    assert parse_composition("Pt:0.2,Pd:0.8") == {"Pt": 0.2, "Pd": 0.8}
    assert parse_composition("Pt=1; Pd = 3") == {"Pt": 1.0, "Pd": 3.0}
    assert parse_composition("Pt, Pd") == {"Pt": 1.0, "Pd": 1.0}
    with pytest.raises(InputError, match="not a number"):
        parse_composition("Pt:x")


def test_repeated_elements_add_up_and_empty_input_is_explained() -> None:
    assert parse_composition("Pt:0.25, Pd:0.5, Pt:0.25") == {"Pt": 0.5, "Pd": 0.5}
    with pytest.raises(InputError, match="enter an element"):
        parse_composition("   ")
    with pytest.raises(InputError, match="no element found"):
        parse_composition(", ;")
