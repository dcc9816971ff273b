"""Training an :class:`~nnp_lab.potentials.torch_model.EnergyModel` on a labelled :class:`Dataset`.

:func:`train` fits per-element reference energies by least squares, sets the energy
normalisation, and minimises a weighted energy + force (+ optional stress) loss with Adam,
a learning-rate schedule and early stopping on a validation split; the best weights are
restored at the end, after an early stop and after Ctrl-C. A live loss plot (plotly) shows
inside Jupyter, a tqdm bar elsewhere. The result is the trained model and a
:class:`TrainReport`.

The options are checked by :class:`TrainConfig`; the stages are the methods of
``nnp_lab.models._trainer.Trainer``; frames, batching and errors are in
``nnp_lab.models._frames``; the live display is ``nnp_lab.models._train_display``.

Loss
----
For a minibatch of structures with ``N_k`` atoms::

    L = w_E · mean_k ((E_k − Ê_k) / N_k)² / σ²  +  w_F · mean_{i,α} (F_iα − F̂_iα)² / σ²
        [+ w_S · mean_k,v (S_kv − Ŝ_kv)² / σ_S²]

with ``σ`` the RMS of the training force components (eV/Å; the same number that scales the
network output, so the loss is of order one) and ``σ_S`` the RMS of the training stresses.
Forces are the negative gradient of the energy, taken with ``create_graph=True`` so the
force loss can be differentiated with respect to the weights.

Examples
--------
>>> from nnp_lab.models import SchNet, sample, train
>>> data = sample(cu_cells, "emt", rattle=(0.05, 0.1), md_temperatures_K=(600,))  # doctest: +SKIP
>>> model, report = train(SchNet(["Cu"], cutoff=4.5), data, epochs=200,
...                       path="cu.pt")                                  # doctest: +SKIP
>>> print(report)                                                                  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from nnp_lab.errors import InputError
from nnp_lab.models._common import forget_cached_model
from nnp_lab.models._frames import evaluate_model, fit_reference_energies
from nnp_lab.models._train_types import TrainConfig, TrainReport
from nnp_lab.models._trainer import Trainer
from nnp_lab.models.dataset import Dataset
from nnp_lab.potentials.torch_model import EnergyModel

__all__ = [
    "TrainReport",
    "TrainConfig",
    "train",
    "evaluate_model",
    "fit_reference_energies",
    "forget_cached_model",
]


def train(
    model: EnergyModel,
    dataset: Dataset | Sequence[Any],
    *,
    epochs: int = 200,
    batch_size: int = 8,
    lr: float = 3e-3,
    energy_weight: float = 1.0,
    force_weight: float = 1.0,
    stress_weight: float = 0.0,
    validation_fraction: float = 0.1,
    validation: Dataset | Sequence[Any] | None = None,
    patience: int | None = 40,
    schedule: str = "plateau",
    min_lr: float | None = None,
    reference_energies: str | Mapping[int | str, float] = "auto",
    weight_decay: float = 0.0,
    seed: int | None = 0,
    device: str = "auto",
    dtype: str = "float32",
    threads: int | str | None = "auto",
    live: bool | None = None,
    time_budget_s: float | None = None,
    path: str | os.PathLike | None = None,
    metadata: Mapping[str, Any] | None = None,
    callback: Callable[[dict[str, float]], Any] | None = None,
) -> tuple[EnergyModel, TrainReport]:
    """Train ``model`` on the energies and forces of ``dataset``.

    Steps: split off validation frames; fit per-element reference energies by least
    squares on the training energies and set them on the model; set the normalisation
    (shift = mean per-atom residual, scale = RMS of the training force components) and,
    for models with input standardisation (``BehlerParrinello.fit_descriptor_scaling``),
    the descriptor mean and std of the training frames; then
    minimise the weighted loss (see the module docstring) with Adam over shuffled
    minibatches, evaluate the validation loss after every epoch, lower the learning rate
    on plateaus (or along a cosine), stop after ``patience`` epochs without improvement,
    and restore the best weights.

    Parameters
    ----------
    model
        An :class:`~nnp_lab.potentials.torch_model.EnergyModel`, e.g. a
        :class:`~nnp_lab.models.SchNet` or :class:`~nnp_lab.models.TeaNet` covering the
        dataset's elements. Trained in place (moved to ``device`` and ``dtype``).
    dataset
        A :class:`~nnp_lab.models.Dataset` (or a view of one) or a list of Atoms with
        energy and forces attached.
    epochs
        Largest number of passes over the training frames.
    batch_size
        Structures per optimiser step.
    lr
        Initial learning rate of Adam.
    energy_weight, force_weight, stress_weight
        Loss weights (see the module docstring). Stress only counts for periodic frames
        that have a stress label.
    validation_fraction
        Fraction of ``dataset`` held out for validation (ignored when ``validation`` is
        given). 0 trains on everything and selects the best epoch by training loss.
    validation
        Explicit validation frames (then all of ``dataset`` is used for training).
    patience
        Stop after this many epochs without a better validation loss (None: never).
    schedule
        ``"plateau"`` (halve the rate after ``max(patience // 4, 5)`` epochs without
        improvement), ``"cosine"`` (cosine decay to ``min_lr``, updated every minibatch,
        over ``epochs`` — or over ``time_budget_s`` when that ends first, so a run cut by
        its budget still ends at a low rate) or ``"none"``.
    min_lr
        Smallest learning rate (default ``lr / 100``); with ``"plateau"`` training stops
        when it is reached and the loss still does not improve.
    reference_energies
        ``"auto"`` (default): fit them — and the normalisation — unless the model already
        has non-zero reference energies (a trained model is fine-tuned without changing
        its energy zero); ``"fit"``: always fit; ``"keep"``: never; or a mapping
        ``{element: eV}`` to set (the normalisation is then fitted).
    weight_decay
        L2 penalty of Adam (AdamW style, decoupled).
    seed
        Seed of the split, the weight initialisation is *not* redone (build the model with
        ``torch.manual_seed`` for that) but minibatch order is seeded.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...
    dtype
        ``"float32"`` (default, fast) or ``"float64"``.
    threads
        Torch CPU threads while training: ``"auto"`` (default) applies nnp_lab's policy
        (:mod:`nnp_lab.threads`) to the atoms of one minibatch (1 thread below 1,000 atoms),
        an integer fixes it, None leaves torch's setting. 1 is fastest for small models on
        a shared CPU.
    live
        None (default) or True: a live loss plot inside Jupyter, a tqdm bar elsewhere;
        False: only log messages.
    time_budget_s
        Stop (keeping the best weights) once this many seconds have passed.
    path
        Save the best model here (:func:`~nnp_lab.potentials.torch_model.save_model`, so
        :func:`nnp_lab.load_potential` reads it) while training — at most every 30 s when
        it improves — and at the end.
    metadata
        Extra metadata for the saved file (``name``, ``level_of_theory``, ...).
    callback
        Called after every epoch with that epoch's history entry (a dict).

    Returns
    -------
    (model, TrainReport)
        The model with the best weights, and the report.

    Raises
    ------
    InputError
        Empty dataset, frames without labels, elements the model does not cover, bad
        options.

    Notes
    -----
    Ctrl-C (``KeyboardInterrupt``) ends training cleanly: the best weights so far are
    restored (and saved to ``path``), the report says ``interrupted=True``, a warning is
    issued and the model is returned.
    """
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "cutoff"):
        raise InputError(
            f"train needs an EnergyModel (e.g. nnp_lab.models.SchNet), got {type(model).__name__}"
        )
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        energy_weight=energy_weight,
        force_weight=force_weight,
        stress_weight=stress_weight,
        validation_fraction=validation_fraction,
        patience=patience,
        schedule=schedule,
        min_lr=min_lr,
        reference_energies=reference_energies,
        weight_decay=weight_decay,
        seed=seed,
        device=device,
        dtype=dtype,
        threads=threads,
        live=live,
        time_budget_s=time_budget_s,
        path=path,
        metadata=metadata,
        callback=callback,
    )
    return Trainer(model, dataset, validation, config).run()
