"""The settings of the Relax and MD buttons (the Lab's "Run settings" section)."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from nnp_lab.widgets._launcher import DEFAULT_MD_OPTIONS, DEFAULT_RELAX_OPTIONS
from nnp_lab.widgets._panels import FieldLook, dropdown, float_box, int_box

__all__ = ["RunSettings"]

#: How the run settings' inputs look.
_LOOK = FieldLook({"description_width": "130px"}, widgets.Layout(width="300px"))


class RunSettings(widgets.VBox):
    """Settings of the Relax and MD buttons: two columns of input widgets.

    Relaxation: ``fmax`` (eV/Å), ``steps``, ``optimizer``, ``cell`` (also relax the cell;
    periodic structures only). MD: ``ensemble`` (NVE / NVT / NPT), ``thermostat`` (``default``
    = Langevin for NVT, Nose–Hoover for NPT), ``temperature`` (K), ``timestep`` (fs),
    ``steps``, ``record every`` (steps between live frames) and ``pressure`` (GPa, NPT only; 1e-4 GPa = 1 bar).

    Parameters
    ----------
    relax_options, md_options
        Initial values, merged onto :data:`~nnp_lab.widgets.builders.DEFAULT_RELAX_OPTIONS` /
        :data:`~nnp_lab.widgets.builders.DEFAULT_MD_OPTIONS`.
    """

    def __init__(
        self,
        relax_options: dict[str, Any] | None = None,
        md_options: dict[str, Any] | None = None,
    ) -> None:
        from nnp_lab.simulate import ENSEMBLES, OPTIMIZERS, THERMOSTATS

        r = {**DEFAULT_RELAX_OPTIONS, **(relax_options or {})}
        m = {**DEFAULT_MD_OPTIONS, **(md_options or {})}
        self.fmax = float_box(r["fmax"], "fmax (eV/Å)", lo=1e-4, hi=100.0, step=0.01, look=_LOOK)
        self.relax_steps = int_box(r["steps"], "max steps", lo=0, hi=1_000_000, look=_LOOK)
        optimizer = str(r["optimizer"])
        options = list(OPTIMIZERS)
        match = next((o for o in options if o.lower() == optimizer.lower()), None)
        self.optimizer = dropdown(options, match or "FIRE", "optimizer", look=_LOOK)
        self.cell = widgets.Checkbox(
            value=bool(r["cell"]),
            description="relax the cell too (periodic only)",
            indent=False,
            layout=_LOOK.layout,
        )
        ensembles = [(e.upper(), e) for e in ENSEMBLES]
        self.ensemble = dropdown(ensembles, str(m["ensemble"]).lower(), "ensemble", look=_LOOK)
        thermostats = ["default", *THERMOSTATS]
        self.thermostat = dropdown(
            thermostats, m["thermostat"] or "default", "thermostat", look=_LOOK
        )
        self.temperature = float_box(
            m["temperature_K"], "temperature (K)", lo=0.0, hi=100_000.0, step=10.0, look=_LOOK
        )
        self.timestep = float_box(
            m["timestep_fs"], "timestep (fs)", lo=0.01, hi=20.0, step=0.25, look=_LOOK
        )
        self.md_steps = int_box(m["steps"], "steps", lo=0, hi=10_000_000, look=_LOOK)
        self.interval = int_box(m.get("interval", 5), "record every", lo=1, hi=100_000, look=_LOOK)
        self.pressure = widgets.FloatText(
            value=m.get("pressure_GPa") or 1e-4,
            description="pressure (GPa)",
            **_LOOK.kwargs(),
        )
        self.ensemble.observe(lambda _c: self._sync_enabled(), names="value")
        self._sync_enabled()
        relax_box = widgets.VBox(
            [
                widgets.HTML("<b>Relaxation</b>"),
                self.fmax,
                self.relax_steps,
                self.optimizer,
                self.cell,
            ]
        )
        md_box = widgets.VBox(
            [
                widgets.HTML("<b>Molecular dynamics</b>"),
                self.ensemble,
                self.thermostat,
                self.temperature,
                self.timestep,
                self.md_steps,
                self.interval,
                self.pressure,
            ]
        )
        super().__init__([widgets.HBox([relax_box, md_box])])

    def _sync_enabled(self) -> None:
        ensemble = self.ensemble.value
        self.thermostat.disabled = ensemble == "nve"
        self.temperature.description = "initial T (K)" if ensemble == "nve" else "temperature (K)"
        self.pressure.disabled = ensemble != "npt"

    def relax_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~nnp_lab.simulate.Relaxation` from the widgets."""
        return {
            "fmax": float(self.fmax.value),
            "steps": int(self.relax_steps.value),
            "optimizer": self.optimizer.value,
            "cell": bool(self.cell.value),
        }

    def md_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~nnp_lab.simulate.MolecularDynamics` from the widgets."""
        ensemble = self.ensemble.value
        options: dict[str, Any] = {
            "ensemble": ensemble,
            "temperature_K": float(self.temperature.value),
            "timestep_fs": float(self.timestep.value),
            "steps": int(self.md_steps.value),
            "interval": int(self.interval.value),
        }
        if ensemble != "nve" and self.thermostat.value != "default":
            options["thermostat"] = self.thermostat.value
        if ensemble == "npt":
            options["pressure_GPa"] = float(self.pressure.value)
        return options
