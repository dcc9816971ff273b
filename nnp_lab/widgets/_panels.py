"""The common builder panel: inputs, a 3D preview, an inline error line and Relax / MD buttons.

:class:`BuilderPanel` is the base of the panels in :mod:`nnp_lab.widgets.builders` and of the
Lab's file tab; the module docstring of :mod:`nnp_lab.widgets.builders` describes the behaviour
they share. The small constructors below give every panel's inputs the same look.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
from ase import Atoms

from nnp_lab.errors import InputError
from nnp_lab.widgets._html import describe_error, error_html, info_html
from nnp_lab.widgets._launcher import PotentialLike, RunLauncher
from nnp_lab.widgets._viewer_data import without_markers
from nnp_lab.widgets.viewer import Viewer

__all__ = [
    "LEFT_WIDTH",
    "PANEL_LOOK",
    "FieldLook",
    "BuilderPanel",
    "Hint",
    "StepError",
    "dropdown",
    "float_box",
    "int_box",
    "int_row",
    "text_box",
]

#: Width of the inputs column.
LEFT_WIDTH = "360px"


@dataclass(frozen=True)
class FieldLook:
    """Style and layout of a labelled input (one ``Layout`` shared by the inputs using it)."""

    style: Mapping[str, str]
    layout: widgets.Layout

    def kwargs(self) -> dict[str, Any]:
        """``style=`` and ``layout=`` for an input widget."""
        return {"style": self.style, "layout": self.layout}


#: How the builder panels' inputs look.
PANEL_LOOK = FieldLook({"description_width": "110px"}, widgets.Layout(width="330px"))


class Hint(InputError):
    """Nothing to build yet (e.g. no file chosen): shown as a grey hint, not as an error."""


class StepError(InputError):
    """An input error with the name of the step that failed (``"Slab: ..."``)."""

    def __init__(self, context: str, exc: BaseException) -> None:
        super().__init__(describe_error(exc, context))


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
        # editable: the structure can be changed in the view (select, move, add, delete, fix);
        # .atoms then returns the edited structure until the inputs change
        self.viewer = Viewer(height=viewer_height, editable=True)
        # the view's own Relax / NEB buttons use the panel's model (loaded when they run)
        self.viewer.potential = self.launcher.resolve_potential
        self.error = widgets.HTML(layout=widgets.Layout(width=LEFT_WIDTH))
        self.relax_button = widgets.Button(
            description="Relax",
            icon="compress",
            button_style="primary",
            tooltip="Relax this structure with the selected model (live, in this view)",
        )
        self.md_button = widgets.Button(
            description="MD",
            icon="thermometer-half",
            button_style="warning",
            tooltip="Run molecular dynamics on this structure (live, in this view)",
        )
        self.relax_button.on_click(lambda _b: self.relax())
        self.md_button.on_click(lambda _b: self.md())
        left = widgets.VBox(
            [*self._inputs(), widgets.HBox([self.relax_button, self.md_button]), self.error],
            layout=widgets.Layout(width=LEFT_WIDTH, min_width=LEFT_WIDTH),
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
        """A new copy of the structure: the one the inputs describe, or, after edits in the
        view (``viewer.history``), the edited one — until an input changes, which builds
        afresh. ``None`` if the inputs are invalid. Site markers (atomic number 0) are never
        part of it."""
        if self._atoms is None:
            return None
        v = self.viewer
        if v.history and v.n_frames == 0:
            edited = v.atoms
            if edited is not None:
                return without_markers(edited)[0]
        return self._atoms.copy()

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
        return self.launcher.start("relax", self.atoms, viewer=self.viewer)

    def md(self) -> Any:
        """Start a live MD run of :attr:`atoms` (what the MD button does).

        Returns
        -------
        LiveRun or None
            The started run, or ``None`` if it could not start (the reason is shown inline).
        """
        return self.launcher.start("md", self.atoms, viewer=self.viewer)

    # ------------------------------------------------------------------ internals
    _error_text = ""
    _error_context = ""
    #: Inputs that :meth:`set` applies after all others (their options depend on the others).
    _late_inputs: tuple[str, ...] = ()
    _shown_key: tuple[bytes, tuple[bool, ...]] | None = None
    _preview_pending = False
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
        if v.running:  # a run plays in this view: it keeps the view until it ends
            self._preview_pending = True
            return
        self._preview_pending = False
        key = (shown.numbers.tobytes(), tuple(bool(p) for p in shown.pbc))
        if key == self._shown_key and v.n_atoms == len(shown) and v.n_frames == 0:
            v.update(shown.positions, cell=shown.cell, label=label, final=True)
        else:
            v.atoms = shown
            v.label = label
            self._shown_key = key


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def int_box(
    value: int, description: str, *, lo: int, hi: int, look: FieldLook = PANEL_LOOK
) -> widgets.BoundedIntText:
    """A labelled integer box limited to ``lo..hi``."""
    return widgets.BoundedIntText(
        value=value, min=lo, max=hi, description=description, **look.kwargs()
    )


def float_box(
    value: float,
    description: str,
    *,
    lo: float,
    hi: float,
    step: float = 0.1,
    tooltip: str | None = None,
    look: FieldLook = PANEL_LOOK,
) -> widgets.BoundedFloatText:
    """A labelled number box limited to ``lo..hi`` (arrows change it by ``step``)."""
    return widgets.BoundedFloatText(
        value=value,
        min=lo,
        max=hi,
        step=step,
        description=description,
        tooltip=tooltip,
        **look.kwargs(),
    )


def text_box(
    value: str, description: str, placeholder: str | None = None, *, look: FieldLook = PANEL_LOOK
) -> widgets.Text:
    """A labelled text box that commits on Enter or when it loses focus."""
    extra = {} if placeholder is None else {"placeholder": placeholder}
    return widgets.Text(
        value=value, description=description, continuous_update=False, **extra, **look.kwargs()
    )


def dropdown(
    options: Any, value: Any, description: str, *, look: FieldLook = PANEL_LOOK
) -> widgets.Dropdown:
    """A labelled dropdown."""
    return widgets.Dropdown(options=options, value=value, description=description, **look.kwargs())


def int_row(
    label: str, values: tuple[int, ...], *, lo: int, hi: int
) -> tuple[widgets.HBox, list[widgets.BoundedIntText]]:
    """A label and one small integer box per value (Miller indices, repetitions).

    Returns
    -------
    (row, boxes)
        The row to show and its boxes, in order.
    """
    box_layout = widgets.Layout(width="62px")
    boxes = [widgets.BoundedIntText(value=v, min=lo, max=hi, layout=box_layout) for v in values]
    row = widgets.HBox([widgets.Label(label, layout=widgets.Layout(width="114px")), *boxes])
    return row, boxes
