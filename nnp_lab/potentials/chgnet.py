"""CHGNet models from the ``chgnet`` wheel (weights ship inside the package; modified BSD).

CHGNet only knows periodic crystals: a non-periodic structure is placed in a cubic box with
enough vacuum that it does not see its images (energy and forces are then those of the
isolated structure; stress is not returned).
"""

from __future__ import annotations

import functools
import logging
import warnings
from typing import Literal

import numpy as np
from ase import Atoms
from ase.stress import full_3x3_to_voigt_6_stress
from ase.units import GPa

from nnp_lab.potentials.base import Potential
from nnp_lab.potentials.registry import ModelSpec, require_shipped_file, shipped_file

__all__ = ["CHGNetPotential", "specs"]

logger = logging.getLogger(__name__)

_CITATION = (
    "B. Deng et al., 'CHGNet as a pretrained universal neural network potential for "
    "charge-informed atomistic modelling', Nat. Mach. Intell. 5, 1031 (2023)"
)

# CHGNet's atom graph cutoff (Å) and covered elements (its embedding spans H..Pu).
_ATOM_GRAPH_CUTOFF = 6.0
#: CHGNet's bond graph cutoff (Å): angles between bonds shorter than this are its three-body
#: terms.
_BOND_GRAPH_CUTOFF = 3.0
_ELEMENTS = frozenset(range(1, 95))
_BATCH_SIZE = 16

# name -> (chgnet model_name, weight file, level of theory, description)
_MODELS = {
    "chgnet-0.3.0": (
        "0.3.0",
        "pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar",
        "PBE/PBE+U (MPtrj)",
        "CHGNet 0.3.0, crystal graph with charge (magnetic moment) information",
    ),
    "chgnet-r2scan": (
        "r2scan",
        "pretrained/r2scan/chgnet_r2scan_transfer_learning_e15f36s161m23.pth.tar",
        "r2SCAN (MP r2SCAN, transfer-learned)",
        "CHGNet transfer-learned to r2SCAN (different energy zero than PBE)",
    ),
}


def _elements() -> frozenset[int]:
    return _ELEMENTS


class CHGNetPotential(Potential):
    """A CHGNet model evaluated in batches of crystal graphs.

    Parameters
    ----------
    model_name
        CHGNet's name for the weights: ``"0.3.0"`` or ``"r2scan"``.
    name
        Registered name.
    device
        Torch device string.
    level_of_theory
        Metadata.
    """

    package = "chgnet"
    licence = "modified BSD (chgnet)"
    dtype = "float32"
    max_batch_structures = _BATCH_SIZE
    # Peak RSS growth of a first single point (energy, forces, stress), measured with
    # bench/memory_model.py on diamond Si and C, fcc Cu and bcc Na, 64-1,024 atoms: fit
    # 3.7 MB + 159 kB per pair within 6 Å + 181 kB per angle within 3 Å (the bond graph;
    # fcc Cu has 66 angles per atom, diamond Si 6) with rms residual 4.1 %, here x 1.25
    # + 50 MB. That is ~5 MB per Si atom and ~18 MB per Cu atom.
    memory_per_atom_bytes = 0.0
    memory_per_pair_bytes = 199e3
    memory_overhead_bytes = 54.6e6
    memory_per_triplet_bytes = 226e3
    memory_triplet_cutoff = _BOND_GRAPH_CUTOFF

    def __init__(
        self,
        model_name: str = "0.3.0",
        *,
        name: str = "chgnet-0.3.0",
        device: str = "cpu",
        level_of_theory: str = "PBE/PBE+U (MPtrj)",
    ) -> None:
        super().__init__()
        import contextlib
        import io

        from chgnet.model import CHGNet

        with contextlib.redirect_stdout(io.StringIO()) as out:  # chgnet prints on load
            self.model = CHGNet.load(model_name=model_name, use_device=device, verbose=False)
        logger.info(out.getvalue().strip())
        self.model.graph_converter.set_isolated_atom_response("ignore")
        self.model.eval()
        self.name = name
        self.version = str(self.model.version or model_name)
        self.cutoff = _ATOM_GRAPH_CUTOFF
        self.elements = _ELEMENTS
        self.device = device
        self.level_of_theory = level_of_theory
        self.citation = _CITATION

    def _structure(self, atoms: Atoms):
        from pymatgen.core import Lattice, Structure

        positions = atoms.positions
        if atoms.pbc.all():
            lattice = Lattice(np.asarray(atoms.cell))
        elif not atoms.pbc.any():
            # Isolated: a box whose images are farther apart than the cutoff.
            extent = positions.max(axis=0) - positions.min(axis=0)
            box = float(extent.max()) + 2 * _ATOM_GRAPH_CUTOFF + 2.0
            lattice = Lattice.cubic(box)
            positions = positions - positions.min(axis=0) + _ATOM_GRAPH_CUTOFF + 1.0
        else:
            # CHGNet treats every direction as periodic: a slab must carry its vacuum.
            lattice = Lattice(np.asarray(atoms.cell))
        return Structure(
            lattice,
            atoms.get_chemical_symbols(),
            positions,
            coords_are_cartesian=True,
        )

    def _evaluate(self, structures: list[Atoms], properties: tuple[str, ...]) -> list[dict]:
        task: Literal["ef", "efs"] = "efs" if "stress" in properties else "ef"
        graphs = [self.model.graph_converter(self._structure(a)) for a in structures]
        with warnings.catch_warnings():
            # chgnet builds a tensor from tensors internally; harmless, but noisy.
            warnings.filterwarnings("ignore", message="To copy construct from a tensor")
            warnings.filterwarnings("ignore", message=".*tensor.detach")
            preds = self.model.predict_graph(graphs, task=task, batch_size=_BATCH_SIZE)
        if isinstance(preds, dict):
            preds = [preds]
        results = []
        for atoms, pred in zip(structures, preds):
            n = len(atoms)
            energy = float(pred["e"]) * (n if self.model.is_intensive else 1)
            res = {"energy": energy, "forces": np.asarray(pred["f"], dtype=np.float64)}
            if "s" in pred and atoms.pbc.any():
                # CHGNet returns the 3x3 stress in GPa with ASE's sign convention.
                s = np.asarray(pred["s"], dtype=np.float64) * GPa
                res["stress"] = full_3x3_to_voigt_6_stress(s) if s.shape == (3, 3) else s
            results.append(res)
        return results


def _loader(name: str):
    model_name, relative, level, _ = _MODELS[name]

    def load(device: str) -> CHGNetPotential:
        require_shipped_file(name, "chgnet", relative)
        return CHGNetPotential(model_name, name=name, device=device, level_of_theory=level)

    return load


def specs() -> list[ModelSpec]:
    """Registry entries for the CHGNet models shipped in the chgnet wheel."""
    return [
        ModelSpec(
            name=name,
            load=_loader(name),
            level_of_theory=level,
            licence="modified BSD",
            description=description,
            package="chgnet",
            weights=functools.partial(shipped_file, "chgnet", relative),
            elements=_elements,
        )
        for name, (_model_name, relative, level, description) in _MODELS.items()
    ]
