"""The Lab's Properties tab: one property of the built structure, computed live.

The calculation runs in a background thread (the kernel stays free to draw); its progress
reports (:class:`nnp_lab.properties.PropertyProgress`) drive a progress bar, and when it ends
the result's numbers and its plot appear under the controls.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from ase import Atoms

from nnp_lab.properties import PropertyProgress
from nnp_lab.widgets._html import describe_error, error_html, info_html, ok_html

__all__ = ["PropertiesPanel", "PROPERTY_CHOICES"]

#: Dropdown label -> property name (the keys of PropertiesPanel.compute).
PROPERTY_CHOICES = {
    "Equation of state (bulk modulus)": "eos",
    "Elastic tensor": "elastic",
    "Phonons": "phonons",
    "Vacancy formation energy": "vacancy",
    "Surface energy": "surface",
    "Adsorption energy (every site)": "adsorption",
}

_LAYOUT = {"width": "330px"}
_STYLE = {"description_width": "110px"}


class PropertiesPanel(widgets.VBox):
    """Pick a property, press Compute: it runs on the structure of the selected builder.

    Parameters
    ----------
    get_atoms
        Returns the structure to compute (None when there is none).
    get_potential
        Returns the :class:`~nnp_lab.potentials.Potential` to use.

    Attributes
    ----------
    choice : ipywidgets.Dropdown
        The property (values: ``"eos"``, ``"elastic"``, ``"phonons"``, ``"vacancy"``,
        ``"surface"``, ``"adsorption"``).
    miller, adsorbate : ipywidgets.Text
        Options of the surface and adsorption properties.
    compute_button : ipywidgets.Button
    progress : ipywidgets.IntProgress
    status : ipywidgets.HTML
    numbers : ipywidgets.HTML
        The result's summary.
    plot_area : ipywidgets.Box
        The result's plot (a plotly FigureWidget).
    result
        The last result (a :class:`~nnp_lab.properties.PropertyResult`), or None.
    """

    def __init__(
        self, get_atoms: Callable[[], Atoms | None], get_potential: Callable[[], Any]
    ) -> None:
        self.get_atoms, self.get_potential = get_atoms, get_potential
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.choice = widgets.Dropdown(
            options=list(PROPERTY_CHOICES.items()),
            value="eos",
            description="property",
            layout=_LAYOUT,
            style=_STYLE,
        )
        self.miller = widgets.Text(
            "1 1 1", description="Miller (hkl)", layout=_LAYOUT, style=_STYLE
        )
        self.adsorbate = widgets.Text("CO", description="adsorbate", layout=_LAYOUT, style=_STYLE)
        self.compute_button = widgets.Button(description="Compute", button_style="primary")
        self.compute_button.on_click(lambda _b: self.start())
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout={"width": "330px"})
        self.status = widgets.HTML(
            info_html("Build a structure in a tab, pick a property, press Compute.")
        )
        self.numbers = widgets.HTML()
        self.plot_area = widgets.Box()
        self.choice.observe(lambda _c: self._show_options(), names="value")
        self._options = widgets.VBox()
        self._show_options()
        super().__init__(
            [
                widgets.HBox([self.choice, self.compute_button]),
                self._options,
                self.progress,
                self.status,
                self.numbers,
                self.plot_area,
            ]
        )
        self.add_class("nnp-lab-properties")

    def _show_options(self) -> None:
        extra = {"surface": [self.miller], "adsorption": [self.adsorbate]}
        self._options.children = extra.get(self.choice.value, [])

    @property
    def busy(self) -> bool:
        """Whether a calculation is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> threading.Thread | None:
        """Start the chosen property in the background; returns its thread (None: not started,
        the reason is in :attr:`status`)."""
        if self.busy:
            self.status.value = error_html("A calculation is still running; wait for it to end.")
            return None
        atoms = self.get_atoms()
        if atoms is None:
            self.status.value = error_html(
                "No structure: build one in a tab first (fix the error shown there)."
            )
            return None
        kind = self.choice.value
        self.result, self.error = None, None
        self.numbers.value, self.plot_area.children = "", ()
        self.progress.value, self.progress.bar_style = 0, ""
        self.status.value = info_html(f"Loading the model and starting {kind} ...")
        self._thread = threading.Thread(target=self._work, args=(kind, atoms), daemon=True)
        self._thread.start()
        return self._thread

    def wait(self, timeout: float | None = None) -> Any:
        """Wait for the running calculation; returns its result (None after an error)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result

    def _on_progress(self, event: PropertyProgress) -> None:
        self.progress.max = event.total
        self.progress.value = event.done
        self.status.value = info_html(f"{event.property}: {event.stage}")

    def _work(self, kind: str, atoms: Atoms) -> None:
        try:
            result = self.compute(kind, atoms, self.get_potential())
        except Exception as exc:  # noqa: BLE001 - every failure is shown in the panel
            self.error = exc
            self.progress.bar_style = "danger"
            self.status.value = error_html(describe_error(exc))
            return
        self.result = result
        self.progress.value, self.progress.bar_style = self.progress.max, "success"
        self.numbers.value = f"<pre>{html.escape(result.summary())}</pre>"
        self.status.value = (
            ok_html(f"{kind} done") if result.ok else error_html(f"{kind} done, with warnings")
        )
        import plotly.graph_objects as go

        self.plot_area.children = (go.FigureWidget(result.plot()),)

    def compute(self, kind: str, atoms: Atoms, potential: Any) -> Any:
        """Run property ``kind`` on ``atoms`` with ``potential`` (blocking)."""
        from nnp_lab import properties

        cb = self._on_progress
        if kind == "eos":
            return properties.eos(atoms, potential, callback=cb)
        if kind == "elastic":
            return properties.elastic(atoms, potential, callback=cb)
        if kind == "phonons":
            return properties.phonons(atoms, potential, callback=cb)
        if kind == "vacancy":
            return properties.vacancy_formation(atoms, potential, callback=cb)
        if kind == "surface":
            miller = [int(x) for x in self.miller.value.replace(",", " ").split()]
            return properties.surface_energy(atoms, miller, potential, callback=cb)
        if kind == "adsorption":
            return properties.adsorption_energy(
                atoms, self.adsorbate.value.strip(), potential, callback=cb
            )
        raise ValueError(f"unknown property {kind!r}")  # the dropdown only offers the above
