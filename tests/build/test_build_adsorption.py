"""Tests for adsorption_sites and add_adsorbate."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import fcc111
from ase.constraints import FixAtoms
from helpers_build import lateral_distance, plane_index

from nnp_lab.build import Site, add_adsorbate, adsorption_sites, bulk, molecule, surface
from nnp_lab.errors import InputError

NN_PT = 3.92 / 2**0.5


@pytest.fixture(scope="module")
def pt111() -> object:
    return surface(bulk("Pt"), (1, 1, 1), 4, size=(3, 3), fixed_layers=2)


def _layers(slab: object) -> list[np.ndarray]:
    planes = plane_index(slab.positions[:, 2])
    return [slab.positions[planes == k] for k in range(planes.max() + 1)][::-1]  # top first


def test_fcc111_sites_kinds_and_fcc_vs_hcp(pt111: object) -> None:
    sites = adsorption_sites(pt111)
    kinds = [s.kind for s in sites]
    for kind in ("top", "bridge", "fcc", "hcp"):
        assert kind in kinds
    assert "hollow" not in kinds
    top, second, third, _ = _layers(pt111)
    z_top = top[:, 2].mean()
    for s in sites:
        assert s.position[2] == pytest.approx(z_top)
        assert s.label.startswith(s.kind + "-")
        d_top = lateral_distance(s.position, top, pt111.cell)
        d_second = lateral_distance(s.position, second, pt111.cell)
        d_third = lateral_distance(s.position, third, pt111.cell)
        if s.kind == "top":
            assert d_top.min() < 1e-6
        elif s.kind == "bridge":
            assert np.sort(d_top)[:2] == pytest.approx([NN_PT / 2] * 2, abs=1e-6)
        else:
            assert np.sort(d_top)[:3] == pytest.approx([NN_PT / 3**0.5] * 3, abs=1e-6)
            if s.kind == "hcp":
                assert d_second.min() < 1e-6  # second-layer atom right below
            else:
                assert d_second.min() > 1.0  # nothing below in layer 2 ...
                assert d_third.min() < 1e-6  # ... but a third-layer atom
    labels = [s.label for s in sites]
    assert len(labels) == len(set(labels))


def test_sites_match_ase_fcc111_definitions() -> None:
    slab = fcc111("Pt", (1, 1, 4), vacuum=8.0)
    info = slab.info["adsorbate_info"]
    cell2 = np.array(slab.cell)[:2, :2]
    ours = {s.kind: s for s in adsorption_sites(slab)}
    for ase_name, kind in (("ontop", "top"), ("fcc", "fcc"), ("hcp", "hcp")):
        ref_xy = np.asarray(info["sites"][ase_name]) @ (np.array(info["cell"]))
        d = lateral_distance(np.append(ref_xy, 0.0), ours[kind].position[None, :], slab.cell)
        assert d.min() < 1e-6, (kind, ours[kind].position, ref_xy)
    assert cell2.shape == (2, 2)


def test_all_sites_and_determinism() -> None:
    slab = surface(bulk("Pt"), (1, 1, 1), 4, size=(2, 2))
    everything = adsorption_sites(slab, unique=False)
    count = {k: sum(s.kind == k for s in everything) for k in ("top", "bridge", "fcc", "hcp")}
    assert count == {"top": 4, "bridge": 12, "fcc": 4, "hcp": 4}
    again = adsorption_sites(slab, unique=False)
    assert [s.label for s in everything] == [s.label for s in again]
    assert all(np.allclose(a.position, b.position) for a, b in zip(everything, again))
    unique = adsorption_sites(slab)
    assert sorted(s.kind for s in unique) == ["bridge", "fcc", "hcp", "top"]
    raised = adsorption_sites(slab, height=1.5)
    assert raised[0].position[2] == pytest.approx(unique[0].position[2] + 1.5)


def test_fcc100_has_fourfold_hollow() -> None:
    slab = surface(bulk("Pt"), (1, 0, 0), 4, size=(2, 2))
    sites = adsorption_sites(slab)
    assert sorted({s.kind for s in sites}) == ["bridge", "hollow", "top"]
    (hollow,) = [s for s in sites if s.kind == "hollow"]
    assert len(hollow.atoms) == 4
    top = _layers(slab)[0]
    assert np.sort(lateral_distance(hollow.position, top, slab.cell))[:4] == pytest.approx(
        [3.92 / 2] * 4, abs=1e-6
    )


def test_site_is_frozen_and_hashable() -> None:
    site = adsorption_sites(surface(bulk("Pt"), (1, 1, 1), 3))[0]
    assert isinstance(site, Site)
    with pytest.raises(AttributeError):
        site.kind = "bridge"  # type: ignore[misc]
    with pytest.raises(ValueError):
        site.position[0] = 1.0
    assert {site: 1}[site] == 1


def test_co_on_pt111_fcc(pt111: object) -> None:
    out = add_adsorbate(pt111, "CO", "fcc", height=1.8)
    assert len(out) == len(pt111) + 2
    c, o = out[-2], out[-1]
    assert (c.symbol, o.symbol) == ("C", "O")
    z_top = _layers(pt111)[0][:, 2].mean()
    assert c.position[2] == pytest.approx(z_top + 1.8)
    assert o.position[2] > c.position[2]
    assert np.allclose(o.position[:2], c.position[:2], atol=1e-6)  # upright
    (fcc,) = [s for s in adsorption_sites(pt111) if s.kind == "fcc"][:1]
    assert np.allclose(c.position[:2], fcc.position[:2])
    assert out.arrays["adsorbate"].tolist() == [False] * len(pt111) + [True, True]
    (constraint,) = out.constraints
    assert isinstance(constraint, FixAtoms)
    assert constraint.get_indices().tolist() == pt111.constraints[0].get_indices().tolist()
    rec = out.info["built_by"]
    assert rec["builder"] == "add_adsorbate" and rec["site"]["kind"] == "fcc"
    assert rec["parent"]["builder"] == "surface"


def test_binding_atom_and_site_forms(pt111: object) -> None:
    # O down when binding through atom 1
    out = add_adsorbate(pt111, "CO", "top", binding_atom=1)
    assert out[-1].symbol == "O" and out[-1].position[2] < out[-2].position[2]
    by_symbol = add_adsorbate(pt111, "CO", "top", binding_atom="O")
    assert np.allclose(by_symbol.positions, out.positions)
    # the same site given as a Site object, as a label and as coordinates
    site = adsorption_sites(pt111)[0]
    a = add_adsorbate(pt111, "H", site)
    b = add_adsorbate(pt111, "H", site.label)
    c = add_adsorbate(pt111, "H", site.position[:2])
    assert np.allclose(a.positions, b.positions) and np.allclose(a.positions, c.positions)
    # water binding through O: both H above O
    water = molecule("H2O")
    w = add_adsorbate(pt111, water, "top", binding_atom=0, height=2.2)
    assert w[-3].symbol == "O"
    assert (w.positions[-2:, 2] > w[-3].position[2]).all()
    # rotation about the normal keeps the binding atom in place
    r = add_adsorbate(pt111, water, "top", rotation=90.0)
    assert np.allclose(r[-3].position, w[-3].position + [0, 0, -0.2])


def test_adsorbate_errors(pt111: object) -> None:
    with pytest.raises(InputError) as err:
        add_adsorbate(pt111, "CO", "fourfold")
    for kind in ("top", "bridge", "fcc", "hcp"):
        assert kind in str(err.value)
    with pytest.raises(InputError, match="binding_atom=2"):
        add_adsorbate(pt111, "CO", "fcc", binding_atom=2)
    with pytest.raises(InputError, match="not an element"):
        add_adsorbate(pt111, "CO", "fcc", binding_atom="N")
    with pytest.raises(InputError, match="site must be"):
        add_adsorbate(pt111, "CO", [1.0])
    with pytest.raises(InputError, match="xy plane"):
        adsorption_sites(bulk("Pt"))
