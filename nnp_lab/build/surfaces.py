"""Slabs cut from a bulk crystal along any Miller plane, with an exact number of atomic
layers, the surface normal along +z and vacuum on both sides."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from math import gcd
from typing import Any

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms

from nnp_lab import validation
from nnp_lab.build._common import (
    LAYER_TOLERANCE,
    group_layers,
    int_vector,
    record,
    require_atoms,
    spglib_call,
)
from nnp_lab.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["surface"]

_WRAP_EPS = 1e-8


def _parse_miller(miller: Any) -> tuple[int, int, int]:
    """Validate a 3- or 4-index (hexagonal Miller-Bravais) Miller index; return (h, k, l)."""
    if isinstance(miller, (str, bytes)) or not isinstance(miller, (Sequence, np.ndarray)):
        raise InputError(
            f"miller must be 3 integers (h, k, l) or 4 hexagonal indices (h, k, i, l), got "
            f"{miller!r}; e.g. miller=(1, 1, 1)"
        )
    n = len(miller)
    if n not in (3, 4):
        raise InputError(
            f"miller must have 3 indices (h, k, l) or 4 hexagonal indices (h, k, i, l), got "
            f"{miller!r}"
        )
    idx = int_vector(miller, "miller", n)
    if n == 4:
        h, k, i, l = idx  # noqa: E741
        if i != -(h + k):
            raise InputError(
                f"4-index Miller-Bravais indices need i = -(h + k); got {idx}. "
                f"Did you mean {(h, k, -(h + k), l)}?"
            )
        idx = (h, k, l)
    if not any(idx):
        raise InputError("miller (0, 0, 0) does not define a plane; pass e.g. (1, 1, 1)")
    g = gcd(gcd(abs(idx[0]), abs(idx[1])), abs(idx[2]))
    if g > 1:
        logger.info("Miller index %s reduced to %s", idx, tuple(v // g for v in idx))
    return (idx[0] // g, idx[1] // g, idx[2] // g)


def _reduce(v: Sequence[int]) -> tuple[int, int, int]:
    g = 0
    for x in v:
        g = gcd(g, abs(int(x)))
    return tuple(int(x) // g for x in v)  # type: ignore[return-value]


def _primitive_with_miller(
    bulk_atoms: Atoms, hkl: tuple[int, int, int], symprec: float
) -> tuple[Atoms, tuple[int, int, int], str | None]:
    """Return the primitive cell of ``bulk_atoms``, ``hkl`` in its basis and the space group.

    ``hkl`` is taken relative to the conventional standard cell (spglib, ``no_idealize``
    so the geometry and orientation of the input are kept).
    """
    import spglib

    cell = (np.array(bulk_atoms.cell), bulk_atoms.get_scaled_positions(), bulk_atoms.numbers)
    conv = spglib_call(
        spglib.standardize_cell, cell, to_primitive=False, no_idealize=True, symprec=symprec
    )
    prim = spglib_call(
        spglib.standardize_cell, cell, to_primitive=True, no_idealize=True, symprec=symprec
    )
    spacegroup = spglib_call(spglib.get_spacegroup, cell, symprec=symprec)
    logger.info(
        "Miller indices %s refer to the conventional cell of %s (space group %s)",
        hkl,
        bulk_atoms.get_chemical_formula(),
        spacegroup,
    )
    if conv is not None and prim is not None:
        p_mat = np.asarray(prim[0]) @ np.linalg.inv(np.asarray(conv[0]))
        p6 = 6.0 * p_mat
        if np.allclose(p6, np.round(p6), atol=1e-4):
            h_prim = _reduce(np.round(p6).astype(int) @ np.asarray(hkl))
            atoms = Atoms(numbers=prim[2], scaled_positions=prim[1], cell=prim[0], pbc=True)
            return atoms, h_prim, spacegroup
    logger.warning(
        "Could not find the conventional cell of %s with spglib; Miller indices are taken "
        "relative to the cell as given",
        bulk_atoms.get_chemical_formula(),
    )
    return _plain_copy(bulk_atoms), hkl, None


def _plain_copy(atoms: Atoms) -> Atoms:
    return Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)


def _surface_basis(cell: np.ndarray, hkl: tuple[int, int, int]) -> np.ndarray:
    """Integer matrix whose rows c1, c2 span the (hkl) lattice plane and c3 steps one plane.

    ``hkl . c1 = hkl . c2 = 0`` and ``hkl . c3 = 1``; c1, c2 are Lagrange-reduced (shortest
    in-plane vectors, obtuse angle), c3 is chosen as close to the normal as possible and the
    resulting cell ``M @ cell`` is right-handed.
    """
    v = list(hkl)
    u = np.eye(3, dtype=int)  # columns transform with v: v == hkl @ u
    while sum(1 for x in v if x != 0) > 1:
        nonzero = [i for i in range(3) if v[i] != 0]
        piv = min(nonzero, key=lambda j: abs(v[j]))
        for j in nonzero:
            if j != piv:
                q = v[j] // v[piv]
                v[j] -= q * v[piv]
                u[:, j] -= q * u[:, piv]
    p = next(i for i in range(3) if v[i] != 0)
    if v[p] < 0:
        v[p] = -v[p]
        u[:, p] = -u[:, p]
    assert v[p] == 1  # hkl was reduced by its gcd
    c3 = u[:, p].copy()
    b1, b2 = (u[:, j].copy() for j in range(3) if j != p)

    def cart(x: np.ndarray) -> np.ndarray:
        return x @ cell

    for _ in range(1000):  # Lagrange-Gauss reduction of the 2D lattice basis
        if np.linalg.norm(cart(b1)) > np.linalg.norm(cart(b2)) + 1e-9:
            b1, b2 = b2, b1
        mu = int(np.round(cart(b1) @ cart(b2) / (cart(b1) @ cart(b1))))
        if mu == 0:
            break
        b2 = b2 - mu * b1
    if cart(b1) @ cart(b2) > 1e-9:
        b2 = -b2
    gram = np.array([[cart(b1) @ cart(b1), cart(b1) @ cart(b2)], [0.0, cart(b2) @ cart(b2)]])
    gram[1, 0] = gram[0, 1]
    x = np.linalg.solve(gram, [cart(b1) @ cart(c3), cart(b2) @ cart(c3)])
    c3 = c3 - int(np.round(x[0])) * b1 - int(np.round(x[1])) * b2
    m = np.array([b1, b2, c3], dtype=int)
    if np.linalg.det(m) * np.linalg.det(cell) < 0:
        m = np.array([b2, b1, c3], dtype=int)
    return m


def surface(
    bulk_atoms: Atoms,
    miller: Sequence[int],
    layers: int,
    *,
    vacuum: float = 10.0,
    fixed_layers: int = 0,
    periodic: bool = True,
    size: Sequence[int] = (1, 1),
    conventional: bool = True,
    termination: int = 0,
    layer_tolerance: float = LAYER_TOLERANCE,
    symprec: float = 0.1,
) -> Atoms:
    """Cut a slab with ``layers`` atomic layers from a bulk crystal.

    Parameters
    ----------
    bulk_atoms
        Periodic bulk crystal (not modified), e.g. ``bulk("Pt")``.
    miller
        Miller indices ``(h, k, l)``, or hexagonal ``(h, k, i, l)`` with ``i = -(h + k)``.
        By default (``conventional=True``) they refer to the conventional standard cell of
        the crystal as crystallographers use it (cubic cell for fcc/bcc, hexagonal cell for
        hcp) whatever cell ``bulk_atoms`` uses, so ``surface(bulk("Pt"), (1, 0, 0), 4)`` is
        Pt(100). The slab is built from the primitive cell, so its lateral cell is the
        smallest possible (1 atom per layer for fcc/bcc/hcp metals).
    layers
        Number of atomic layers: distinct heights, grouped within ``layer_tolerance``.
    vacuum
        Empty space in Å added *on each side* of the slab (the gap between periodic images
        is ``2 * vacuum``), like :func:`ase.build.fcc111`.
    fixed_layers
        Number of bottom-most layers fixed with :class:`ase.constraints.FixAtoms`.
    periodic
        ``True`` gives ``pbc=(True, True, True)`` (the usual convention for slab
        calculations with vacuum, needed by most potentials and for stress); ``False`` gives
        ``pbc=(True, True, False)``.
    size
        Lateral repetitions ``(nx, ny)`` of the surface cell.
    conventional
        ``False`` takes ``miller`` relative to the cell of ``bulk_atoms`` exactly as given and
        builds from that cell (use this to keep a magnetic or special supercell; per-atom
        arrays such as magnetic moments are not carried over either way).
    termination
        Start the slab this many atomic planes higher in the crystal; selects between
        terminations of compounds (0 = default).
    layer_tolerance
        Heights closer than this (Å) belong to the same layer.
    symprec
        Symmetry tolerance (Å) of spglib when finding the conventional and primitive cells
        (``conventional=True`` only). It is loose on purpose so that a slightly noisy or
        relaxed bulk is still recognised (e.g. as fcc); the detected space group is stored in
        ``info["built_by"]["bulk_spacegroup"]``. Lower it, or pass ``conventional=False``,
        to keep a deliberately distorted cell.

    Returns
    -------
    ase.Atoms
        Slab with the cell vectors a, b in the xy plane, c along +z (orthogonal to a and b),
        the (hkl) surface normal along +z, atoms sorted from the bottom layer up,
        ``arrays["layer"]`` (0 = bottom), tags (ASE convention: 1 = top layer) and
        ``info["built_by"]`` with miller, layers, vacuum, etc.

    Raises
    ------
    InputError
        For a non-periodic bulk, Miller index (0, 0, 0), ``layers < 1``,
        ``fixed_layers >= layers``, non-positive vacuum or size.
    """
    bulk_atoms = require_atoms(bulk_atoms, "bulk_atoms")
    if not np.all(bulk_atoms.pbc) or abs(bulk_atoms.cell.volume) < 1e-6:
        raise InputError(
            "surface() needs a periodic bulk crystal (pbc all True and a 3D cell); got "
            f"pbc={bulk_atoms.pbc.tolist()}, cell volume {abs(bulk_atoms.cell.volume):.3g} Å^3. "
            "Build one with nnp_lab.build.bulk(...) or crystal(...)"
        )
    hkl = _parse_miller(miller)
    layers = validation.integer("layers", layers)
    if isinstance(fixed_layers, bool) or not isinstance(fixed_layers, (int, np.integer)):
        raise InputError(f"fixed_layers must be an integer, got {fixed_layers!r}")
    if not 0 <= fixed_layers < layers:
        raise InputError(
            f"fixed_layers={fixed_layers} must be between 0 and layers - 1 = {layers - 1}; "
            "at least the top layer has to stay free (increase layers or fix fewer)"
        )
    try:
        vacuum = float(vacuum)
    except (TypeError, ValueError):
        raise InputError(f"vacuum must be a number of Å, got {vacuum!r}") from None
    if not np.isfinite(vacuum) or vacuum <= 0:
        raise InputError(
            f"vacuum must be > 0 Å (it is added on each side of the slab), got {vacuum}; "
            "typical values are 7-15 Å"
        )
    nx, ny = int_vector(size, "size", 2)
    if nx < 1 or ny < 1:
        raise InputError(f"size must be two positive integers (nx, ny), got {size!r}")
    if isinstance(termination, bool) or not isinstance(termination, (int, np.integer)):
        raise InputError(f"termination must be a non-negative integer, got {termination!r}")
    if termination < 0:
        raise InputError(f"termination must be a non-negative integer, got {termination}")
    if layer_tolerance <= 0:
        raise InputError(f"layer_tolerance must be > 0 Å, got {layer_tolerance}")

    spacegroup = None
    if conventional:
        prim, hkl_used, spacegroup = _primitive_with_miller(bulk_atoms, hkl, symprec)
    else:
        prim, hkl_used = _plain_copy(bulk_atoms), hkl

    cell = np.array(prim.cell)
    m = _surface_basis(cell, hkl_used)
    lat = m @ cell
    e1 = lat[0] / np.linalg.norm(lat[0])
    e3 = np.cross(lat[0], lat[1])
    e3 /= np.linalg.norm(e3)
    e2 = np.cross(e3, e1)
    rot = np.array([e1, e2, e3])
    lat_rot = lat @ rot.T  # rows: (|a1|,0,0), (x,y,0), (s1,s2,d)
    lat_rot[0, 1:] = 0.0
    lat_rot[1, 2] = 0.0
    spacing = float(lat_rot[2, 2])

    frac = prim.positions @ np.linalg.inv(lat)
    frac -= np.floor(frac + _WRAP_EPS)
    heights = np.sort(frac[:, 2] * spacing)
    cyclic_gaps = np.append(np.diff(heights), heights[0] + spacing - heights[-1])
    if cyclic_gaps.max() <= layer_tolerance:
        raise InputError(
            f"The {hkl} planes are only {cyclic_gaps.max():.3f} Å apart, less than "
            f"layer_tolerance={layer_tolerance} Å, so atomic layers cannot be told apart; use "
            "a lower-index surface or a smaller layer_tolerance"
        )

    inplane_inv = np.linalg.inv(lat_rot[:2, :2])
    needed = layers + termination + 2  # first and last planes of the stack may be partial
    repeats = needed
    while True:
        f = np.concatenate([frac + [0.0, 0.0, r] for r in range(repeats)])
        numbers = np.tile(prim.numbers, repeats)
        pos = f @ lat_rot
        g = pos[:, :2] @ inplane_inv
        g -= np.floor(g + _WRAP_EPS)
        pos[:, :2] = g @ lat_rot[:2, :2]
        plane = group_layers(pos[:, 2], layer_tolerance)
        if plane.max() + 1 >= needed:
            break
        repeats += needed

    start = 1 + termination
    keep = (plane >= start) & (plane < start + layers)
    pos, numbers, layer = pos[keep], numbers[keep], plane[keep] - start
    pos[:, 2] -= pos[:, 2].min() - vacuum
    thickness = pos[:, 2].max() - vacuum
    slab_cell = np.array([lat_rot[0], lat_rot[1], [0.0, 0.0, thickness + 2 * vacuum]])
    slab = Atoms(numbers=numbers, positions=pos, cell=slab_cell, pbc=(True, True, periodic))
    slab.arrays["layer"] = layer
    if (nx, ny) != (1, 1):
        slab = slab.repeat((nx, ny, 1))
    order = np.lexsort(
        (np.round(slab.positions[:, 0], 4), np.round(slab.positions[:, 1], 4), slab.arrays["layer"])
    )
    slab = slab[order]
    layer = slab.arrays["layer"]
    slab.set_tags(layers - layer)
    if fixed_layers:
        slab.set_constraint(FixAtoms(mask=layer < fixed_layers))
    record(
        slab,
        "surface",
        parent=bulk_atoms,
        miller=list(np.atleast_1d(miller).tolist()),
        miller_build_cell=list(hkl_used),
        miller_basis="conventional" if conventional else "given cell",
        bulk_spacegroup=spacegroup,
        layers=layers,
        vacuum=vacuum,
        fixed_layers=int(fixed_layers),
        periodic=bool(periodic),
        size=[nx, ny],
        termination=int(termination),
        interplanar_spacing=spacing,
        layer_tolerance=float(layer_tolerance),
    )
    logger.debug("surface %s: %d atoms in %d layers", hkl, len(slab), layers)
    return slab
