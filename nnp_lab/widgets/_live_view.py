"""The parts of a live run's view (:class:`~nnp_lab.widgets.LiveRun`): what it shows first,
its controls, its layout and the text of its labels and status line.

Everything here builds or formats; the live run itself (threads, throttles, the event
stream) is in :mod:`nnp_lab.widgets.live`.
"""

from __future__ import annotations

import html
import math
from typing import Any

import ipywidgets as widgets
import numpy as np
from ase import Atoms

__all__ = [
    "PLOT_WIDTH_PX",
    "STATUS_COLORS",
    "band_images",
    "band_labels",
    "control_buttons",
    "event_label",
    "fmt_elapsed",
    "preview_band",
    "start_atoms",
    "status_html",
    "temperature_slider",
    "thinned",
    "view_row",
]

#: Width of the plots in CSS pixels (the viewer takes the rest of the row).
PLOT_WIDTH_PX = 460
#: Colour of each state word of the status line.
STATUS_COLORS = {
    "running": "#1f77b4",
    "paused": "#b8860b",
    "pausing": "#b8860b",
    "stopping": "#b8860b",
    "stopped": "#b8860b",
    "finished": "#2ca02c",
    "failed": "#d62728",
    "ready": "#555",
}


# ---------------------------------------------------------------------------------------------
# What is shown before the first step
# ---------------------------------------------------------------------------------------------


def start_atoms(run: Any) -> Any:
    """The run's starting structure (``run.atoms``, or a NEB run's ``initial``), or None."""
    atoms = getattr(run, "atoms", None)
    if atoms is None:
        atoms = getattr(run, "initial", None)
    return atoms


def preview_band(run: Any) -> np.ndarray | None:
    """Linear interpolation between a NEB run's endpoints, (n_images + 2, n, 3)."""
    initial = getattr(run, "initial", None)
    final = getattr(run, "final", None)
    n_images = getattr(run, "n_images", None)
    if initial is None or final is None or n_images is None:
        return None
    d = final.positions - initial.positions
    if initial.pbc.any() and getattr(run, "mic", None) is not False:
        from ase.geometry import find_mic

        d, _ = find_mic(d, initial.cell, initial.pbc)
    t = np.linspace(0.0, 1.0, int(n_images) + 2)[:, None, None]
    return initial.positions[None] + t * d[None]


def band_images(template: Atoms, positions: np.ndarray) -> list[Atoms]:
    """Copies of ``template`` at each of ``positions`` (n_images, n_atoms, 3)."""
    images = []
    for p in positions:
        image = template.copy()
        image.positions = p
        images.append(image)
    return images


def thinned(frames: list[Any], max_frames: int) -> list[Any]:
    """All frames when there are at most ``max_frames``, else every k-th frame with
    ``k = ceil(n / max_frames)`` and the last one."""
    n = len(frames)
    if n <= max_frames:
        return frames
    idx = list(range(0, n, math.ceil(n / max_frames)))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return [frames[i] for i in idx]


# ---------------------------------------------------------------------------------------------
# Controls and layout
# ---------------------------------------------------------------------------------------------


def control_buttons() -> tuple[widgets.Button, widgets.ToggleButton]:
    """The Stop button and the Pause / Resume toggle (not yet wired to a run)."""
    stop = widgets.Button(
        description="Stop",
        icon="stop",
        button_style="danger",
        tooltip="End the run after the current step (result and trajectory are kept)",
        layout=widgets.Layout(width="auto", min_width="80px"),
    )
    pause = widgets.ToggleButton(
        value=False,
        description="Pause",
        icon="pause",
        tooltip="Hold the run after the current step",
        layout=widgets.Layout(width="auto", min_width="100px"),
    )
    return stop, pause


def temperature_slider(run: Any) -> widgets.FloatSlider | None:
    """A slider for the thermostat's target temperature (K) of an MD run, or None.

    Only MD runs with a thermostat (not NVE) get one; it starts at the run's temperature and
    reaches at least 1000 K (or 3 times the start). Nose–Hoover and NPT need T > 0.
    """
    from nnp_lab.simulate import MolecularDynamics

    if not isinstance(run, MolecularDynamics) or run.ensemble == "nve":
        return None
    t0 = float(run.temperature_K)
    low = 1.0 if run.thermostat == "nose-hoover" or run.ensemble == "npt" else 0.0
    return widgets.FloatSlider(
        value=t0,
        min=low,
        max=float(max(1000.0, 10 * round(3 * t0 / 10))),
        step=10.0,
        description="T (K)",
        continuous_update=False,
        readout_format=".0f",
        tooltip="Thermostat target temperature",
        style={"description_width": "40px"},
        layout=widgets.Layout(width="360px", margin="0 0 0 16px"),
    )


def view_row(viewer: widgets.DOMWidget, figure: Any) -> widgets.HBox:
    """The viewer and the plots side by side (wrapping on narrow outputs).

    The figure gets a fixed width: plotly sizes an autosized figure when it first renders,
    before the box has its width, and then falls back to 700 px.
    """
    figure.layout.width = PLOT_WIDTH_PX
    viewer.layout = widgets.Layout(flex="1 1 320px", min_width="280px")
    plot_box = widgets.Box(
        [figure], layout=widgets.Layout(flex=f"0 0 {PLOT_WIDTH_PX}px", overflow="hidden")
    )
    return widgets.HBox(
        [viewer, plot_box], layout=widgets.Layout(width="100%", flex_flow="row wrap")
    )


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------


def fmt_elapsed(seconds: float) -> str:
    """``"12.3 s"``, ``"4 min 05 s"`` or ``"1 h 02 min"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def event_label(kind: str, event: Any) -> str:
    """The viewer's label for one event: time, temperature and energy (MD), trial, energy
    and acceptance (swap Monte Carlo) or step, energy and fmax (relaxations, other runs)."""
    if kind == "md":
        return (
            f"t = {event.time_ps:.3f} ps  T = {event.temperature_K:.0f} K  "
            f"E = {event.energy:.3f} eV"
        )
    if kind == "swap_mc":
        return (
            f"trial {event.step}  E = {event.energy:.3f} eV  "
            f"accepted {event.n_accepted} ({100 * event.acceptance_rate:.0f} %)"
        )
    fmax = getattr(event, "fmax", None)
    text = f"step {event.step}  E = {event.energy:.4f} eV"
    if fmax is not None:
        text += f"  fmax {fmax:.3g}"
    return text


def band_labels(energies: Any, n_img: int, what: str) -> list[str]:
    """One label per NEB image: its index and, when known, its energy relative to image 0."""
    if energies is None:
        return [f"image {i}/{n_img - 1}  ({what})" for i in range(n_img)]
    e = np.asarray(energies, dtype=float)
    return [
        f"image {i}/{n_img - 1}  E − E0 = {e[i] - e[0]:+.3f} eV  ({what})" for i in range(n_img)
    ]


def status_html(
    state: str,
    note: str | None,
    *,
    kind: str,
    total: int | None,
    latest: Any,
    first: tuple[Any, float] | None,
    elapsed: float,
    now: float,
) -> str:
    """The status line: state, step, energies, temperature or fmax, elapsed time, speed.

    Parameters
    ----------
    state
        ``"running"``, ``"paused"``, ``"finished"``, ... (a key of :data:`STATUS_COLORS`).
    note
        Extra text at the end (escaped), or None.
    kind
        The run's kind (``"md"`` shows time and temperature).
    total
        Expected number of steps, or None.
    latest, first
        The newest event, and the first event with the time it arrived (or None for both
        before the first step).
    elapsed
        Seconds since the run started.
    now
        The time (``time.perf_counter``) the speed is measured to: now, or the end of the run.
    """
    parts = [f"<b style='color:{STATUS_COLORS.get(state, '#555')}'>{state}</b>"]
    if latest is not None:
        step = f"step {latest.step}"
        if total:
            step += f"/{total}" if kind == "md" else f" (max {total})"
        parts.append(step)
        if kind == "md":
            parts.append(f"t = {latest.time_ps:.3f} ps")
            parts.append(f"E<sub>pot</sub> = {latest.energy:.4f} eV")
            target = getattr(latest, "target_temperature_K", None)
            parts.append(
                f"T = {latest.temperature_K:.0f} K"
                + (f" (target {target:.0f} K)" if target is not None else "")
            )
        else:
            parts.append(f"E = {latest.energy:.4f} eV")
            fmax = getattr(latest, "fmax", None)
            if fmax is not None:
                parts.append(f"fmax = {fmax:.4g} eV/Å")
    parts.append(fmt_elapsed(elapsed))
    if latest is not None and first is not None:
        dt = now - first[1]
        dsteps = latest.step - first[0].step
        if dt > 0 and dsteps > 0:
            parts.append(f"{dsteps / dt:.1f} steps/s")
    if note:
        parts.append(html.escape(note))
    return (
        "<span style='font-family:var(--jp-code-font-family,monospace);font-size:12px'>"
        + " · ".join(parts)
        + "</span>"
    )
