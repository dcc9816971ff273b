"""Builder panels: build a molecule, a slab (with an adsorbate) or a nanoparticle in a widget.

Each panel is an :class:`ipywidgets.VBox` with input widgets on the left, a 3D
:class:`~nnp_lab.widgets.Viewer` preview on the right, an inline error line, and Relax / MD
buttons that start a live run (:class:`~nnp_lab.widgets.live.LiveRun`) in a background thread
and show it below the panel.

Behaviour shared by all panels
------------------------------
- **When a rebuild happens.** Text boxes commit on Enter or when they lose focus
  (``continuous_update=False``); number boxes, dropdowns and checkboxes commit on change. Every
  commit rebuilds once. :meth:`~BuilderPanel.set` changes several inputs and rebuilds once.
- **``.atoms``** is a *new copy* of the structure described by the current inputs, or
  ``None`` when the inputs are invalid (the panel never keeps a stale structure that does not
  match what its inputs say; the Relax / MD buttons are disabled meanwhile). The preview keeps
  showing the last valid structure, labelled as such, so the view does not jump while typing.
- **Errors** (invalid SMILES, Miller index (0, 0, 0), unknown element, too many fixed
  layers, ...) are shown in red below the inputs, with the builders' own explanation of what
  was wrong and how to fix it. Nothing is raised into the notebook from a widget callback.
- **Runs.** Relax / MD use the panel's :attr:`~BuilderPanel.potential` (a registered name, a
  loaded :class:`~nnp_lab.potentials.Potential`, or ``None`` for the default model, loaded only
  when a run starts) and the options in ``panel.launcher.relax_options`` /
  ``panel.launcher.md_options``. Inside :class:`~nnp_lab.widgets.Lab` all panels share the
  Lab's launcher, so they use the model, settings and live view area picked there.

Examples
--------
>>> from nnp_lab.widgets import SlabBuilder
>>> sb = SlabBuilder(potential="emt")                                  # doctest: +SKIP
>>> sb.set(element="Pt", miller=(1, 1, 1), adsorbate="CO", site="fcc")  # doctest: +SKIP
>>> sb                                                                  # doctest: +SKIP
>>> sb.atoms.get_chemical_formula()                                     # doctest: +SKIP
'COPt36'
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import ipywidgets as widgets
from ase import Atoms
from ase.data import covalent_radii

from nnp_lab.errors import InputError
from nnp_lab.widgets.viewer import Viewer

__all__ = [
    "DEFAULT_MD_OPTIONS",
    "DEFAULT_RELAX_OPTIONS",
    "MoleculeBuilder",
    "NanoparticleBuilder",
    "RunLauncher",
    "SlabBuilder",
    "parse_composition",
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

_RED = "#c62828"
_GREY = "#555555"
_GREEN = "#2e7d32"
_LEFT_WIDTH = "360px"
_DESC = {"description_width": "110px"}
_FIELD = widgets.Layout(width="330px")
#: Height of the site markers above the top layer, added to the largest covalent radius of the
#: surface atoms (so that the viewer draws no bond between a marker and a surface atom).
_MARKER_CLEARANCE = 0.8
#: Extra marker height per site kind: a bridge lies only ~0.74 Å (Cu(111)) from the next
#: 3-fold hollow, closer than the viewer's bond criterion for two dummy atoms (0.8 Å).
_MARKER_KIND_OFFSET = {"bridge": 0.5}


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _html_line(text: str, color: str, *, icon: str = "") -> str:
    """One line of escaped text in ``color`` (an HTML widget value)."""
    if not text:
        return ""
    return (
        f'<div style="color:{color}; white-space:pre-wrap; line-height:1.35">'
        f"{icon}{html.escape(text)}</div>"
    )


def _fmt(x: float) -> str:
    """Two decimals without a negative zero."""
    return f"{round(float(x), 2) + 0.0:.2f}"


def error_html(message: str) -> str:
    """HTML for an inline error message (red)."""
    return _html_line(message, _RED, icon="&#10006; ")


def info_html(message: str) -> str:
    """HTML for an inline status message (grey)."""
    return _html_line(message, _GREY)


def ok_html(message: str) -> str:
    """HTML for an inline success message (green)."""
    return _html_line(message, _GREEN, icon="&#10004; ")


def describe_error(exc: BaseException, context: str = "") -> str:
    """A one-paragraph, user-facing description of ``exc``.

    Input errors from the builders already say what was wrong and how to fix it; other
    exceptions are unexpected and are shown with their type (and logged with a traceback).
    """
    prefix = f"{context}: " if context else ""
    if isinstance(exc, (InputError, ValueError)):
        return f"{prefix}{exc}"
    logger.warning("unexpected error in a builder panel (%s)", context or "build", exc_info=exc)
    return (
        f"{prefix}unexpected {type(exc).__name__}: {exc}. Check the inputs; if they look right, "
        "this is a bug in nnp_lab (the traceback is in the log)."
    )


def parse_composition(text: str) -> str | dict[str, float]:
    """Read a nanoparticle composition typed in a text box.

    Parameters
    ----------
    text
        An element (``"Pt"``), a formula (``"Pt3Ni"``) or comma-separated fractions
        ``"Pt:0.2, Pd:0.2, Rh:0.2, Ir:0.2, Ru:0.2"`` (``=`` works as well as ``:``; an element
        without a fraction counts 1; fractions are normalised by the builder).

    Returns
    -------
    str or dict
        The element/formula string, or ``{symbol: fraction}``.

    Raises
    ------
    InputError
        Empty text, or a fraction that is not a number.
    """
    text = (text or "").strip()
    if not text:
        raise InputError(
            "enter an element ('Pt'), a formula ('Pt3Ni') or fractions such as 'Pt:0.5, Pd:0.5'"
        )
    if not any(sep in text for sep in (":", "=", ",", ";")):
        return text
    comp: dict[str, float] = {}
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        sep = ":" if ":" in part else "=" if "=" in part else None
        if sep is None:
            symbol, value = part, "1"
        else:
            symbol, value = (s.strip() for s in part.split(sep, 1))
        try:
            fraction = float(value)
        except ValueError:
            raise InputError(
                f"the fraction of {symbol or '?'} in {part!r} is not a number; write "
                "element:fraction pairs separated by commas, e.g. 'Pt:0.5, Pd:0.5'"
            ) from None
        comp[symbol] = comp.get(symbol, 0.0) + fraction
    if not comp:
        raise InputError(f"no element found in {text!r}; write e.g. 'Pt:0.5, Pd:0.5'")
    return comp


def _live_run_class() -> type:
    """The live-run widget class (imported lazily; tests may replace this function)."""
    from nnp_lab.widgets.live import LiveRun

    return LiveRun


class Hint(InputError):
    """Nothing to build yet (e.g. no file chosen): shown as a grey hint, not as an error."""


class _Context(InputError):
    """An input error with the name of the step that failed (``"Slab: ..."``)."""

    def __init__(self, context: str, exc: BaseException) -> None:
        super().__init__(describe_error(exc, context))


# ---------------------------------------------------------------------------------------------
# Starting live runs
# ---------------------------------------------------------------------------------------------

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
    def start(self, kind: str, atoms: Atoms | None) -> Any:
        """Start a live ``kind`` run of ``atoms`` in the background and show it in :attr:`area`.

        Nothing is raised: problems (no structure, a run still going, a model that does not
        cover the elements, options the run rejects) are shown in :attr:`status`.

        Parameters
        ----------
        kind
            ``"relax"`` or ``"md"``.
        atoms
            Structure to run (not modified).

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
                live_cls = _live_run_class()
                live = live_cls(run, total=options.get("steps"))
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


# ---------------------------------------------------------------------------------------------
# The common panel
# ---------------------------------------------------------------------------------------------


class BuilderPanel(widgets.VBox):
    """Inputs + preview + inline error + Relax/MD buttons; subclasses define the inputs.

    Subclasses implement :meth:`_inputs` (the input widgets, in display order),
    :meth:`_build` (the structure from the current inputs; raises on bad input) and may
    override :meth:`_show` (what the preview draws).
    """

    #: Name of the panel in error messages and the viewer label.
    title = "structure"

    def __init__(
        self,
        potential: PotentialLike = None,
        *,
        relax_options: Mapping[str, Any] | None = None,
        md_options: Mapping[str, Any] | None = None,
        launcher: RunLauncher | None = None,
        viewer_height: int = 360,
    ) -> None:
        self._hold = 0
        self._atoms: Atoms | None = None
        self._owns_launcher = launcher is None
        self.launcher = launcher or RunLauncher(
            potential, relax_options=relax_options, md_options=md_options
        )
        self.viewer = Viewer(height=viewer_height)
        self.error = widgets.HTML(layout=widgets.Layout(width=_LEFT_WIDTH))
        self.relax_button = widgets.Button(
            description="Relax",
            icon="compress",
            button_style="primary",
            tooltip="Relax this structure with the selected model (live view below)",
        )
        self.md_button = widgets.Button(
            description="MD",
            icon="thermometer-half",
            button_style="warning",
            tooltip="Run molecular dynamics on this structure (live view below)",
        )
        self.relax_button.on_click(lambda _b: self.relax())
        self.md_button.on_click(lambda _b: self.md())
        left = widgets.VBox(
            [*self._inputs(), widgets.HBox([self.relax_button, self.md_button]), self.error],
            layout=widgets.Layout(width=_LEFT_WIDTH, min_width=_LEFT_WIDTH),
        )
        right = widgets.VBox([self.viewer, *self._extra_preview()], layout=widgets.Layout(flex="1"))
        children: list[widgets.Widget] = [widgets.HBox([left, right])]
        if self._owns_launcher:
            children += [self.launcher.status, self.launcher.area]
        super().__init__(children)
        self.add_class("nnp-builder")
        for w in self._watched():
            w.observe(self._on_input, names="value")
        self.rebuild()

    # ------------------------------------------------------------------ subclass hooks
    def _inputs(self) -> list[widgets.Widget]:
        raise NotImplementedError

    def _watched(self) -> list[widgets.Widget]:
        """Widgets whose value changes trigger a rebuild (default: every input with a value)."""
        out: list[widgets.Widget] = []

        def walk(w: widgets.Widget) -> None:
            if isinstance(w, widgets.Box):
                for c in w.children:
                    walk(c)
            elif isinstance(w, widgets.ValueWidget) and not isinstance(
                w, (widgets.HTML, widgets.Label)
            ):
                out.append(w)

        for w in self._inputs_cache:
            walk(w)
        return out

    def _extra_preview(self) -> list[widgets.Widget]:
        return []

    def _build(self) -> Atoms:
        raise NotImplementedError

    def _label(self, atoms: Atoms) -> str:
        return f"{atoms.get_chemical_formula()}  ({len(atoms)} atoms)"

    def _show(self, atoms: Atoms) -> None:
        self._view(atoms, self._label(atoms))

    # ------------------------------------------------------------------ public API
    @property
    def atoms(self) -> Atoms | None:
        """A new copy of the structure the inputs describe, or ``None`` if they are invalid."""
        return None if self._atoms is None else self._atoms.copy()

    @property
    def potential(self) -> PotentialLike:
        """Model used by Relax / MD (name, Potential, None = default, or a provider callable)."""
        return self.launcher.potential

    @potential.setter
    def potential(self, value: PotentialLike) -> None:
        self.launcher.potential = value

    @property
    def live(self) -> Any:
        """The last live run started from the launcher this panel uses (or ``None``)."""
        return self.launcher.live

    @property
    def error_message(self) -> str:
        """The error shown inline, as plain text (empty when the inputs are valid)."""
        return self._error_text

    def rebuild(self) -> Atoms | None:
        """Build the structure from the current inputs and show it (or show the error).

        Returns
        -------
        ase.Atoms or None
            Same as :attr:`atoms` afterwards.
        """
        try:
            atoms = self._build()
        except Hint as hint:  # nothing entered yet: a grey hint, not a red error
            self._set_error(str(hint), hint=True)
            self._atoms = None
            self._set_buttons(False)
            return None
        except Exception as exc:  # every failure is shown inline, never raised
            self._set_error(describe_error(exc, self._error_context))
            self._atoms = None
            self._set_buttons(False)
            if self.viewer.n_atoms:
                self.viewer.label = "last valid structure: the inputs have an error (see left)"
            return None
        self._atoms = atoms
        self._set_error("")
        self._set_buttons(True)
        try:
            self._show(atoms)
        except Exception as exc:  # a preview problem must not hide a valid structure
            self._set_error(describe_error(exc, "Preview"))
        return self.atoms

    def set(self, **values: Any) -> Atoms | None:
        """Change several inputs at once and rebuild once.

        Parameters
        ----------
        **values
            Input names and values (see the panel's class docstring for the names).

        Returns
        -------
        ase.Atoms or None
            :attr:`atoms` after the rebuild.

        Raises
        ------
        TypeError
            For an unknown input name (a programming error, not a user input error).
        InputError
            :class:`SlabBuilder` only: a ``site`` the slab does not have (the message lists
            the available ones). Bad *values* of other inputs are shown inline instead.
        """
        late = [k for k in values if k in self._late_inputs]
        with self.hold_rebuild():
            for name in [k for k in values if k not in late] + late:
                self._set_input(name, values[name])
        return self.rebuild()

    @contextmanager
    def hold_rebuild(self) -> Iterator[None]:
        """Context manager: input changes inside it do not rebuild; call :meth:`rebuild` after."""
        self._hold += 1
        try:
            yield
        finally:
            self._hold -= 1

    def relax(self) -> Any:
        """Start a live relaxation of :attr:`atoms` (what the Relax button does).

        Returns
        -------
        LiveRun or None
            The started run, or ``None`` if it could not start (the reason is shown inline).
        """
        return self.launcher.start("relax", self.atoms)

    def md(self) -> Any:
        """Start a live MD run of :attr:`atoms` (what the MD button does).

        Returns
        -------
        LiveRun or None
            The started run, or ``None`` if it could not start (the reason is shown inline).
        """
        return self.launcher.start("md", self.atoms)

    # ------------------------------------------------------------------ internals
    _error_text = ""
    _error_context = ""
    #: Inputs that :meth:`set` applies after all others (their options depend on the others).
    _late_inputs: tuple[str, ...] = ()
    _shown_key: tuple[bytes, tuple[bool, ...]] | None = None
    _inputs_cache: list[widgets.Widget] = []

    def _set_input(self, name: str, value: Any) -> None:
        raise TypeError(f"{type(self).__name__}.set() got an unknown input {name!r}")

    def _on_input(self, _change: Any) -> None:
        if not self._hold:
            self.rebuild()

    def _set_error(self, message: str, *, hint: bool = False) -> None:
        self._error_text = "" if hint else message
        self.error.value = info_html(message) if hint else error_html(message)

    def _set_buttons(self, enabled: bool) -> None:
        self.relax_button.disabled = not enabled
        self.md_button.disabled = not enabled

    def _view(self, shown: Atoms, label: str) -> None:
        """Show ``shown``; keep the camera when only positions (not the atoms) changed."""
        v = self.viewer
        key = (shown.numbers.tobytes(), tuple(bool(p) for p in shown.pbc))
        if key == self._shown_key and v.n_atoms == len(shown):
            v.update(shown.positions, cell=shown.cell, label=label, final=True)
        else:
            v.atoms = shown
            v.label = label
            self._shown_key = key


def _int_box(value: int, description: str, *, lo: int, hi: int) -> widgets.BoundedIntText:
    return widgets.BoundedIntText(
        value=value,
        min=lo,
        max=hi,
        description=description,
        style=_DESC,
        layout=_FIELD,
    )


def _float_box(
    value: float, description: str, *, lo: float, hi: float, step: float = 0.1, tooltip: str = ""
) -> widgets.BoundedFloatText:
    return widgets.BoundedFloatText(
        value=value,
        min=lo,
        max=hi,
        step=step,
        description=description,
        style=_DESC,
        layout=_FIELD,
        tooltip=tooltip,
    )


def _text_box(value: str, description: str, placeholder: str) -> widgets.Text:
    return widgets.Text(
        value=value,
        description=description,
        placeholder=placeholder,
        style=_DESC,
        layout=_FIELD,
        continuous_update=False,
    )


# ---------------------------------------------------------------------------------------------
# Molecule
# ---------------------------------------------------------------------------------------------


class MoleculeBuilder(BuilderPanel):
    """Build a molecule from a SMILES string or a name, with a 3D preview and Relax / MD buttons.

    Names from ASE's G2 set (``"H2O"``, ``"CO"``, ``"CH4"``, ...; suggested while typing) give
    reference geometries; anything else is read as SMILES (RDKit ETKDG + MMFF94). Prefix
    ``"smiles:"`` to force SMILES (``"smiles:CO"`` is methanol). See
    :func:`nnp_lab.build.molecule`.

    Parameters
    ----------
    spec
        Initial name or SMILES.
    potential
        Model for Relax / MD: a registered name, a loaded Potential, or ``None`` for the
        default model (loaded when the first run starts, not before).
    relax_options, md_options
        Options for the Relax / MD buttons, merged onto :data:`DEFAULT_RELAX_OPTIONS` /
        :data:`DEFAULT_MD_OPTIONS` (e.g. ``{"fmax": 0.02}``, ``{"temperature_K": 500}``).
    launcher
        Share a :class:`RunLauncher` (the Lab does); ``None`` makes one for this panel.
    viewer_height
        Height of the preview in pixels.

    Notes
    -----
    Input names for :meth:`set`: ``spec``.
    """

    title = "molecule"
    _error_context = "Molecule"

    def __init__(self, spec: str = "CCO", potential: PotentialLike = None, **kwargs: Any) -> None:
        from nnp_lab.build import molecule_names

        self.spec = widgets.Combobox(
            value=spec,
            options=molecule_names(),
            ensure_option=False,
            description="SMILES or name",
            placeholder="CCO, c1ccccc1O, H2O, CO ...",
            continuous_update=False,
            style=_DESC,
            layout=_FIELD,
        )
        self._hint = widgets.HTML(
            info_html(
                "Press Enter to build. Names (H2O, CO, ...) win over SMILES; "
                "'smiles:CO' is methanol."
            ),
            layout=widgets.Layout(width=_LEFT_WIDTH),
        )
        self._inputs_cache = [self.spec]
        super().__init__(potential, **kwargs)

    def _inputs(self) -> list[widgets.Widget]:
        return [self.spec, self._hint]

    def _set_input(self, name: str, value: Any) -> None:
        if name != "spec":
            super()._set_input(name, value)
        self.spec.value = str(value)

    def _build(self) -> Atoms:
        from nnp_lab.build import molecule

        return molecule(self.spec.value)

    def _label(self, atoms: Atoms) -> str:
        return f"{atoms.get_chemical_formula()}, {len(atoms)} atoms"


# ---------------------------------------------------------------------------------------------
# Slab + adsorbate
# ---------------------------------------------------------------------------------------------


class SlabBuilder(BuilderPanel):
    """Cut a slab from a bulk crystal, optionally put an adsorbate on a chosen site.

    Inputs: bulk element or formula, crystal structure (``auto`` = the element's reference
    structure), lattice constant (0 = reference value), Miller index (h, k, l), layers,
    vacuum (Å on each side), repetition (nx, ny), fixed bottom layers, adsorbate (a molecule
    name or SMILES, e.g. ``CO``; empty = none), site, height (Å above the top layer) and
    binding atom (index into the adsorbate or an element symbol).

    The site dropdown lists the symmetry-distinct sites of the current slab
    (:func:`nnp_lab.build.adsorption_sites`: top, bridge, fcc, hcp, hollow). In the preview,
    while no adsorbate is placed, every site is drawn as a small red marker (a dummy atom
    ``X`` that is *not* part of :attr:`atoms`) floating above the surface; the selected site's
    marker and the surface atoms that form it are highlighted through the viewer's selection,
    and clicking a marker selects that site. With an adsorbate the markers are hidden (the
    adsorbate sits on the selected site) and the site's surface atoms stay highlighted. The
    table under the preview lists every site with its position.

    Parameters
    ----------
    element
        Initial bulk element or formula.
    potential, relax_options, md_options, launcher, viewer_height
        See :class:`MoleculeBuilder`.

    Notes
    -----
    Input names for :meth:`set`: ``element``, ``structure`` (``"auto"`` or a crystal
    structure), ``a`` (0 = auto), ``miller`` (3 ints), ``layers``, ``vacuum``, ``size``
    ((nx, ny)), ``fixed_layers``, ``adsorbate``, ``site`` (a label such as ``"fcc-0"`` or a
    kind such as ``"fcc"``), ``height``, ``binding_atom``, ``show_sites``.
    """

    title = "slab"
    _late_inputs = ("site",)

    def __init__(self, element: str = "Pt", potential: PotentialLike = None, **kwargs: Any) -> None:
        from nnp_lab.build import CRYSTAL_STRUCTURES

        self.element = _text_box(element, "Bulk", "Pt, Cu, Cu3Au, NaCl ...")
        self.structure = widgets.Dropdown(
            options=["auto", *CRYSTAL_STRUCTURES],
            value="auto",
            description="Structure",
            style=_DESC,
            layout=_FIELD,
        )
        self.lattice = _float_box(
            0.0,
            "a (Å), 0 = auto",
            lo=0.0,
            hi=100.0,
            step=0.01,
            tooltip="Lattice constant in Å; 0 uses the element's reference value",
        )
        miller_layout = widgets.Layout(width="62px")
        self.miller = [
            widgets.BoundedIntText(value=v, min=-9, max=9, layout=miller_layout) for v in (1, 1, 1)
        ]
        miller_row = widgets.HBox(
            [widgets.Label("Miller (h k l)", layout=widgets.Layout(width="114px")), *self.miller]
        )
        self.layers = _int_box(4, "Layers", lo=1, hi=60)
        self.vacuum = _float_box(
            10.0,
            "Vacuum (Å)",
            lo=0.0,
            hi=100.0,
            step=0.5,
            tooltip="Empty space on each side of the slab",
        )
        size_layout = widgets.Layout(width="62px")
        self.nx = widgets.BoundedIntText(value=3, min=1, max=30, layout=size_layout)
        self.ny = widgets.BoundedIntText(value=3, min=1, max=30, layout=size_layout)
        size_row = widgets.HBox(
            [
                widgets.Label("Repeat (nx ny)", layout=widgets.Layout(width="114px")),
                self.nx,
                self.ny,
            ]
        )
        self.fixed_layers = _int_box(2, "Fixed layers", lo=0, hi=59)
        self.adsorbate = _text_box("", "Adsorbate", "CO, H, OH, H2O, CCO ... (empty: none)")
        self.site = widgets.Dropdown(options=[], description="Site", style=_DESC, layout=_FIELD)
        self.height = _float_box(
            2.0,
            "Height (Å)",
            lo=0.0,
            hi=10.0,
            step=0.1,
            tooltip="Height of the binding atom above the top layer",
        )
        self.binding_atom = _text_box("0", "Binding atom", "index (0) or element (C)")
        self.show_sites = widgets.Checkbox(
            value=True,
            description="show site markers (no adsorbate)",
            indent=False,
            layout=widgets.Layout(width="330px"),
        )
        self.site_table = widgets.HTML()
        self._inputs_cache = [
            self.element,
            self.structure,
            self.lattice,
            miller_row,
            self.layers,
            self.vacuum,
            size_row,
            self.fixed_layers,
            self.adsorbate,
            self.site,
            self.height,
            self.binding_atom,
            self.show_sites,
        ]
        self._slab_key: tuple[Any, ...] | None = None
        self._slab: Atoms | None = None
        self._sites: list[Any] = []
        self._n_real = 0
        self._marker_sites: list[Any] = []
        self._syncing_selection = False
        self._error_context = ""
        super().__init__(potential, **kwargs)
        self.viewer.observe(self._on_viewer_selection, names="selected")

    # ------------------------------------------------------------------ layout
    def _inputs(self) -> list[widgets.Widget]:
        return self._inputs_cache

    def _extra_preview(self) -> list[widgets.Widget]:
        return [self.site_table]

    # ------------------------------------------------------------------ public extras
    @property
    def slab(self) -> Atoms | None:
        """A copy of the bare slab (without adsorbate), or ``None`` when the inputs are invalid."""
        return None if self._atoms is None or self._slab is None else self._slab.copy()

    @property
    def sites(self) -> list[Any]:
        """The symmetry-distinct :class:`~nnp_lab.build.Site` objects of the current slab."""
        return list(self._sites) if self._atoms is not None else []

    @property
    def selected_site(self) -> Any:
        """The :class:`~nnp_lab.build.Site` chosen in the dropdown (or ``None``)."""
        return next((s for s in self._sites if s.label == self.site.value), None)

    # ------------------------------------------------------------------ inputs
    def _set_input(self, name: str, value: Any) -> None:
        simple = {
            "element": self.element,
            "structure": self.structure,
            "a": self.lattice,
            "layers": self.layers,
            "vacuum": self.vacuum,
            "fixed_layers": self.fixed_layers,
            "adsorbate": self.adsorbate,
            "height": self.height,
            "show_sites": self.show_sites,
        }
        if name in simple:
            w = simple[name]
            if name == "structure" and value is None:
                value = "auto"
            if name == "a" and value is None:
                value = 0.0
            if name == "adsorbate" and value is None:
                value = ""
            w.value = value
        elif name == "miller":
            values = [int(x) for x in value]
            if len(values) != 3:
                raise TypeError(f"miller must be 3 integers, got {value!r}")
            for w, v in zip(self.miller, values):
                w.value = v
        elif name == "size":
            nx, ny = (int(x) for x in value)
            self.nx.value, self.ny.value = nx, ny
        elif name == "binding_atom":
            self.binding_atom.value = str(value)
        elif name == "site":
            # Options depend on the slab: apply the slab inputs first, then pick the site.
            self._refresh_slab_quietly()
            self.site.value = self._site_label(value)
        else:
            super()._set_input(name, value)

    def _site_label(self, value: Any) -> str:
        labels = [s.label for s in self._sites]
        if value in labels:
            return str(value)
        for s in self._sites:
            if s.kind == value:
                return s.label
        raise InputError(
            f"no site {value!r} on this slab; available: {', '.join(labels) or 'none'} "
            "(or a kind: top, bridge, fcc, hcp, hollow)"
        )

    def _refresh_slab_quietly(self) -> None:
        try:
            self._make_slab()
        except Exception:  # reported by the rebuild that follows
            pass

    # ------------------------------------------------------------------ building
    def _slab_inputs(self) -> tuple[Any, ...]:
        return (
            self.element.value.strip(),
            self.structure.value,
            float(self.lattice.value),
            tuple(int(w.value) for w in self.miller),
            int(self.layers.value),
            float(self.vacuum.value),
            (int(self.nx.value), int(self.ny.value)),
            int(self.fixed_layers.value),
        )

    def _make_slab(self) -> Atoms:
        """The bare slab (cached on its inputs); also refreshes the site dropdown."""
        from nnp_lab.build import adsorption_sites, bulk, surface

        key = self._slab_inputs()
        if key == self._slab_key and self._slab is not None:
            return self._slab
        self._slab_key = None
        element, structure, a, miller, layers, vacuum, size, fixed = key
        if not element:
            raise InputError("Bulk: enter an element or formula, e.g. 'Pt' or 'Cu3Au'")
        try:
            crystal = bulk(element, None if structure == "auto" else structure, a or None)
        except Exception as exc:
            raise _Context("Bulk crystal", exc) from exc
        try:
            slab = surface(crystal, miller, layers, vacuum=vacuum, fixed_layers=fixed, size=size)
        except Exception as exc:
            raise _Context("Slab", exc) from exc
        try:
            sites = adsorption_sites(slab)
        except Exception as exc:
            raise _Context("Adsorption sites", exc) from exc
        self._slab, self._sites, self._slab_key = slab, sites, key
        self._refresh_site_options()
        return slab

    def _refresh_site_options(self) -> None:
        previous = self.site.value
        previous_kind = previous.split("-")[0] if isinstance(previous, str) else None
        options = [
            (f"{s.label}  ({_fmt(s.position[0])}, {_fmt(s.position[1])}) Å", s.label)
            for s in self._sites
        ]
        labels = [s.label for s in self._sites]
        if previous in labels:
            value = previous
        else:
            value = next((s.label for s in self._sites if s.kind == previous_kind), None)
            if value is None and labels:
                value = labels[0]
        with self.hold_rebuild():
            self.site.options = options
            self.site.value = value

    def _build(self) -> Atoms:
        from nnp_lab.build import add_adsorbate

        slab = self._make_slab()
        adsorbate = self.adsorbate.value.strip()
        if not adsorbate:
            return slab.copy()
        site = self.selected_site
        if site is None:
            raise InputError("Adsorbate: this slab has no adsorption site to put it on")
        text = self.binding_atom.value.strip() or "0"
        binding: int | str = int(text) if text.lstrip("-").isdigit() else text
        try:
            return add_adsorbate(
                slab, adsorbate, site, height=float(self.height.value), binding_atom=binding
            )
        except Exception as exc:
            raise _Context("Adsorbate", exc) from exc

    # ------------------------------------------------------------------ preview
    def _label(self, atoms: Atoms) -> str:
        h, k, l = (int(w.value) for w in self.miller)
        text = (
            f"{self.element.value.strip()}({h}{k}{l}) "
            f"{self.nx.value}x{self.ny.value}x{self.layers.value}, {len(atoms)} atoms"
        )
        site = self.selected_site
        if self.adsorbate.value.strip() and site is not None:
            text += f", {self.adsorbate.value.strip()} on {site.label}"
        elif self._marker_sites:
            text += ", red dots: sites"
        return text

    def _show(self, atoms: Atoms) -> None:
        slab = self._slab
        self._n_real = len(atoms)
        show_markers = bool(self.show_sites.value) and not self.adsorbate.value.strip()
        self._marker_sites = list(self._sites) if show_markers else []
        shown = atoms.copy()
        if self._marker_sites and slab is not None:
            top = [i for s in self._sites for i in s.atoms]
            r_max = max(float(covalent_radii[z]) for z in slab.numbers[top]) if top else 1.5
            dz = r_max + float(covalent_radii[0]) + _MARKER_CLEARANCE
            markers = Atoms(
                numbers=[0] * len(self._marker_sites),
                positions=[
                    s.position + [0.0, 0.0, dz + _MARKER_KIND_OFFSET.get(s.kind, 0.0)]
                    for s in self._marker_sites
                ],
                cell=shown.cell,
                pbc=shown.pbc,
            )
            shown = shown + markers
        self._view(shown, self._label(atoms))
        self._highlight_site()
        self._update_table()

    def _highlight_site(self) -> None:
        site = self.selected_site
        selection: list[int] = []
        if site is not None:
            if site in self._marker_sites:
                selection.append(self._n_real + self._marker_sites.index(site))
            selection += sorted(set(site.atoms))
        self._syncing_selection = True
        try:
            self.viewer.selected = selection
        finally:
            self._syncing_selection = False

    def _update_table(self) -> None:
        if not self._sites:
            self.site_table.value = info_html("No adsorption sites found on this slab.")
            return
        rows = []
        for s in self._sites:
            style = (
                ' style="font-weight:bold; background:#fff3cd"'
                if s.label == self.site.value
                else ""
            )
            atoms = ", ".join(str(i) for i in sorted(set(s.atoms)))
            rows.append(
                f"<tr{style}><td>{html.escape(s.label)}</td><td>{_fmt(s.position[0])}</td>"
                f"<td>{_fmt(s.position[1])}</td><td>{_fmt(s.position[2])}</td><td>{atoms}</td></tr>"
            )
        self.site_table.value = (
            '<table style="font-size:12px; border-collapse:collapse">'
            "<tr><th>site</th><th>x (Å)</th><th>y (Å)</th><th>z (Å)</th><th>surface atoms</th></tr>"
            + "".join(rows)
            + "</table>"
        )

    def _on_viewer_selection(self, change: Any) -> None:
        """A click on a site marker in the browser selects that site."""
        if self._syncing_selection or not self._marker_sites:
            return
        picked = [
            i for i in change["new"] if self._n_real <= i < self._n_real + len(self._marker_sites)
        ]
        if not picked:
            return
        label = self._marker_sites[picked[-1] - self._n_real].label
        if label != self.site.value:
            self.site.value = label  # rebuilds and re-highlights
        else:
            self._highlight_site()


# ---------------------------------------------------------------------------------------------
# Nanoparticle
# ---------------------------------------------------------------------------------------------


class NanoparticleBuilder(BuilderPanel):
    """Build a pure or random-alloy metal nanoparticle.

    Inputs: composition (``"Pt"``, ``"Pt3Ni"`` or ``"Pt:0.2, Pd:0.2, Rh:0.2, Ir:0.2, Ru:0.2"``;
    see :func:`parse_composition`), shape (icosahedron, decahedron, octahedron, cuboctahedron,
    wulff), size (shells for icosahedron/decahedron/cuboctahedron, atoms along an edge for the
    octahedron, a target atom count for wulff) and the seed of the random alloy. See
    :func:`nnp_lab.build.nanoparticle`.

    Parameters
    ----------
    composition
        Initial composition text.
    potential, relax_options, md_options, launcher, viewer_height
        See :class:`MoleculeBuilder`.

    Notes
    -----
    Input names for :meth:`set`: ``composition`` (text or a ``{symbol: fraction}`` dict),
    ``shape``, ``size``, ``seed``.
    """

    title = "nanoparticle"
    _error_context = "Nanoparticle"

    def __init__(
        self,
        composition: str = "Pt:0.2, Pd:0.2, Rh:0.2, Ir:0.2, Ru:0.2",
        potential: PotentialLike = None,
        **kwargs: Any,
    ) -> None:
        from nnp_lab.build import NANOPARTICLE_SHAPES

        self.composition = _text_box(composition, "Composition", "Pt  or  Pt:0.5, Pd:0.5")
        self.shape = widgets.Dropdown(
            options=list(NANOPARTICLE_SHAPES),
            value="cuboctahedron",
            description="Shape",
            style=_DESC,
            layout=_FIELD,
        )
        self.size = _int_box(3, "Size", lo=1, hi=5000)
        self.seed = _int_box(0, "Seed", lo=0, hi=2**31 - 1)
        self._hint = widgets.HTML(
            info_html(
                "Size: shells (icosahedron, decahedron, cuboctahedron: 2 -> 13, 3 -> 55, "
                "4 -> 147 atoms), atoms per edge (octahedron), target atoms (wulff)."
            ),
            layout=widgets.Layout(width=_LEFT_WIDTH),
        )
        self._inputs_cache = [self.composition, self.shape, self.size, self.seed, self._hint]
        super().__init__(potential, **kwargs)

    def _inputs(self) -> list[widgets.Widget]:
        return self._inputs_cache

    def _set_input(self, name: str, value: Any) -> None:
        if name == "composition":
            if isinstance(value, Mapping):
                value = ", ".join(f"{k}:{v}" for k, v in value.items())
            self.composition.value = str(value)
        elif name in ("shape", "size", "seed"):
            getattr(self, name).value = value
        else:
            super()._set_input(name, value)

    def _build(self) -> Atoms:
        from nnp_lab.build import nanoparticle

        comp = parse_composition(self.composition.value)
        return nanoparticle(
            comp, shape=self.shape.value, size=int(self.size.value), seed=int(self.seed.value)
        )

    def _label(self, atoms: Atoms) -> str:
        return f"{atoms.get_chemical_formula()} {self.shape.value}, {len(atoms)} atoms"
