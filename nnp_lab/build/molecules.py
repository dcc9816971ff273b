"""Molecules from a name (ASE's G2 set) or a SMILES string (RDKit ETKDG + MMFF94/UFF)."""

from __future__ import annotations

import logging
import re

import numpy as np
from ase import Atoms

from nnp_lab.build._common import record
from nnp_lab.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["molecule", "molecule_names"]

_SMILES_PREFIX = "smiles:"


def molecule_names() -> list[str]:
    """Names accepted by :func:`molecule` without SMILES (ASE's G2 set and extras).

    Returns
    -------
    list of str
        Sorted names such as ``"H2O"``, ``"CO"``, ``"CH4"``, ``"C6H6"``.
    """
    from ase.build.molecule import extra
    from ase.collections import g2

    return sorted(set(g2.names) | set(extra))


def molecule(spec: str, *, seed: int = 42, optimize: bool = True) -> Atoms:
    """Build an isolated molecule from a name or a SMILES string.

    A name known to :func:`ase.build.molecule` (the G2 set, e.g. ``"H2O"``, ``"CO"``,
    ``"CH4"``; see :func:`molecule_names`) gives ASE's reference geometry. Anything else is
    read as SMILES with RDKit: hydrogens are added, 3D coordinates are embedded with ETKDGv3
    (``randomSeed=seed``, so the result is reproducible) and, if ``optimize``, relaxed with
    MMFF94 (UFF when MMFF94 has no parameters for the molecule).

    Names win over SMILES: ``"CO"`` is carbon monoxide. Prefix the string with
    ``"smiles:"`` to force SMILES, e.g. ``"smiles:CO"`` is methanol.

    Atom order: for a name, atom 0 is the first non-hydrogen element written in the name
    (C for ``"CO"``, O for ``"H2O"``, N for ``"NH3"``), the others keep ASE's order, so
    ``binding_atom=0`` in :func:`~nnp_lab.build.add_adsorbate` is the usual binding atom.
    For SMILES the heavy atoms come in SMILES order, followed by the added hydrogens.

    Parameters
    ----------
    spec
        Molecule name or SMILES string.
    seed
        Non-negative random seed of the ETKDG embedding (SMILES only).
    optimize
        Relax the embedded SMILES geometry with a force field (SMILES only; the named
        molecules already have reference geometries).

    Returns
    -------
    ase.Atoms
        Non-periodic molecule (``pbc=False``, zero cell). ``info["built_by"]`` records the
        name or SMILES and the method; for SMILES, ``info["charge"]`` is the total formal
        charge and ``info["spin"]`` the spin multiplicity (unpaired electrons + 1).

    Raises
    ------
    InputError
        If ``spec`` is not a string, or is neither a known name nor a valid SMILES, or the
        SMILES could not be embedded in 3D.

    Examples
    --------
    >>> water = molecule("H2O")
    >>> ethanol = molecule("CCO")
    >>> len(ethanol)
    9
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(
            f"molecule() needs a non-empty string (a name such as 'H2O' or a SMILES such as "
            f"'CCO'), got {spec!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(
            f"seed must be a non-negative integer (RDKit treats negative seeds as random), "
            f"got {seed!r}"
        )
    text = spec.strip()
    if text.lower().startswith(_SMILES_PREFIX):
        return _from_smiles(text[len(_SMILES_PREFIX) :].strip(), seed=int(seed), optimize=optimize)

    named = _from_name(text)
    if named is not None:
        return named
    return _from_smiles(text, seed=int(seed), optimize=optimize)


def _from_name(name: str) -> Atoms | None:
    from ase.build import molecule as ase_molecule

    if name not in molecule_names():
        return None
    ref = ase_molecule(name)
    symbols = ref.get_chemical_symbols()
    order = list(range(len(ref)))
    heavy = [el for el in re.findall(r"[A-Z][a-z]?", name) if el != "H"]
    if heavy and heavy[0] in symbols:
        first = symbols.index(heavy[0])
        order = [first] + [i for i in order if i != first]
    atoms = Atoms([symbols[i] for i in order], positions=ref.positions[order], pbc=False)
    record(atoms, "molecule", name=name, method="ase.build.molecule (G2 reference geometry)")
    return atoms


def _smiles_hint(smiles: str) -> str:
    """Best guess of what is wrong with a SMILES string that RDKit rejected."""
    if smiles.count("(") != smiles.count(")"):
        return "unbalanced parentheses?"
    if smiles.count("[") != smiles.count("]"):
        return "unbalanced square brackets?"
    outside = re.sub(r"\[[^\]]*\]", "", smiles)
    labels = re.findall(r"%\d\d|\d", outside)
    for label in set(labels):
        if labels.count(label) % 2:
            return f"unclosed ring (ring-closure label {label} appears an odd number of times)?"
    return "unknown element or invalid syntax?"


def _from_smiles(smiles: str, *, seed: int, optimize: bool) -> Atoms:
    from rdkit import Chem, rdBase
    from rdkit.Chem import Descriptors, rdDistGeom, rdForceFieldHelpers

    how_to = "check the string or pass a molecule name such as 'H2O' (see molecule_names())"
    if not smiles:
        raise InputError(f"Empty SMILES string; {how_to}")
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            raw = Chem.MolFromSmiles(smiles, sanitize=False)
            if raw is not None:
                try:
                    Chem.SanitizeMol(raw)
                    reason = "sanitisation failed"
                except Exception as exc:  # RDKit raises its own exception classes
                    reason = str(exc).strip()
                raise InputError(
                    f"SMILES {smiles!r} was parsed by RDKit but is chemically invalid "
                    f"({reason}); {how_to}"
                )
            raise InputError(
                f"SMILES {smiles!r} could not be parsed by RDKit ({_smiles_hint(smiles)}); {how_to}"
            )

        charge = int(Chem.GetFormalCharge(mol))
        unpaired = int(Descriptors.NumRadicalElectrons(mol))
        mol = Chem.AddHs(mol)

        params = rdDistGeom.ETKDGv3()
        # rdkit's stubs type EmbedParameters' properties as EmbedParameters
        params.randomSeed = int(seed)  # type: ignore[assignment]
        params.numThreads = 1  # type: ignore[assignment]
        status = rdDistGeom.EmbedMolecule(mol, params)
        if status != 0:
            logger.warning(
                "ETKDG embedding of %r failed with seed %d; retrying from random coordinates",
                smiles,
                seed,
            )
            params.useRandomCoords = True  # type: ignore[assignment]
            status = rdDistGeom.EmbedMolecule(mol, params)
        if status != 0:
            raise InputError(
                f"RDKit could not generate 3D coordinates for SMILES {smiles!r}; try another "
                "seed=..., simplify the molecule, or build the Atoms yourself"
            )

        method = "RDKit ETKDGv3"
        if optimize:
            if rdForceFieldHelpers.MMFFHasAllMoleculeParams(mol):
                rdForceFieldHelpers.MMFFOptimizeMolecule(mol, maxIters=2000)
                method += " + MMFF94"
            elif rdForceFieldHelpers.UFFHasAllMoleculeParams(mol):
                logger.warning(
                    "MMFF94 has no parameters for %r; optimising with UFF instead", smiles
                )
                rdForceFieldHelpers.UFFOptimizeMolecule(mol, maxIters=2000)
                method += " + UFF"
            else:
                logger.warning(
                    "Neither MMFF94 nor UFF has parameters for %r; keeping the unoptimised "
                    "ETKDG geometry",
                    smiles,
                )

    positions = np.array(mol.GetConformer().GetPositions(), dtype=float)
    symbols = [a.GetSymbol() for a in mol.GetAtoms()]
    atoms = Atoms(symbols, positions=positions, pbc=False)
    atoms.info["charge"] = charge
    atoms.info["spin"] = unpaired + 1
    record(
        atoms,
        "molecule",
        smiles=smiles,
        canonical_smiles=Chem.MolToSmiles(Chem.RemoveHs(mol)),
        method=method,
        seed=int(seed),
        optimize=bool(optimize),
        charge=charge,
    )
    return atoms
