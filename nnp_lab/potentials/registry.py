"""Registry of named potentials: ``load_potential``, ``list_potentials``, ``register_potential``.

Each entry knows how to load itself from files that are already on disk (weights inside an
installed wheel, or a file the user points to); nothing is ever downloaded.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnp_lab.errors import InputError, UnknownModelError
from nnp_lab.potentials.base import Potential

__all__ = [
    "DEFAULT_MODEL",
    "ModelSpec",
    "register_potential",
    "load_potential",
    "resolve_potential",
    "list_potentials",
    "registered_names",
    "suggest_models",
    "resolve_device",
    "clear_cache",
    "shipped_file",
    "require_shipped_file",
]

logger = logging.getLogger(__name__)

#: Name of the model used when ``potential=None``.
DEFAULT_MODEL = "sevennet-0"


@dataclass(frozen=True)
class ModelSpec:
    """How to load one registered potential and what to say about it before loading.

    Attributes
    ----------
    name
        Registered name (lower case).
    load
        ``load(device) -> Potential``.
    level_of_theory, licence, description, package
        Shown by :func:`list_potentials`.
    weights
        ``weights() -> Path | None``: the local weight file (None when there is none, e.g.
        EMT, or when the providing package is not installed).
    elements
        ``elements() -> frozenset[int]``: covered atomic numbers, cheap (no model build).
    """

    name: str
    load: Callable[[str], Potential]
    level_of_theory: str
    licence: str
    description: str
    package: str | None
    weights: Callable[[], Path | None] = field(default=lambda: None)
    elements: Callable[[], frozenset[int]] = field(default=lambda: frozenset())


_REGISTRY: dict[str, ModelSpec] = {}
_CACHE: dict[tuple[str, str, str | None], Potential] = {}
_CACHE_LOCK = threading.Lock()


def register_potential(spec: ModelSpec, *, overwrite: bool = False) -> None:
    """Register a potential under ``spec.name``.

    Parameters
    ----------
    spec
        The model description and loader.
    overwrite
        Replace an existing entry of the same name.
    """
    key = spec.name.lower()
    if key in _REGISTRY and not overwrite:
        raise InputError(f"a potential named {key!r} is already registered; pass overwrite=True")
    _REGISTRY[key] = spec


def registered_names() -> list[str]:
    """Names accepted by :func:`load_potential`, in registration order."""
    _ensure_builtin()
    return list(_REGISTRY)


def resolve_device(device: str = "auto") -> str:
    """Turn ``"auto"`` into ``"cuda"`` when a GPU is visible, else ``"cpu"``; check others.

    Parameters
    ----------
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    """
    import torch

    device = str(device).lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(
                f"device {device!r} requested but no CUDA GPU is available; use device='cpu' "
                "or 'auto'"
            )
        return device
    if device == "cpu":
        return device
    raise InputError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:N]'")


def load_potential(
    name: str | os.PathLike = DEFAULT_MODEL,
    *,
    device: str = "auto",
    dispersion: str | None = None,
) -> Potential:
    """Load a pretrained or saved potential (cached: each model loads once per process).

    Parameters
    ----------
    name
        A registered name (see :func:`list_potentials`), e.g. ``"sevennet-0"`` (default),
        ``"chgnet-0.3.0"``, ``"emt"``; or the path of a model file saved by nnp_lab.
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda[:N]"``.
    dispersion
        ``None`` or ``"d3"``: add DFT-D3(BJ) with PBE parameters (torch-dftd); see
        :mod:`nnp_lab.potentials.d3` for the cutoffs used.

    Returns
    -------
    Potential
        A loaded potential, shared between callers asking for the same name/device/dispersion.

    Examples
    --------
    >>> pot = load_potential("emt")
    >>> pot.evaluate([ase.build.bulk("Cu")])[0]["energy"]  # doctest: +SKIP
    """
    _ensure_builtin()
    dev = resolve_device(device)
    if dispersion is not None:
        dispersion = str(dispersion).lower()
        if dispersion != "d3":
            raise InputError(f"unknown dispersion {dispersion!r}; use None or 'd3'")
    key_name, loader = _find_loader(name)
    key = (key_name, dev, dispersion)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        base_key = (key_name, dev, None)
        base = _CACHE.get(base_key)
        if base is None:
            logger.info("loading potential %s on %s", key_name, dev)
            base = loader(dev)
            _CACHE[base_key] = base
        if dispersion is None:
            return base
        from nnp_lab.potentials.d3 import with_d3

        pot = with_d3(base)
        _CACHE[key] = pot
        return pot


def _find_loader(name: str | os.PathLike) -> tuple[str, Callable[[str], Potential]]:
    if isinstance(name, Potential):
        raise InputError("load_potential takes a name or a path; you passed a loaded Potential")
    text = os.fspath(name)
    key = text.lower()
    if key in _REGISTRY:
        return key, _REGISTRY[key].load
    path = Path(text).expanduser()
    if path.is_file():
        from nnp_lab.potentials.torch_model import load_model_file

        resolved = str(path.resolve())
        return resolved, lambda dev: load_model_file(resolved, device=dev)
    if any(sep in text for sep in ("/", os.sep)) or path.suffix:
        raise UnknownModelError(f"model file {text!r} does not exist; check the path")
    raise UnknownModelError(
        f"unknown potential {text!r}; registered: {', '.join(_REGISTRY)} "
        "(or pass the path of a model file saved by nnp_lab)"
    )


def resolve_potential(potential: Potential | str | os.PathLike | None) -> Potential:
    """Accept a :class:`Potential`, a registered name / model path, or ``None`` (default model).

    Parameters
    ----------
    potential
        What the caller passed as ``potential=``.
    """
    if potential is None:
        return load_potential(DEFAULT_MODEL)
    if isinstance(potential, Potential):
        return potential
    if isinstance(potential, (str, os.PathLike)):
        return load_potential(potential)
    raise InputError(
        f"potential must be a Potential, a registered name or None, not {type(potential).__name__}"
    )


def suggest_models(numbers: Iterable[int], *, exclude: str | None = None) -> list[str]:
    """Registered models whose element coverage includes all of ``numbers``.

    Parameters
    ----------
    numbers
        Atomic numbers that must be covered.
    exclude
        A name to leave out (the model that failed).
    """
    _ensure_builtin()
    need = set(int(z) for z in numbers)
    base_exclude = (exclude or "").split("+")[0]
    out = []
    for name, spec in _REGISTRY.items():
        if name == base_exclude:
            continue
        try:
            covered = spec.elements()
        except Exception:  # a missing optional package: not a suggestion
            continue
        if need <= set(covered):
            out.append(name)
    return out


def list_potentials() -> Any:
    """Table of registered potentials.

    Returns
    -------
    pandas.DataFrame
        Columns: ``name``, ``elements`` (count), ``level_of_theory``, ``licence``,
        ``size_MB`` (weight file), ``offline`` (``"yes"`` when everything needed to load it is
        on this machine), ``description``.
    """
    import pandas as pd

    _ensure_builtin()
    rows = []
    for name, spec in _REGISTRY.items():
        try:
            weights = spec.weights()
            n_el = len(spec.elements())
            package_ok = spec.package is None or _package_installed(spec.package)
            offline = package_ok and (weights is None or weights.is_file())
        except Exception as exc:  # noqa: BLE001 - a broken optional package shows as "no"
            logger.debug("cannot inspect %s: %s", name, exc)
            weights, n_el, offline = None, 0, False
        size = round(weights.stat().st_size / 1e6, 1) if weights and weights.is_file() else 0.0
        rows.append(
            {
                "name": name,
                "elements": n_el,
                "level_of_theory": spec.level_of_theory,
                "licence": spec.licence,
                "size_MB": size,
                "offline": "yes" if offline else "no",
                "description": spec.description,
            }
        )
    return pd.DataFrame(rows)


def _package_installed(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


def shipped_file(package: str, relative: str) -> Path | None:
    """The file ``relative`` inside the installed ``package`` (e.g. weights its wheel ships),
    found without importing the package; None when the package is not installed."""
    from importlib.util import find_spec

    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / relative


def require_shipped_file(name: str, package: str, relative: str) -> Path:
    """:func:`shipped_file` for loading model ``name``; a clear error when the package is not
    installed (``ModuleNotFoundError``) or lacks the file (``FileNotFoundError``)."""
    path = shipped_file(package, relative)
    if path is None:
        raise ModuleNotFoundError(
            f"{name} needs the {package} package: pip install {package} (its wheel ships the "
            "weights)"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"{name}: weights {path} are missing from the installed {package}; reinstall {package}"
        )
    return path


def forget(path: str | os.PathLike) -> None:
    """Drop every cached load of the model file ``path`` (e.g. after rewriting the file), so
    that the next :func:`load_potential` reads it again."""
    resolved = str(Path(path).expanduser().resolve())
    with _CACHE_LOCK:
        for key in [k for k in _CACHE if k[0] == resolved]:
            del _CACHE[key]


def clear_cache() -> None:
    """Forget loaded models (the next :func:`load_potential` loads again)."""
    with _CACHE_LOCK:
        _CACHE.clear()


_BUILTIN_DONE = False


def _ensure_builtin() -> None:
    global _BUILTIN_DONE
    if _BUILTIN_DONE:
        return
    _BUILTIN_DONE = True
    from nnp_lab.potentials import chgnet, emt, sevennet

    for module in (sevennet, chgnet, emt):
        for spec in module.specs():
            if spec.name not in _REGISTRY:
                register_potential(spec)
