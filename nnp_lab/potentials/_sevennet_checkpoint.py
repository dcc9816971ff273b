"""Reading a SevenNet checkpoint: weights, config, irreps and Wigner-3j coefficients.

Part of nnp_lab's own SevenNet-0 (:mod:`nnp_lab.potentials.sevennet_fast`); nothing here
imports sevenn or e3nn (except :func:`wigner_3j` for a checkpoint without its buffers).
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnp_lab.errors import InputError

__all__ = ["LMAX", "load_sevennet_checkpoint", "parse_irreps", "check_supported", "wigner_3j"]

logger = logging.getLogger(__name__)

#: Highest angular momentum of the features and edge harmonics this implementation handles.
LMAX = 2


def load_sevennet_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read the weights and the config of a SevenNet checkpoint without importing sevenn.

    The file is a ``torch.save``-d dict whose config holds NumPy arrays; it is read with
    ``torch.load(weights_only=True)`` and only NumPy's array reconstruction allowed, so no
    pickled code runs.

    Parameters
    ----------
    path
        The ``.pth`` checkpoint.

    Returns
    -------
    state_dict, config
        The model's tensors (on CPU) and its configuration dict.
    """
    core = getattr(np, "_core", None) or np.core  # NumPy 2 renamed numpy.core
    allowed: list[Any] = [
        (core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
    ]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    with torch.serialization.safe_globals(allowed):
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "model_state_dict" not in payload:
        raise InputError(f"{path} is not a SevenNet checkpoint (no 'model_state_dict')")
    return dict(payload["model_state_dict"]), dict(payload["config"])


def parse_irreps(text: str) -> list[tuple[int, int]]:
    """``"128x0e+64x1e"`` -> ``[(128, 0), (64, 1)]`` (even parity only)."""
    out = []
    for term in str(text).replace(" ", "").split("+"):
        match = re.fullmatch(r"(\d+)x(\d+)([eo])", term)
        if match is None:
            raise NotImplementedError(f"cannot read irreps term {term!r}")
        mul, l, parity = int(match[1]), int(match[2]), match[3]
        if parity != "e":
            raise NotImplementedError("only parity-even (is_parity=False) SevenNet models")
        out.append((mul, l))
    ls = [l for _, l in out]
    if ls != sorted(set(ls)):
        raise NotImplementedError(f"irreps {text!r} are not one block per l in ascending order")
    return out


def check_supported(config: dict[str, Any]) -> None:
    """Refuse configurations this implementation does not reproduce."""
    expect = {
        "_model_type": "E3_equivariant_model",
        "interaction_type": "nequip",
        "self_connection_type": "linear",
        "is_parity": False,
        "_normalize_sph": True,
        "use_bias_in_linear": False,
        "readout_as_fcn": False,
        "act_radial": "silu",
    }
    bad = [k for k, v in expect.items() if config.get(k, v) != v]
    if config.get("lmax", 0) > LMAX:
        bad.append("lmax")
    for key in ("act_gate", "act_scalar"):
        if dict(config.get(key, {})).get("e", "silu") != "silu":
            bad.append(key)
    if config.get("radial_basis", {}).get("radial_basis_name") != "bessel":
        bad.append("radial_basis")
    if config.get("cutoff_function", {}).get("cutoff_function_name") != "XPLOR":
        bad.append("cutoff_function")
    if config.get("_modal_map") or config.get("use_modal_node_embedding"):
        bad.append("modal")
    if bad:
        raise NotImplementedError(
            f"this SevenNet checkpoint uses options the fast path does not implement: {bad}; "
            "evaluate it with the upstream sevenn model "
            "(nnp_lab.potentials.sevennet.SevenNetPotential)"
        )


def wigner_3j(l1: int, l2: int, l3: int, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """Real Wigner-3j symbol ``(2l1+1, 2l2+1, 2l3+1)`` in e3nn's basis (unit Frobenius norm).

    Symbols with an ``l = 0`` leg are ``delta / sqrt(2l+1)``. The others are read from the
    checkpoint, which stores the ones its tensor products use (``..._w3j_{l1}_{l2}_{l3}``)
    and which the upstream model loads over its own: they are the coefficients the network
    was trained with. e3nn 0.6.0's ``wigner_3j`` returns the opposite sign for (1, 2, 2),
    (2, 1, 2) and (2, 2, 1), so computing them afresh would give a different potential. Only
    a checkpoint without the buffers falls back to e3nn (with a warning). Reading them also
    avoids importing e3nn (~1.6 s).
    """
    if 0 in (l1, l2, l3):
        l = max(l1, l2, l3)
        eye = torch.eye(2 * l + 1, dtype=torch.float64) / math.sqrt(2 * l + 1)
        return eye.reshape(2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1)
    suffix = f"_w3j_{l1}_{l2}_{l3}"
    for key, value in state.items():
        if key.endswith(suffix):
            return value.detach().to(torch.float64)
    logger.warning(
        "checkpoint has no Wigner-3j buffer for (%d, %d, %d); using e3nn's, whose sign "
        "convention may differ from the one the model was trained with",
        l1,
        l2,
        l3,
    )
    from e3nn.o3 import wigner_3j  # slow import, only for checkpoints without the buffers

    return wigner_3j(l1, l2, l3).to(torch.float64)
