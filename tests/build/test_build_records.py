"""Every builder records how it made the structure, in a form .extxyz files keep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ase.io import read, write

from nnp_lab.build import (
    add_adsorbate,
    bulk,
    crystal,
    molecule,
    nanoparticle,
    supercell,
    surface,
    vacancy,
)


BUILDERS = [
    "molecule",
    "bulk",
    "supercell",
    "vacancy",
    "surface",
    "add_adsorbate",
    "nanoparticle",
    "crystal",
]


@pytest.fixture(scope="module")
def structures() -> dict[str, object]:
    pt = bulk("Pt")
    slab = surface(pt, (1, 1, 1), 3, size=(2, 2), fixed_layers=1)
    return {
        "molecule": molecule("CCO"),
        "bulk": pt,
        "supercell": supercell(pt, 2),
        "vacancy": vacancy(supercell(pt, 2), 0),
        "surface": slab,
        "add_adsorbate": add_adsorbate(slab, "CO", "fcc"),
        "nanoparticle": nanoparticle({"Pt": 0.5, "Pd": 0.5}, size=2, seed=1),
        "crystal": crystal("LiFeSO4F"),
    }


@pytest.mark.parametrize("builder", BUILDERS)
def test_built_by_roundtrips_through_extxyz(
    builder: str, structures: dict[str, object], tmp_path: Path
) -> None:
    atoms = structures[builder]
    rec = atoms.info["built_by"]
    assert rec["builder"] == builder
    json.dumps(rec)  # plain JSON-able values only
    path = tmp_path / "s.extxyz"
    write(path, atoms)
    back = read(path)
    assert back.info["built_by"] == rec
    if "layer" in atoms.arrays:
        assert (back.arrays["layer"] == atoms.arrays["layer"]).all()
