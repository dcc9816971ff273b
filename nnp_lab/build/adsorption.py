"""Adsorption sites on the top surface of a slab and placement of adsorbates on them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms

from nnp_lab.build._common import (
    LAYER_TOLERANCE,
    fixed_indices,
    group_layers,
    record,
    require_atoms,
    spglib_call,
    substrate_mask,
)
from nnp_lab.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["Site", "SITE_KINDS", "adsorption_sites", "add_adsorbate"]

#: Site kinds in the order :func:`adsorption_sites` lists them.
SITE_KINDS: tuple[str, ...] = ("top", "bridge", "fcc", "hcp", "hollow")

_IMAGE_RANGE = 2  # periodic images -2..2 along a and b for the 2D triangulation
_MERGE_TOL = 0.1  # Å: Delaunay triangles whose circumcentres coincide form one polygon
_WRAP_EPS = 1e-6


@dataclass(frozen=True)
class Site:
    """An adsorption site on the top surface of a slab.

    Attributes
    ----------
    kind
        ``"top"``, ``"bridge"``, ``"fcc"`` (3-fold hollow with no atom directly below in the
        second layer), ``"hcp"`` (3-fold hollow above a second-layer atom) or ``"hollow"``
        (4-fold or higher hollow, e.g. on fcc(100)).
    position
        Cartesian position (Å) of the site on the surface plane (z = mean height of the
        top layer, plus ``height`` if one was given to :func:`adsorption_sites`); read-only.
    atoms
        Indices of the top-layer atoms that define the site (1 for top, 2 for bridge, 3 or
        more for hollows). In a small cell the same index can appear more than once, because
        the site is formed by periodic images of one atom.
    label
        Unique name such as ``"fcc-0"``; accepted by :func:`add_adsorbate`.
    """

    kind: str
    position: np.ndarray = field(compare=False)
    atoms: tuple[int, ...]
    label: str

    def __post_init__(self) -> None:
        pos = np.array(self.position, dtype=float).reshape(3)
        pos.setflags(write=False)
        object.__setattr__(self, "position", pos)
        object.__setattr__(self, "atoms", tuple(int(i) for i in self.atoms))

    def as_dict(self) -> dict[str, Any]:
        """JSON-able description of the site."""
        return {
            "kind": self.kind,
            "label": self.label,
            "position": [float(x) for x in self.position],
            "atoms": list(self.atoms),
        }


def _check_slab(slab: Any) -> Atoms:
    slab = require_atoms(slab, "slab")
    cell = np.array(slab.cell)
    if (
        not (slab.pbc[0] and slab.pbc[1])
        or abs(cell[0, 2]) > 1e-6
        or abs(cell[1, 2]) > 1e-6
        or cell[2, 2] <= 0
        or abs(np.cross(cell[0], cell[1])[2]) < 1e-6
    ):
        raise InputError(
            "slab must be periodic along a and b with a and b in the xy plane and the surface "
            "normal along +z; build it with nnp_lab.build.surface(...) (or ase.build.fcc111 & co)"
        )
    return slab


def _surface_layers(slab: Atoms, tol: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Indices of the top-layer atoms, of the second-layer atoms and the top-layer height."""
    sub = np.flatnonzero(substrate_mask(slab))
    if len(sub) == 0:
        raise InputError("slab has no substrate atoms (all are marked as adsorbate)")
    z = slab.positions[sub, 2]
    layer = group_layers(z, tol)
    top = sub[layer == layer.max()]
    second = sub[layer == layer.max() - 1] if layer.max() > 0 else np.array([], dtype=int)
    return top, second, float(slab.positions[top, 2].mean())


def _wrap_xy(xy: np.ndarray, cell2: np.ndarray) -> np.ndarray:
    frac = np.atleast_2d(xy) @ np.linalg.inv(cell2)
    frac -= np.floor(frac + _WRAP_EPS)
    return frac @ cell2


def _in_home_cell(xy: np.ndarray, inv2: np.ndarray) -> np.ndarray:
    frac = np.atleast_2d(xy) @ inv2 + _WRAP_EPS
    return np.all((frac >= 0) & (frac < 1), axis=1)


def _circumcenter(p: np.ndarray) -> np.ndarray:
    a, b, c = p
    d = 2 * (a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1]))
    if abs(d) < 1e-12:
        return p.mean(axis=0)
    sa, sb, sc = a @ a, b @ b, c @ c
    ux = (sa * (b[1] - c[1]) + sb * (c[1] - a[1]) + sc * (a[1] - b[1])) / d
    uy = (sa * (c[0] - b[0]) + sb * (a[0] - c[0]) + sc * (b[0] - a[0])) / d
    return np.array([ux, uy])


def _raw_sites(
    slab: Atoms, top: np.ndarray, second: np.ndarray, z_top: float
) -> list[tuple[str, np.ndarray, tuple[int, ...]]]:
    """All top, bridge and hollow sites in the cell (before symmetry reduction)."""
    from scipy.spatial import Delaunay

    cell2 = np.array(slab.cell)[:2, :2]
    inv2 = np.linalg.inv(cell2)
    xy = _wrap_xy(slab.positions[top, :2], cell2)

    sites: list[tuple[str, np.ndarray, tuple[int, ...]]] = []
    for i, p in zip(top, xy):
        sites.append(("top", np.array([p[0], p[1], z_top]), (int(i),)))

    shifts = [
        (n1, n2)
        for n1 in range(-_IMAGE_RANGE, _IMAGE_RANGE + 1)
        for n2 in range(-_IMAGE_RANGE, _IMAGE_RANGE + 1)
    ]
    points = np.concatenate([xy + n1 * cell2[0] + n2 * cell2[1] for n1, n2 in shifts])
    owner = np.tile(top, len(shifts))
    if len(points) < 3:
        return sites
    tri = Delaunay(points)
    simplices = tri.simplices
    ntri = len(simplices)
    centers = np.array([_circumcenter(points[s]) for s in simplices])

    # Merge neighbouring triangles with the same circumcentre (co-circular points, e.g. the
    # two halves of a square on fcc(100)) into one polygon with union-find.
    parent = list(range(ntri))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for t in range(ntri):
        for nb in tri.neighbors[t]:
            if nb >= 0 and np.linalg.norm(centers[t] - centers[nb]) < _MERGE_TOL:
                parent[find(t)] = find(int(nb))
    group = np.array([find(t) for t in range(ntri)])

    # Bridges: triangle edges that are not interior to a merged polygon.
    edge_groups: dict[tuple[int, int], list[int]] = {}
    for t, s in enumerate(simplices):
        for a, b in ((s[0], s[1]), (s[1], s[2]), (s[2], s[0])):
            key = (int(min(a, b)), int(max(a, b)))
            edge_groups.setdefault(key, []).append(int(group[t]))
    for (a, b), groups in sorted(edge_groups.items()):
        if len(groups) == 2 and groups[0] == groups[1]:
            continue
        mid = 0.5 * (points[a] + points[b])
        if _in_home_cell(mid, inv2)[0]:
            pos = _wrap_xy(mid, cell2)[0]
            sites.append(
                ("bridge", np.array([pos[0], pos[1], z_top]), tuple(sorted((owner[a], owner[b]))))
            )

    # Hollows: one per polygon.
    second_xy = slab.positions[second, :2] if len(second) else np.zeros((0, 2))
    nn = min(
        (np.linalg.norm(points[a] - points[b]) for a, b in edge_groups),
        default=1.0,
    )
    below_tol = float(0.25 * nn)
    for g in sorted(set(group.tolist())):
        verts = np.unique(simplices[group == g].ravel())
        centre = points[verts].mean(axis=0)
        if not _in_home_cell(centre, inv2)[0]:
            continue
        pos = _wrap_xy(centre, cell2)[0]
        members = tuple(sorted(int(owner[v]) for v in verts))
        if len(verts) == 3:
            kind = "hcp" if _has_atom_below(pos, second_xy, cell2, below_tol) else "fcc"
        else:
            kind = "hollow"
        sites.append((kind, np.array([pos[0], pos[1], z_top]), members))
    return sites


def _has_atom_below(xy: np.ndarray, others: np.ndarray, cell2: np.ndarray, tol: float) -> bool:
    if len(others) == 0:
        return False
    d = others - xy
    frac = d @ np.linalg.inv(cell2)
    frac -= np.round(frac)
    d = frac @ cell2
    best = np.inf
    for n1 in (-1, 0, 1):  # minimum image for skewed cells
        for n2 in (-1, 0, 1):
            shifted = d + n1 * cell2[0] + n2 * cell2[1]
            best = min(best, float(np.min(np.linalg.norm(shifted, axis=1))))
    return best < tol


def _surface_operations(slab: Atoms, symprec: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Symmetry operations (fractional rotation, translation) of the slab that keep +z."""
    import spglib

    cell = (np.array(slab.cell), slab.get_scaled_positions(), slab.numbers)
    sym = spglib_call(spglib.get_symmetry, cell, symprec=symprec)
    ops = [(np.eye(3, dtype=int), np.zeros(3))]
    if sym is None:
        return ops
    for rot, trans in zip(sym["rotations"], sym["translations"]):
        if np.array_equal(rot[2], [0, 0, 1]) and abs(trans[2] - round(trans[2])) < 1e-3:
            ops.append((rot, trans))
    return ops


def _equivalent(
    a: np.ndarray, b: np.ndarray, ops: list[tuple[np.ndarray, np.ndarray]], cell: np.ndarray
) -> bool:
    inv = np.linalg.inv(cell)
    fa, fb = a @ inv, b @ inv
    for rot, trans in ops:
        d = rot @ fa + trans - fb
        d -= np.round(d)
        if np.linalg.norm(d @ cell) < 0.1:
            return True
    return False


def adsorption_sites(
    slab: Atoms,
    *,
    height: float | None = None,
    unique: bool = True,
    symprec: float = 0.1,
    layer_tolerance: float = LAYER_TOLERANCE,
) -> list[Site]:
    """Find adsorption sites on the top surface of a slab.

    The top layer (highest group of substrate atoms within ``layer_tolerance``; atoms marked
    in ``arrays["adsorbate"]`` are ignored) is triangulated in 2D with periodic images.
    Atoms give top sites, triangulation edges give bridge sites and triangles give 3-fold
    hollows; co-circular triangles (the two halves of a square) are merged into 4-fold
    hollows. A 3-fold hollow is ``"hcp"`` if a second-layer atom lies directly below it
    and ``"fcc"`` otherwise. Sites related by a symmetry operation of the slab that keeps
    the surface normal are reduced to one when ``unique`` is true.

    This is meant for flat surfaces; on stepped surfaces only the atoms of the highest
    plane are used.

    Parameters
    ----------
    slab
        Slab with a, b in the xy plane and the surface normal along +z (e.g. from
        :func:`~nnp_lab.build.surface`); not modified.
    height
        If given, site positions are placed this far (Å) above the top layer instead of on it.
    unique
        Return only symmetry-distinct sites (``False``: every site in the cell).
    symprec
        Symmetry tolerance (Å) for spglib.
    layer_tolerance
        Heights closer than this (Å) belong to the same layer.

    Returns
    -------
    list of Site
        Sorted by kind (top, bridge, fcc, hcp, hollow), then position; labels ``"top-0"``...

    Raises
    ------
    InputError
        If ``slab`` is not a slab with its surface normal along z.
    """
    slab = _check_slab(slab)
    top, second, z_top = _surface_layers(slab, layer_tolerance)
    raw = _raw_sites(slab, top, second, z_top)
    cell = np.array(slab.cell)
    ops = _surface_operations(slab, symprec) if unique else []

    def sort_key(site: tuple[str, np.ndarray, tuple[int, ...]]) -> tuple[Any, ...]:
        kind, pos, members = site
        frac = pos[:2] @ np.linalg.inv(cell[:2, :2])
        return (SITE_KINDS.index(kind), members, round(float(frac[1]), 4), round(float(frac[0]), 4))

    kept: list[tuple[str, np.ndarray, tuple[int, ...]]] = []
    for site in sorted(raw, key=sort_key):
        if unique and any(k == site[0] and _equivalent(site[1], p, ops, cell) for k, p, _ in kept):
            continue
        kept.append(site)

    counters = dict.fromkeys(SITE_KINDS, 0)
    out: list[Site] = []
    dz = 0.0 if height is None else float(height)
    for kind, pos, members in kept:
        label = f"{kind}-{counters[kind]}"
        counters[kind] += 1
        out.append(Site(kind=kind, position=pos + [0.0, 0.0, dz], atoms=members, label=label))
    return out


def _resolve_site(slab: Atoms, site: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Return the xy of the site and a JSON-able description of it."""
    if isinstance(site, Site):
        return np.array(site.position[:2]), site.as_dict()
    if isinstance(site, str):
        sites = adsorption_sites(slab)
        for s in sites:
            if s.label == site:
                return np.array(s.position[:2]), s.as_dict()
        for s in sites:
            if s.kind == site:
                return np.array(s.position[:2]), s.as_dict()
        kinds = sorted({s.kind for s in sites}, key=SITE_KINDS.index)
        raise InputError(
            f"Unknown or absent site {site!r} on this slab; available kinds: "
            f"{', '.join(kinds)}; labels: {', '.join(s.label for s in sites)}"
        )
    try:
        xy = np.asarray(site, dtype=float).ravel()
    except (TypeError, ValueError):
        xy = np.array([])
    if xy.shape not in {(2,), (3,)} or not np.all(np.isfinite(xy)):
        raise InputError(
            f"site must be a Site, a site kind such as 'fcc' (see adsorption_sites(slab)), or "
            f"x, y(, z) coordinates in Å; got {site!r}"
        )
    return xy[:2].copy(), {"kind": "coordinates", "position": xy.tolist()}


def site_xy(slab: Atoms, site: Site | str | Sequence[float]) -> np.ndarray:
    """The x, y (Å) where :func:`add_adsorbate` puts an adsorbate for ``site`` (a
    :class:`Site`, a kind or label such as ``"fcc"`` / ``"bridge-1"``, or coordinates).

    Raises
    ------
    InputError
        An unknown or absent site kind (the message lists the available ones), bad coordinates.
    """
    return _resolve_site(_check_slab(slab), site)[0]


def _rotation_to_z(v: np.ndarray) -> np.ndarray:
    """Rotation matrix taking the unit vector ``v`` onto +z."""
    z = np.array([0.0, 0.0, 1.0])
    c = float(v @ z)
    axis = np.cross(v, z)
    s = float(np.linalg.norm(axis))
    if s < 1e-10:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * (kx @ kx)


def _rotation_matrix(rotation: Any) -> np.ndarray:
    if rotation is None:
        return np.eye(3)
    if isinstance(rotation, (int, float, np.integer, np.floating)) and not isinstance(
        rotation, bool
    ):
        t = np.radians(float(rotation))
        return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1.0]])
    try:
        mat = np.asarray(rotation, dtype=float)
    except (TypeError, ValueError):
        mat = np.array([])
    if (
        mat.shape != (3, 3)
        or not np.allclose(mat @ mat.T, np.eye(3), atol=1e-6)
        or (np.linalg.det(mat) < 0)
    ):
        raise InputError(
            f"rotation must be an angle in degrees about the surface normal or a proper 3x3 "
            f"rotation matrix, got {rotation!r}"
        )
    return mat


def add_adsorbate(
    slab: Atoms,
    adsorbate: Atoms | str,
    site: Site | str | Sequence[float],
    *,
    height: float = 2.0,
    binding_atom: int | str = 0,
    rotation: float | Sequence[Sequence[float]] | None = None,
) -> Atoms:
    """Place a molecule or atom on a slab.

    The adsorbate is rotated so that the vector from its binding atom to the centre of mass
    of its other atoms points along +z (away from the surface): for CO with
    ``binding_atom=0`` (C), C sits below O with the C-O bond along z. The binding atom is
    put at the xy of the site, ``height`` Å above the mean height of the top layer.

    Parameters
    ----------
    slab
        Slab with the surface normal along +z (not modified).
    adsorbate
        An ``Atoms`` object (not modified) or a string passed to
        :func:`~nnp_lab.build.molecule` (``"CO"``, ``"H2O"``, a SMILES...).
    site
        A :class:`Site`; a site kind (``"fcc"`` takes the first such site of
        :func:`adsorption_sites`) or label (``"bridge-1"``); or x, y coordinates in Å (a third
        z coordinate is ignored: the height is always measured from the top layer).
    height
        Height (Å) of the binding atom above the top layer.
    binding_atom
        Index (into ``adsorbate``) of the atom that binds to the surface, or an element
        symbol meaning the first atom of that element. For named molecules atom 0 is the
        first non-hydrogen element of the name (C in ``"CO"``, O in ``"H2O"``).
    rotation
        Extra rotation after the upright orientation, about the binding atom: an angle in
        degrees about the surface normal, or a 3x3 rotation matrix.

    Returns
    -------
    ase.Atoms
        New structure: the slab atoms (same order, constraints kept) followed by the
        adsorbate atoms; ``arrays["adsorbate"]`` is True for adsorbate atoms, and
        ``arrays["layer"]`` (if the slab has it) is -1 for them.

    Raises
    ------
    InputError
        Bad ``binding_atom``, an unknown site kind (the message lists the available ones),
        bad coordinates or rotation.
    """
    from nnp_lab.build.molecules import molecule

    slab = _check_slab(slab)
    if isinstance(adsorbate, str):
        ads = molecule(adsorbate)
    else:
        ads = require_atoms(adsorbate, "adsorbate").copy()
    n_ads = len(ads)
    if isinstance(binding_atom, str):
        ads_symbols = ads.get_chemical_symbols()
        if binding_atom not in ads_symbols:
            elements = ", ".join(dict.fromkeys(ads_symbols))
            raise InputError(
                f"binding_atom={binding_atom!r} is not an element of the adsorbate "
                f"{ads.get_chemical_formula()} (elements: {elements}); pass one of those "
                "symbols or an atom index"
            )
        binding_atom = ads_symbols.index(binding_atom)
    if (
        isinstance(binding_atom, (bool, np.bool_))
        or not isinstance(binding_atom, (int, np.integer))
        or not -n_ads <= binding_atom < n_ads
    ):
        raise InputError(
            f"binding_atom={binding_atom!r} is not a valid index into the adsorbate "
            f"{ads.get_chemical_formula()} ({n_ads} atoms: "
            f"{', '.join(f'{i}={s}' for i, s in enumerate(ads.get_chemical_symbols()))}); "
            f"pass an integer from 0 to {n_ads - 1}"
        )
    try:
        height = float(height)
    except (TypeError, ValueError):
        raise InputError(f"height must be a number of Å, got {height!r}") from None
    if not np.isfinite(height):
        raise InputError(f"height must be a finite number of Å, got {height}")
    b = int(binding_atom) % n_ads
    xy, site_desc = _resolve_site(slab, site)
    extra_rot = _rotation_matrix(rotation)
    _, _, z_top = _surface_layers(slab, LAYER_TOLERANCE)

    pos = ads.positions - ads.positions[b]
    if n_ads > 1:
        others = np.arange(n_ads) != b
        masses = ads.get_masses()[others]
        com = (masses[:, None] * pos[others]).sum(axis=0) / masses.sum()
        if np.linalg.norm(com) > 1e-6:
            pos = pos @ _rotation_to_z(com / np.linalg.norm(com)).T
        else:
            logger.warning(
                "The other atoms of %s are centred on the binding atom; keeping the "
                "adsorbate's own orientation",
                ads.get_chemical_formula(),
            )
    pos = pos @ extra_rot.T
    pos += np.array([xy[0], xy[1], z_top + height])

    new_ads = Atoms(ads.get_chemical_symbols(), positions=pos)
    out = slab.copy()
    flags = (
        np.asarray(slab.arrays["adsorbate"], dtype=bool)
        if "adsorbate" in slab.arrays
        else np.zeros(len(slab), dtype=bool)
    )
    out.extend(new_ads)
    out.arrays["adsorbate"] = np.concatenate([flags, np.ones(n_ads, dtype=bool)])
    if "layer" in slab.arrays:
        out.arrays["layer"] = np.concatenate(
            [np.asarray(slab.arrays["layer"]), -np.ones(n_ads, dtype=int)]
        )
    ads_fixed, ads_other = fixed_indices(ads)
    if len(ads_fixed):
        slab_fixed, slab_other = fixed_indices(slab)
        out.set_constraint(
            [FixAtoms(indices=np.concatenate([slab_fixed, ads_fixed + len(slab)])), *slab_other]
        )
    if ads_other:
        logger.warning("add_adsorbate keeps only FixAtoms constraints of the adsorbate")

    sub = substrate_mask(slab)
    if sub.any():
        from ase.geometry import get_distances

        _, dist = get_distances(pos, slab.positions[sub], cell=slab.cell, pbc=slab.pbc)
        if dist.min() < 1.0:
            logger.warning(
                "Adsorbate atom only %.2f Å from a surface atom; increase height or pick "
                "another site",
                dist.min(),
            )
    out.info = {k: v for k, v in slab.info.items() if k != "built_by"}
    record(
        out,
        "add_adsorbate",
        parent=slab,
        adsorbate=ads.get_chemical_formula(),
        adsorbate_built_by=ads.info.get("built_by"),
        site=site_desc,
        height=height,
        binding_atom=b,
        binding_element=ads[b].symbol,
        rotation=None if rotation is None else _rotation_matrix(rotation).tolist(),
    )
    return out
