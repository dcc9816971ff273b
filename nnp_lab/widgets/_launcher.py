"""Starting live relaxations and MD runs from builder panels: :class:`RunLauncher`.

One launcher per standalone panel, or one shared by every panel of a
:class:`~nnp_lab.widgets.Lab` (whose model picker and run settings feed it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
from ase import Atoms

from nnp_lab.errors import InputError
from nnp_lab.widgets._html import describe_error, error_html, info_html, ok_html

__all__ = [
    "DEFAULT_MD_OPTIONS",
    "DEFAULT_RELAX_OPTIONS",
    "OptionsLike",
    "PotentialLike",
    "RunLauncher",
    "live_run_class",
]

logger = logging.getLogger(__name__)

#: Relaxation options used by the Relax buttons unless the panel (or the Lab) says otherwise.
DEFAULT_RELAX_OPTIONS: dict[str, Any] = {
    "fmax": 0.05,
    "steps": 300,
    "optimizer": "FIRE",
    "cell": False,
}
#: MD options used by the MD buttons unless the panel (or the Lab) says otherwise.
DEFAULT_MD_OPTIONS: dict[str, Any] = {
    "ensemble": "nvt",
    "thermostat": None,
    "temperature_K": 300.0,
    "timestep_fs": 1.0,
    "steps": 500,
    "interval": 5,
}


def live_run_class() -> type:
    """The live-run widget class (imported lazily; tests may replace this function)."""
    from nnp_lab.widgets.live import LiveRun

    return LiveRun


PotentialLike = Any  # Potential | str | None, or a zero-argument callable returning one
OptionsLike = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


class RunLauncher:
    """Starts live relaxations and MD runs for builder panels and shows them in one area.

    A standalone builder panel makes its own launcher (its status line and run area appear
    below the panel). :class:`~nnp_lab.widgets.Lab` makes one launcher whose potential and
    options come from the Lab's model picker and run settings, and hands it to all its panels.

    Parameters
    ----------
    potential
        A :class:`~nnp_lab.potentials.Potential`, a registered name, ``None`` (default model),
        or a zero-argument callable returning one of these, called when a run starts (so a
        model is loaded only when it is needed).
    relax_options, md_options
        Keyword arguments for :class:`~nnp_lab.simulate.Relaxation` /
        :class:`~nnp_lab.simulate.MolecularDynamics`, merged onto
        :data:`DEFAULT_RELAX_OPTIONS` / :data:`DEFAULT_MD_OPTIONS`; or zero-argument
        callables returning the complete options (the Lab's settings panel).

    Attributes
    ----------
    status : ipywidgets.HTML
        One line saying what is loading / running / finished, or what went wrong.
    area : ipywidgets.VBox
        Holds the current :class:`~nnp_lab.widgets.live.LiveRun` widget. Starting a new run
        replaces (and closes) the previous run's widget; its result stays available from
        whoever kept it (``live.result``, ``Lab.result``).
    live : LiveRun or None
        The last run started.
    """

    def __init__(
        self,
        potential: PotentialLike = None,
        *,
        relax_options: OptionsLike | None = None,
        md_options: OptionsLike | None = None,
    ) -> None:
        self.potential = potential
        self.relax_options: OptionsLike = (
            relax_options
            if callable(relax_options)
            else {**DEFAULT_RELAX_OPTIONS, **dict(relax_options or {})}
        )
        self.md_options: OptionsLike = (
            md_options if callable(md_options) else {**DEFAULT_MD_OPTIONS, **dict(md_options or {})}
        )
        self.status = widgets.HTML()
        self.area = widgets.VBox()
        self.live: Any = None
        self._lock = threading.Lock()
        self._started: list[Callable[[Any], None]] = []
        self._finished: list[Callable[[Any], None]] = []

    # ------------------------------------------------------------------ callbacks
    def on_started(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(live_run)`` whenever a run has been started."""
        self._started.append(callback)

    def on_finished(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(live_run)`` when a run ends (possibly from the run's thread)."""
        self._finished.append(callback)

    @property
    def busy(self) -> bool:
        """Whether the last run started is still going."""
        live = self.live
        return live is not None and not bool(getattr(live, "done", True))

    # ------------------------------------------------------------------ resolving settings
    def resolve_potential(self) -> Any:
        """The potential a run would use now (calls the provider; loads a model if needed)."""
        from nnp_lab.potentials import resolve_potential

        potential = self.potential() if callable(self.potential) else self.potential
        return resolve_potential(potential)

    def options(self, kind: str) -> dict[str, Any]:
        """The keyword arguments a ``kind`` (``"relax"`` or ``"md"``) run would use now."""
        source = self.relax_options if kind == "relax" else self.md_options
        return dict(source() if callable(source) else source)

    # ------------------------------------------------------------------ starting
    def start(self, kind: str, atoms: Atoms | None, viewer: Any = None) -> Any:
        """Start a live ``kind`` run of ``atoms`` in the background and show it in :attr:`area`.

        With ``viewer`` (a builder panel's preview) the run plays in that view — the
        structure is not shown a second time — and :attr:`area` holds its plots, Stop / Pause
        and status; a relaxation's result then stays in the view to go on from.

        Nothing is raised: problems (no structure, a run still going, a model that does not
        cover the elements, options the run rejects) are shown in :attr:`status`.

        Parameters
        ----------
        kind
            ``"relax"`` or ``"md"``.
        atoms
            Structure to run (not modified).
        viewer
            A :class:`~nnp_lab.widgets.Viewer` to play the run in, or None for a new one.

        Returns
        -------
        LiveRun or None
            The started live run, or ``None`` when it could not start.
        """
        if kind not in ("relax", "md"):
            raise InputError(f"kind must be 'relax' or 'md', got {kind!r}")
        what = "relaxation" if kind == "relax" else "MD run"
        if atoms is None:
            self.status.value = error_html(
                f"No structure to run: fix the error shown in the builder first, then start the "
                f"{what} again."
            )
            return None
        with self._lock:
            if self.busy:
                self.status.value = error_html(
                    f"A run is still going: press Stop in its panel (or wait for it to end), then "
                    f"start the {what} again."
                )
                return None
            self.status.value = info_html(f"Loading the model and preparing the {what} ...")
            try:
                potential = self.resolve_potential()
                options = self.options(kind)
                run = self._make_run(kind, atoms, potential, options)
                live_cls = live_run_class()
                if viewer is None:
                    live = live_cls(run, total=options.get("steps"))
                else:
                    live = live_cls(run, total=options.get("steps"), viewer=viewer, in_view=True)
            except ImportError as exc:
                self.status.value = error_html(
                    f"Live runs need nnp_lab.widgets.live, which could not be imported ({exc}); "
                    "reinstall nnp_lab with the [lab] extra."
                )
                return None
            except Exception as exc:  # shown inline, never raised into the notebook
                self.status.value = error_html(describe_error(exc, f"Could not start the {what}"))
                return None
            self.live = live
        previous = [w for w in self.area.children if w is not live]
        self.area.children = (live,)
        for widget in previous:  # the last run's view: its result stays in .result objects
            try:
                widget.close()
            except Exception:  # closing is best effort
                logger.debug("closing the previous live run failed", exc_info=True)
        live.on_finished(lambda *_: self._run_finished(live, kind))
        self.status.value = info_html(
            f"Running a {what} of {atoms.get_chemical_formula()} ({len(atoms)} atoms) with "
            f"{getattr(potential, 'name', potential)} in the background; "
            "Stop / Pause are in the run panel below."
        )
        live.start()
        for callback in list(self._started):
            callback(live)
        return live

    @staticmethod
    def _make_run(kind: str, atoms: Atoms, potential: Any, options: dict[str, Any]) -> Any:
        from nnp_lab.simulate import MolecularDynamics, Relaxation

        if kind == "relax":
            return Relaxation(atoms, potential, **options)
        return MolecularDynamics(atoms, potential, **options)

    def _run_finished(self, live: Any, kind: str) -> None:
        if live is not self.live:
            return
        result = getattr(live, "result", None)
        error = getattr(live, "error", None)
        what = "Relaxation" if kind == "relax" else "MD run"
        if error is not None:
            self.status.value = error_html(describe_error(error, f"{what} failed"))
        elif result is None:
            self.status.value = error_html(f"{what} ended without a result.")
        else:
            summary = getattr(result, "summary", None)
            text = summary() if callable(summary) else repr(result)
            self.status.value = ok_html(f"{what} finished. " + text.strip())
        for callback in list(self._finished):
            try:
                callback(live)
            except Exception:  # a broken listener must not break the others
                logger.exception("run-finished callback failed")
