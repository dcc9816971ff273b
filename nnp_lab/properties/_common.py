"""What every property calculation shares: the result base class, one batched evaluation,
progress reporting, quality flags and provenance.

A property is a function ``name(atoms, potential=None, *, keyword=...) -> NameResult``. It
never modifies its input, evaluates all the structures it makes at fixed positions in one
:meth:`~nnp_lab.potentials.Potential.evaluate` call (split only when that call would not fit
in memory), runs relaxations through :func:`nnp_lab.simulate.relax`, and returns a frozen
:class:`PropertyResult` subclass.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, TypeVar

import numpy as np
from ase import Atoms

from nnp_lab.errors import InputError
from nnp_lab.potentials import Potential
from nnp_lab.potentials.memory import MemoryLimitError
from nnp_lab.potentials.registry import resolve_potential

__all__ = [
    "PropertyWarning",
    "PropertyResult",
    "PropertyProgress",
    "Progress",
    "evaluate_all",
    "resolve",
    "finish",
    "relaxed_copy",
    "reference_cell",
    "gas_reference",
    "EV_A2_TO_J_M2",
    "repetitions_for_length",
    "require_periodic",
    "make_provenance",
    "atoms_record",
    "jsonable",
]


R = TypeVar("R", bound="PropertyResult")

#: eV/Å² -> J/m².
EV_A2_TO_J_M2 = 1.602176634e-19 / 1e-20


class PropertyWarning(UserWarning):
    """A property's own check failed: a poor fit, an unstable structure, too little data.

    The same message is kept in the result's ``flags``.
    """


@dataclass(frozen=True)
class PropertyProgress:
    """One progress report of a property calculation (what a live display shows).

    Attributes
    ----------
    property : str
        The property (``"eos"``, ``"elastic"``, ...).
    stage : str
        What is being done, e.g. ``"relaxing the reference"``, ``"evaluating 24 strained
        cells"``.
    done, total : int
        Work units done and expected in the whole calculation.
    """

    property: str
    stage: str
    done: int
    total: int


class Progress:
    """Progress of one property calculation: a tqdm bar when ``live``, and a callback.

    Parameters
    ----------
    kind
        The property name.
    total
        Expected work units (structures evaluated or relaxed, fits).
    live
        Show a progress bar (``tqdm.auto``: a widget inside Jupyter, text elsewhere).
    callback
        Called with a :class:`PropertyProgress` at every update (the Lab's Properties tab
        uses it).
    """

    def __init__(
        self,
        kind: str,
        total: int,
        *,
        live: bool = False,
        callback: Callable[[PropertyProgress], Any] | None = None,
    ) -> None:
        self.kind, self.total, self.done = kind, max(int(total), 1), 0
        self.callback = callback
        self.bar: Any = None
        if live:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=kind, unit="step", leave=True)

    def advance(self, stage: str, n: int = 1) -> None:
        """Report ``n`` more units done, now at ``stage``."""
        self.done = min(self.done + int(n), self.total)
        if self.bar is not None:
            self.bar.set_postfix_str(stage, refresh=False)
            self.bar.update(int(n))
        if self.callback is not None:
            self.callback(PropertyProgress(self.kind, stage, self.done, self.total))

    def stage(self, stage: str) -> None:
        """Report a new stage without finishing any work."""
        self.advance(stage, 0)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def evaluate_all(
    potential: Potential,
    structures: Sequence[Atoms],
    properties: Sequence[str] = ("energy", "forces", "stress"),
) -> list[dict[str, Any]]:
    """Evaluate every structure in one :meth:`Potential.evaluate` call.

    When that call would not fit in memory (:class:`MemoryLimitError`), the list is split
    in halves, recursively, down to single structures (a single structure that does not fit
    raises).
    """
    structures = list(structures)
    try:
        return potential.evaluate(structures, properties)
    except MemoryLimitError:
        if len(structures) == 1:
            raise
        half = len(structures) // 2
        return evaluate_all(potential, structures[:half], properties) + evaluate_all(
            potential, structures[half:], properties
        )


def resolve(potential: Potential | str | None) -> Potential:
    """The potential a property uses (a name, a Potential, or None for the default)."""
    return resolve_potential(potential)


def relaxed_copy(
    atoms: Atoms,
    potential: Potential,
    *,
    cell: bool,
    fmax: float,
    cell_mask: Sequence[bool] | None = None,
) -> Atoms:
    """``atoms`` relaxed by :func:`nnp_lab.simulate.relax` (positions, and the cell when
    asked — only the Voigt components ``cell_mask`` allows), without a calculator; ``info``
    keeps the input's and adds ``energy_eV`` and ``relax_converged``."""
    from nnp_lab.simulate import relax

    res = relax(atoms, potential, cell=cell, fmax=fmax, steps=1000, cell_mask=cell_mask)
    out = res.atoms.copy()
    out.calc = None
    out.info.update(atoms.info)
    out.info["energy_eV"] = float(res.energy)
    out.info["relax_converged"] = bool(res.converged)
    return out


def repetitions_for_length(cell: Any, min_length: float) -> tuple[int, int, int]:
    """The smallest repetitions ``(n1, n2, n3)`` of ``cell`` whose supercell is at least
    ``min_length`` Å wide in every direction (widths between opposite faces, so that a
    sphere of diameter ``min_length`` fits: the measure that matters for periodic images)."""
    c = np.asarray(cell, dtype=float)
    volume = abs(float(np.linalg.det(c)))
    widths = [
        volume / float(np.linalg.norm(np.cross(c[(i + 1) % 3], c[(i + 2) % 3]))) for i in range(3)
    ]
    n1, n2, n3 = (max(1, math.ceil(min_length / w - 1e-9)) for w in widths)
    return (n1, n2, n3)


def gas_reference(molecule: Atoms, vacuum: float) -> Atoms:
    """A molecule alone in a periodic orthorhombic box with ``vacuum`` Å on every side (the
    same periodic-box convention as a slab with vacuum), without constraints or calculator."""
    gas = Atoms(molecule.numbers, positions=molecule.positions)
    gas.center(vacuum=float(vacuum))
    gas.pbc = True
    return gas


def reference_cell(
    atoms: Atoms, potential: Potential, *, relax: bool, fmax: float, progress: Progress
) -> Atoms:
    """The structure a property starts from: a copy of ``atoms`` without its calculator and,
    with ``relax``, its cell and positions relaxed to ``fmax`` (reported to ``progress``)."""
    reference = atoms.copy()
    reference.calc = None
    if relax:
        progress.stage("relaxing cell and positions")
        reference = relaxed_copy(reference, potential, cell=True, fmax=fmax)
        progress.advance("reference relaxed")
    return reference


def require_periodic(atoms: Atoms, what: str) -> None:
    """Raise :class:`InputError` unless ``atoms`` is an ase.Atoms periodic in 3D with a cell."""
    if not isinstance(atoms, Atoms):
        raise TypeError(f"{what} needs an ase.Atoms, not {type(atoms).__name__}")
    if not atoms.pbc.all() or abs(atoms.cell.volume) < 1e-6:
        raise InputError(
            f"{what} needs a bulk crystal periodic in all three directions with a 3D cell "
            f"(got pbc={atoms.pbc.tolist()}, volume {abs(atoms.cell.volume):.3g} Å³); build one "
            "with nnp_lab.build.bulk or nnp_lab.build.crystal"
        )


def make_provenance(
    potential: Potential, kind: str, parameters: dict[str, Any], started: float
) -> dict[str, Any]:
    """Model and package provenance plus the property's parameters and wall time."""
    prov = potential.provenance()
    prov.update(
        {
            "property": kind,
            "parameters": jsonable(parameters),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "wall_time_s": round(time.perf_counter() - started, 3),
        }
    )
    return prov


def finish(
    result: R, potential: Potential, kind: str, parameters: dict[str, Any], started: float
) -> R:
    """``result`` with its provenance, after warning (:class:`PropertyWarning`) once per
    failed quality check; called last by every property function, so that the warnings
    point at the user's call."""
    for message in result.flags.values():
        warnings.warn(message, PropertyWarning, stacklevel=3)
    return dataclasses.replace(
        result, provenance=make_provenance(potential, kind, parameters, started)
    )


def atoms_record(atoms: Atoms) -> dict[str, Any]:
    """A JSON-safe description of a structure (numbers, positions, cell, pbc, info)."""
    return {
        "formula": atoms.get_chemical_formula(),
        "numbers": atoms.numbers.tolist(),
        "positions": atoms.positions.tolist(),
        "cell": atoms.cell[:].tolist(),
        "pbc": atoms.pbc.tolist(),
    }


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: arrays to lists, NaN/inf to None, Atoms to records."""
    if isinstance(value, PropertyResult):
        return value.to_dict()
    if isinstance(value, Atoms):
        return atoms_record(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return repr(value)


@dataclass(frozen=True, repr=False)
class PropertyResult:
    """Fields and methods every property result has.

    Attributes
    ----------
    flags : dict
        Failed quality checks, ``{name: plain-language warning}`` (empty: all passed). Each
        was also issued as a :class:`PropertyWarning` when the result was made.
    provenance : dict
        Model name/version/device/dtype, package versions, the property's parameters, wall
        time.
    """

    flags: dict[str, str] = field(default_factory=dict, kw_only=True)
    provenance: dict[str, Any] = field(default_factory=dict, kw_only=True)

    #: Fields left out of :meth:`to_dict` (objects with no JSON form, e.g. phonopy's).
    _not_in_dict: ClassVar[tuple[str, ...]] = ()

    @property
    def ok(self) -> bool:
        """True when every quality check passed."""
        return not self.flags

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-safe types (arrays as lists, structures as records, NaN as None)."""
        out: dict[str, Any] = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            if f.name not in self._not_in_dict:
                out[f.name] = jsonable(getattr(self, f.name))
        return out

    def plot(self) -> Any:
        """A plotly figure of the result."""
        raise NotImplementedError(f"{type(self).__name__} has no plot")

    def headline(self) -> str:
        """The main numbers in one line (used by ``repr`` and :meth:`summary`)."""
        return ""

    def summary(self) -> str:
        """The main numbers and any failed checks, in a few lines."""
        lines = [f"{type(self).__name__}: {self.headline()}"]
        lines += [f"  warning ({name}): {msg}" for name, msg in self.flags.items()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        extra = f", flags={sorted(self.flags)}" if self.flags else ""
        return f"{type(self).__name__}({self.headline()}{extra})"

    def __str__(self) -> str:
        return self.summary()
