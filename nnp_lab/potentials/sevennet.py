"""SevenNet models from the ``sevenn`` wheel (weights ship inside the package; MIT licence).

``sevennet-0`` runs on nnp_lab's own implementation of the network
(:mod:`nnp_lab.potentials.sevennet_fast`: same weights, same results to float32 rounding,
several times faster, no sevenn/e3nn/torch_geometric import). ``sevennet-0-upstream`` and the
other SevenNet models (``sevennet-mf-0-*``, ``sevennet-l3i5``) run on the upstream ``sevenn``
model through :class:`SevenNetPotential`: all structures of one :meth:`Potential.evaluate`
call go through the network as one ``torch_geometric`` batch, so an NEB iteration is a single
forward/backward pass.
"""

from __future__ import annotations

import functools
import logging
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from nnp_lab.errors import InputError
from nnp_lab.potentials.base import Potential
from nnp_lab.potentials.memory import batch_bounds
from nnp_lab.potentials.registry import ModelSpec, require_shipped_file, shipped_file

__all__ = ["SevenNetPotential", "specs"]

logger = logging.getLogger(__name__)

_CITATION = (
    "Y. Park, J. Kim, S. Hwang, S. Han, 'Scalable Parallel Algorithm for Graph Neural Network "
    "Interatomic Potentials in Molecular Dynamics Simulations', J. Chem. Theory Comput. 20, "
    "4857 (2024)"
)
_CITATION_MF = (
    "J. Kim et al., 'Data-efficient multifidelity training for high-fidelity machine learning "
    "interatomic potentials', J. Am. Chem. Soc. (2025); " + _CITATION
)

# Largest number of atoms pushed through the network in one batch (bounds peak memory).
_MAX_BATCH_ATOMS = 4096

#: Peak-memory constants ``(per atom, per pair within the cutoff, overhead)`` in bytes of
#: one batch through the upstream model (energy, forces, stress), measured with
#: ``bench/memory_model.py`` on diamond Si and C, fcc Cu and bcc Na, 64-1,024 atoms (fit
#: x 1.25 + 50 MB, rms residuals 5-7 %; see :mod:`nnp_lab.potentials.memory`): 10-20x
#: what nnp_lab's own SevenNet-0 needs. Checkpoints not listed get the largest of each.
_MEMORY: dict[str, tuple[float, float, float]] = {
    "sevennet-0-upstream": (127e3, 330e3, 122e6),
    "sevennet-mf-0-pbe": (308e3, 327e3, 136e6),
    "sevennet-mf-0-r2scan": (308e3, 327e3, 136e6),  # same network as the PBE head
    "sevennet-l3i5": (183e3, 728e3, 166e6),
}

_SEVENNET_0 = "pretrained_potentials/SevenNet_0__11Jul2024/checkpoint_sevennet_0.pth"
_SEVENNET_0_DESCRIPTION = "SevenNet-0 (11Jul2024), NequIP-style E(3)-equivariant GNN, 5 Å cutoff"

# name -> (checkpoint path inside the sevenn package, modal, level of theory, description)
_MODELS = {
    "sevennet-0": (
        _SEVENNET_0,
        None,
        "PBE/PBE+U (MPtrj)",
        _SEVENNET_0_DESCRIPTION + "; nnp_lab's own implementation",
    ),
    "sevennet-0-upstream": (
        _SEVENNET_0,
        None,
        "PBE/PBE+U (MPtrj)",
        _SEVENNET_0_DESCRIPTION + "; upstream sevenn implementation (reference)",
    ),
    "sevennet-mf-0-pbe": (
        "pretrained_potentials/SevenNet_MF_0/checkpoint_sevennet_mf_0.pth",
        "PBE",
        "PBE/PBE+U (MPtrj)",
        "SevenNet-MF-0, multi-fidelity model, PBE head",
    ),
    "sevennet-mf-0-r2scan": (
        "pretrained_potentials/SevenNet_MF_0/checkpoint_sevennet_mf_0.pth",
        "R2SCAN",
        "r2SCAN (MP r2SCAN)",
        "SevenNet-MF-0, multi-fidelity model, r2SCAN head (different energy zero than PBE)",
    ),
    "sevennet-l3i5": (
        "pretrained_potentials/SevenNet_l3i5/checkpoint_l3i5.pth",
        None,
        "PBE/PBE+U (MPtrj)",
        "SevenNet-l3i5: lmax=3, 5 interaction layers; more accurate, ~3x slower",
    ),
}


def _checkpoint_path(relative: str) -> Path | None:
    return shipped_file("sevenn", relative)


@functools.lru_cache(maxsize=None)
def _load_checkpoint(path: str):
    import sevenn.util

    return sevenn.util.load_checkpoint(path)


#: Models evaluated by nnp_lab's own network code (:mod:`nnp_lab.potentials.sevennet_fast`);
#: the others run the upstream sevenn model.
_OWN_IMPLEMENTATION = frozenset({"sevennet-0"})


# The elements every shipped SevenNet checkpoint covers (read from their configs; a test
# checks this against the checkpoints). Kept here so that listing models and suggesting
# alternatives do not import sevenn (~3 s).
_ELEMENTS = frozenset(
    atomic_numbers[s]
    for s in (
        "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge "
        "As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm "
        "Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Ac Th Pa U Np Pu"
    ).split()
)


def _covered(relative: str) -> frozenset[int]:
    path = _checkpoint_path(relative)
    if path is None or not path.is_file():
        raise FileNotFoundError(f"sevenn checkpoint {relative} not found (pip install sevenn)")
    return _ELEMENTS


class SevenNetPotential(Potential):
    """A SevenNet checkpoint evaluated in batches by the upstream ``sevenn`` model.

    Used for ``sevennet-0-upstream`` (the reference for nnp_lab's own ``sevennet-0``) and for
    the SevenNet models nnp_lab has no own implementation of (``sevennet-mf-0-pbe``,
    ``sevennet-mf-0-r2scan``, ``sevennet-l3i5``).

    Parameters
    ----------
    checkpoint
        Path of a SevenNet checkpoint (``.pth``) file.
    name
        Registered name.
    modal
        Fidelity head for multi-fidelity checkpoints (e.g. ``"PBE"``, ``"R2SCAN"``).
    device
        Torch device string.
    level_of_theory, citation
        Metadata.
    """

    package = "sevenn"
    licence = "MIT (sevenn)"
    dtype = "float32"
    max_batch_atoms = _MAX_BATCH_ATOMS
    # The largest of the measured models (see _MEMORY); __init__ sets the model's own.
    memory_per_atom_bytes = max(m[0] for m in _MEMORY.values())
    memory_per_pair_bytes = max(m[1] for m in _MEMORY.values())
    memory_overhead_bytes = max(m[2] for m in _MEMORY.values())

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        name: str = "sevennet",
        modal: str | None = None,
        device: str = "cpu",
        level_of_theory: str = "unknown",
        citation: str = _CITATION,
    ) -> None:
        super().__init__()
        import sevenn._keys as KEY

        self._KEY = KEY
        cp = _load_checkpoint(str(checkpoint))
        with warnings.catch_warnings():
            # sevenn warns that no accelerated tensor-product backend is enabled.
            warnings.simplefilter("ignore")
            model = cp.build_model()
        model.set_is_batch_data(True)
        model.eval()
        self.model = model.to(device)
        self.config = cp.config
        modal_map = self.config.get("_modal_map") or {}
        if modal_map and modal not in modal_map:
            raise InputError(f"{name}: modal must be one of {list(modal_map)}, got {modal!r}")
        self.modal = modal if modal_map else None
        self.name = name
        self.version = str(self.config.get("version", "unknown"))
        self.cutoff = float(self.config[KEY.CUTOFF])
        self.elements = frozenset(atomic_numbers[s] for s in self.config["chemical_species"])
        self.device = device
        self.level_of_theory = level_of_theory
        self.citation = citation
        self.checkpoint = str(checkpoint)
        if name in _MEMORY:
            (
                self.memory_per_atom_bytes,
                self.memory_per_pair_bytes,
                self.memory_overhead_bytes,
            ) = _MEMORY[name]

    def _graph(self, atoms: Atoms):
        from sevenn.atom_graph_data import AtomGraphData
        from sevenn.train.dataload import unlabeled_atoms_to_graph

        data = AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, self.cutoff))
        if self.modal:
            data[self._KEY.DATA_MODALITY] = self.modal
        return data

    def _evaluate(self, structures: list[Atoms], properties: tuple[str, ...]) -> list[dict]:
        results: list[dict] = []
        for start, stop in batch_bounds([len(a) for a in structures], self.max_batch_atoms):
            results.extend(self._evaluate_batch(structures[start:stop]))
        return results

    def _evaluate_batch(self, structures: list[Atoms]) -> list[dict]:
        from torch_geometric.data import Batch

        KEY = self._KEY
        batch = Batch.from_data_list([self._graph(a) for a in structures]).to(self.device)
        out = self.model(batch)
        energy = out[KEY.PRED_TOTAL_ENERGY].detach().cpu().numpy().astype(np.float64)
        forces = out[KEY.PRED_FORCE].detach().cpu().numpy().astype(np.float64)
        # sevenn's stress is (xx, yy, zz, xy, yz, zx) with the opposite sign to ASE.
        stress = -out[KEY.PRED_STRESS].detach().cpu().numpy().astype(np.float64)
        stress = stress[:, [0, 1, 2, 4, 5, 3]]
        results = []
        start = 0
        for i, atoms in enumerate(structures):
            n = len(atoms)
            res = {"energy": float(energy[i]), "forces": forces[start : start + n].copy()}
            if np.all(np.isfinite(stress[i])):
                res["stress"] = stress[i].copy()
            results.append(res)
            start += n
        return results


def _loader(name: str):
    relative, modal, level, _ = _MODELS[name]

    def load(device: str) -> Potential:
        path = require_shipped_file(name, "sevenn", relative)
        citation = _CITATION_MF if modal else _CITATION
        if name in _OWN_IMPLEMENTATION:
            from nnp_lab.potentials.sevennet_fast import SevenNetFastPotential

            return SevenNetFastPotential(
                path, name=name, device=device, level_of_theory=level, citation=citation
            )
        return SevenNetPotential(
            path, name=name, modal=modal, device=device, level_of_theory=level, citation=citation
        )

    return load


def specs() -> list[ModelSpec]:
    """Registry entries for the SevenNet models shipped in the sevenn wheel."""
    out = []
    for name, (relative, _modal, level, description) in _MODELS.items():
        out.append(
            ModelSpec(
                name=name,
                load=_loader(name),
                level_of_theory=level,
                licence="MIT",
                description=description,
                package="sevenn",
                weights=functools.partial(shipped_file, "sevenn", relative),
                elements=functools.partial(_covered, relative),
            )
        )
    return out
