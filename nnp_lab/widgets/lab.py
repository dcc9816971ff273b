"""``Lab()``: one app to build a structure, pick a model, run it live and save the result.

Layout, top to bottom: the model picker (every registered potential with its level of theory)
with a DFT-D3 toggle; tabs with the builder panels (Molecule | Slab | Nanoparticle | File);
run settings and saving in an accordion; the run status line and the live view area, where
each Relax / MD button of every tab shows its run.

Models load lazily: nothing is loaded when the Lab is created; the picked model (plus D3 if
ticked) is loaded by the first run that needs it, and cached for the rest of the session.

Examples
--------
>>> from nnp_lab.widgets import Lab
>>> lab = Lab()            # doctest: +SKIP
>>> lab                    # doctest: +SKIP
>>> lab.result             # the last finished run's result  # doctest: +SKIP
>>> lab.save("co_pt111.extxyz")                              # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from ase import Atoms

from nnp_lab.errors import InputError
from nnp_lab.potentials import DEFAULT_MODEL, Potential, list_potentials, load_potential
from nnp_lab.widgets._html import describe_error, error_html, info_html, ok_html
from nnp_lab.widgets._launcher import RunLauncher
from nnp_lab.widgets._panels import BuilderPanel, Hint, text_box
from nnp_lab.widgets._properties_panel import PropertiesPanel
from nnp_lab.widgets._run_settings import RunSettings
from nnp_lab.widgets.builders import MoleculeBuilder, NanoparticleBuilder, SlabBuilder

__all__ = ["Lab", "RunSettings", "FilePanel", "SAVE_CHOICES"]

logger = logging.getLogger(__name__)

#: Files larger than this get no download link (the data URL would bloat the notebook).
MAX_DOWNLOAD_BYTES = 20 * 1024**2
#: What :meth:`Lab.save` can write.
SAVE_CHOICES: dict[str, str] = {
    "auto": "last run's final structure (else the built one)",
    "built": "built structure (current tab)",
    "final": "last run's final structure",
    "frames": "last run's frames (trajectory)",
}
_GIVEN = "__given__"


# ---------------------------------------------------------------------------------------------
# File tab
# ---------------------------------------------------------------------------------------------


class FilePanel(BuilderPanel):
    """Load a structure from an uploaded file or a path on the kernel's machine.

    Any format ASE reads (``.xyz``, ``.extxyz``, ``.cif``, ``.traj``, ``POSCAR``, ``.pdb``,
    ...; the format is guessed from the file name). ``index`` picks the frame of a
    multi-frame file (``-1``: the last one). An uploaded file wins over the path.

    Parameters
    ----------
    path
        Initial path (empty: nothing loaded yet).
    potential, relax_options, md_options, launcher, viewer_height
        See :class:`~nnp_lab.widgets.MoleculeBuilder`.

    Notes
    -----
    Input names for :meth:`set`: ``path``, ``index``.
    """

    title = "file"
    _error_context = "File"

    def __init__(self, path: str = "", potential: Any = None, **kwargs: Any) -> None:
        self.upload = widgets.FileUpload(
            accept="", multiple=False, description="Upload", layout=widgets.Layout(width="330px")
        )
        self.path = text_box(str(path), "or path", "structure.cif, POSCAR, run.traj")
        self.index = text_box("-1", "frame index")
        self._inputs_cache = [self.upload, self.path, self.index]
        super().__init__(potential, **kwargs)

    def _inputs(self) -> list[widgets.Widget]:
        return self._inputs_cache

    def _set_input(self, name: str, value: Any) -> None:
        if name == "path":
            self.path.value = os.fspath(value)
        elif name == "index":
            self.index.value = str(value)
        else:
            super()._set_input(name, value)

    def _build(self) -> Atoms:
        from ase.io import read

        text = self.index.value.strip() or "-1"
        try:
            index = int(text)
        except ValueError:
            raise InputError(
                f"frame index {text!r} is not an integer; use 0 for the first frame, -1 for the last"
            ) from None
        uploads = self.upload.value
        if uploads:
            item = uploads[0]
            name = Path(str(item["name"])).name or "upload"
            content = bytes(item["content"])
            with tempfile.TemporaryDirectory() as tmp:
                target = Path(tmp) / name
                target.write_bytes(content)
                atoms = _read_structure(read, target, index, name)
        else:
            path = self.path.value.strip()
            if not path:
                raise Hint("Upload a structure file or type a path, then press Enter.")
            target = Path(path).expanduser()
            if not target.is_file():
                raise InputError(
                    f"no file at {str(target)!r} (relative paths start in {os.getcwd()}); check "
                    "the path"
                )
            atoms = _read_structure(read, target, index, path)
        if not isinstance(atoms, Atoms) or len(atoms) == 0:
            raise InputError("the file holds no atoms")
        atoms.calc = None
        return atoms


def _read_structure(read: Any, path: Path, index: int, shown: str) -> Atoms:
    try:
        return read(str(path), index=index)
    except (IndexError, StopIteration):  # ASE's readers use either for a missing frame
        raise InputError(
            f"{shown} has no frame {index}; use 0 for the first frame, -1 for the last"
        ) from None
    except Exception as exc:
        raise InputError(
            f"could not read {shown!r} as a structure ({type(exc).__name__}: {exc}); use a format "
            "ASE reads (.xyz, .extxyz, .cif, .traj, POSCAR, .pdb) with a matching file name"
        ) from None


# ---------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------


class Lab(widgets.VBox):
    """Build, pick a model, relax or run MD live, and save — in one widget.

    Parameters
    ----------
    potential
        Model selected initially: a registered name (default ``"sevennet-0"``) or an
        already loaded :class:`~nnp_lab.potentials.Potential` (added to the picker as
        "passed to Lab"). Nothing is loaded until a run starts.
    d3
        Tick the DFT-D3(BJ) dispersion toggle initially.
    relax_options, md_options
        Initial run settings (see :class:`RunSettings`).
    viewer_height
        Height of the builders' previews in pixels.

    Attributes
    ----------
    model : ipywidgets.Dropdown
        The model picker; values are registered names.
    d3 : ipywidgets.Checkbox
        The DFT-D3 toggle (``dispersion="d3"`` when ticked).
    settings : RunSettings
        Relaxation and MD settings used by every Relax / MD button.
    tabs : ipywidgets.Tab
        The builder tabs — :attr:`builders` maps ``"molecule"``, ``"slab"``,
        ``"nanoparticle"``, ``"file"`` to the panels — and the Properties tab.
    properties : PropertiesPanel
        The Properties tab: a property of the built structure (the last builder tab shown),
        computed live with the picked model; its plot and numbers appear in the tab.
    launcher : RunLauncher
        Starts the runs; its status line and run area are part of the Lab.
    filename, save_what, save_button, save_status
        The save controls (see :meth:`save`).
    """

    def __init__(
        self,
        potential: str | Potential | None = None,
        *,
        d3: bool = False,
        relax_options: dict[str, Any] | None = None,
        md_options: dict[str, Any] | None = None,
        viewer_height: int = 340,
    ) -> None:
        self._given: Potential | None = potential if isinstance(potential, Potential) else None
        self.result: Any = None
        """The result of the last run that finished (``RelaxResult`` / ``MDResult``), or None."""
        self.saved_path: Path | None = None
        """Where :meth:`save` last wrote a file."""

        model_row = self._model_picker(potential, d3)

        # -- runs --
        self.settings = RunSettings(relax_options, md_options)
        self.launcher = RunLauncher(
            self.get_potential,
            relax_options=self.settings.relax_options,
            md_options=self.settings.md_options,
        )
        self.launcher.on_finished(self._run_finished)

        # -- builders --
        launcher = self.launcher
        self.builders: dict[str, BuilderPanel] = {
            "molecule": MoleculeBuilder(launcher=launcher, viewer_height=viewer_height),
            "slab": SlabBuilder(launcher=launcher, viewer_height=viewer_height),
            "nanoparticle": NanoparticleBuilder(launcher=launcher, viewer_height=viewer_height),
            "file": FilePanel(launcher=launcher, viewer_height=viewer_height),
        }
        # the Properties tab computes on the structure of the builder tab shown last
        self.properties = PropertiesPanel(lambda: self.atoms, self.get_potential)
        self.tabs = widgets.Tab(children=[*self.builders.values(), self.properties])
        for i, title in enumerate(("Molecule", "Slab", "Nanoparticle", "File", "Properties")):
            self.tabs.set_title(i, title)
        self._builder_index = 0
        self.tabs.observe(self._tab_changed, names="selected_index")

        self.extras = widgets.Accordion(children=[self.settings, self._save_controls()])
        self.extras.set_title(0, "Run settings (Relax / MD buttons)")
        self.extras.set_title(1, "Save the result")
        self.extras.selected_index = None

        header = widgets.HTML(
            "<b>nnp_lab</b> — build a structure in a tab, press Relax or MD: the picked model "
            "runs in this kernel and the run appears below, live."
        )
        super().__init__(
            [header, model_row, self.tabs, self.extras, self.launcher.status, self.launcher.area]
        )
        self.add_class("nnp-lab")

    def _model_picker(self, potential: str | Potential | None, d3: bool) -> widgets.HBox:
        """The model dropdown, the D3 toggle and the model's description (nothing is loaded)."""
        self._table = list_potentials()
        options: list[tuple[str, str]] = []
        for row in self._table.itertuples(index=False):
            label = f"{row.name} — {row.level_of_theory}"
            if str(row.offline) != "yes":
                label += " (not installed)"
            options.append((label, str(row.name)))
        if isinstance(potential, Potential):
            options.insert(0, (f"{potential.name} (passed to Lab)", _GIVEN))
            initial = _GIVEN
        else:
            initial = (potential or DEFAULT_MODEL).lower()
            if initial not in [v for _, v in options]:
                raise InputError(
                    f"unknown potential {potential!r} for Lab; registered: "
                    f"{', '.join(v for _, v in options)}"
                )
        self.model = widgets.Dropdown(
            options=options,
            value=initial,
            description="Model",
            style={"description_width": "50px"},
            layout=widgets.Layout(width="430px"),
        )
        self.d3 = widgets.Checkbox(
            value=bool(d3),
            description="+ DFT-D3(BJ) dispersion",
            indent=False,
            layout=widgets.Layout(width="210px"),
        )
        self.model_info = widgets.HTML(layout=widgets.Layout(flex="1"))
        self.model.observe(lambda _c: self._show_model_info(), names="value")
        self.d3.observe(lambda _c: self._show_model_info(), names="value")
        self._show_model_info()
        return widgets.HBox([self.model, self.d3, self.model_info])

    def _save_controls(self) -> widgets.VBox:
        """What to save, the file name, the Save button and its status line."""
        self.save_what = widgets.Dropdown(
            options=[(text, key) for key, text in SAVE_CHOICES.items()],
            value="auto",
            description="Save",
            style={"description_width": "60px"},
            layout=widgets.Layout(width="420px"),
        )
        self.filename = widgets.Text(
            value="nnp_lab_result.extxyz",
            description="to file",
            placeholder="result.extxyz",
            style={"description_width": "60px"},
            layout=widgets.Layout(width="420px"),
        )
        self.save_button = widgets.Button(description="Save", icon="save", button_style="success")
        self.save_button.on_click(lambda _b: self._save_clicked())
        self.save_status = widgets.HTML()
        return widgets.VBox(
            [
                widgets.HTML(
                    info_html(
                        "Any format ASE writes, chosen by the extension (.extxyz, .xyz, .cif, .traj, "
                        ".vasp, .pdb); relative paths are relative to the notebook's folder."
                    )
                ),
                self.save_what,
                widgets.HBox([self.filename, self.save_button]),
                self.save_status,
            ]
        )

    # ------------------------------------------------------------------ model
    @property
    def model_name(self) -> str:
        """Name of the picked model (``"sevennet-0"``, ``"emt"``, ...)."""
        if self.model.value == _GIVEN and self._given is not None:
            return self._given.name
        return str(self.model.value)

    @property
    def dispersion(self) -> str | None:
        """``"d3"`` when the D3 toggle is ticked, else ``None`` (as for ``load_potential``)."""
        return "d3" if self.d3.value else None

    def get_potential(self) -> Potential:
        """Load (or fetch from the cache) the picked model, with D3 when ticked.

        Called when a run starts, not before; each model loads once per process.

        Returns
        -------
        Potential
        """
        if self.model.value == _GIVEN and self._given is not None:
            if self.dispersion is None:
                return self._given
            from nnp_lab.potentials.d3 import with_d3

            return with_d3(self._given)
        return load_potential(self.model_name, dispersion=self.dispersion)

    def _show_model_info(self) -> None:
        if self.model.value == _GIVEN and self._given is not None:
            text = f"{self._given.name}: {getattr(self._given, 'level_of_theory', '')}"
        else:
            rows = self._table[self._table["name"] == self.model.value]
            if rows.empty:
                self.model_info.value = ""
                return
            row = rows.iloc[0]
            description = str(row["description"]).strip().rstrip(".")
            text = (
                f"{description}. Licence {row['licence']}; {row['elements']} elements"
                + (f"; {row['size_MB']} MB" if row["size_MB"] else "")
                + "."
            )
        if self.d3.value:
            text += " With D3(BJ) dispersion (torch-dftd, 20 Å cutoff)."
        text += " Loaded when the first run starts."
        self.model_info.value = (
            f'<div style="font-size:12px; color:#555; line-height:1.3">{html.escape(text)}</div>'
        )

    # ------------------------------------------------------------------ structure and runs
    def _tab_changed(self, change: dict[str, Any]) -> None:
        index = change["new"]
        if index is not None and index < len(self.builders):
            self._builder_index = index

    @property
    def current(self) -> BuilderPanel:
        """The builder panel of the selected tab (with the Properties tab selected: of the
        builder tab shown before it)."""
        return list(self.builders.values())[self._builder_index]

    @property
    def atoms(self) -> Atoms | None:
        """The structure built in the selected tab (a copy), or ``None``."""
        return self.current.atoms

    @property
    def live(self) -> Any:
        """The last live run started from the Lab (a ``LiveRun``), or ``None``."""
        return self.launcher.live

    def _run_finished(self, live: Any) -> None:
        result = getattr(live, "result", None)
        if result is not None:
            self.result = result

    # ------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike[str] | None = None, what: str = "auto") -> Path:
        """Write a structure (or the last run's frames) with :func:`ase.io.write`.

        Parameters
        ----------
        path
            Output file; the format follows the extension. Default: the file name box.
            Relative paths are relative to the kernel's working directory (the notebook's
            folder).
        what
            ``"auto"`` (the last run's final structure if a run has finished, else the
            structure built in the selected tab), ``"built"``, ``"final"`` or ``"frames"``
            (every recorded frame of the last run).

        Returns
        -------
        pathlib.Path
            The absolute path written.

        Raises
        ------
        InputError
            Nothing to save, an unknown ``what``, an empty file name, or a format ASE cannot
            write for this content.
        """
        if what not in SAVE_CHOICES:
            raise InputError(f"what must be one of {', '.join(SAVE_CHOICES)}, got {what!r}")
        name = os.fspath(path) if path is not None else self.filename.value.strip()
        if not name:
            raise InputError("type a file name such as result.extxyz")
        images, _ = self._to_save(what)
        target = Path(name).expanduser().resolve()
        from ase.io import write

        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write(str(target), images if len(images) > 1 else images[0])
        except Exception as exc:
            raise InputError(
                f"could not write {str(target)!r} ({type(exc).__name__}: {exc}); choose an "
                "extension ASE writes, e.g. .extxyz or .traj (several frames) or .cif/.vasp "
                "(one structure)"
            ) from None
        self.saved_path = target
        logger.info("saved %d frame(s) to %s", len(images), target)
        return target

    def _to_save(self, what: str) -> tuple[list[Atoms], str]:
        result = self.result
        if what == "auto":
            what = "final" if result is not None else "built"
        if what == "built":
            atoms = self.atoms
            if atoms is None:
                raise InputError(
                    "the selected tab has no valid structure; fix its inputs (the red message) "
                    "first"
                )
            return [atoms], f"the built structure ({self.current.title} tab)"
        if result is None:
            raise InputError(
                "no run has finished yet: press Relax or MD first, or save the built structure"
            )
        if what == "final":
            return [
                result.atoms.copy()
            ], f"the final structure of the last run ({type(result).__name__})"
        frames = list(getattr(result, "frames", []) or [result.atoms])
        return [f.copy() for f in frames], f"{len(frames)} frames of the last run"

    def _save_clicked(self) -> None:
        try:
            images, description = self._to_save(self.save_what.value)
            target = self.save(what=self.save_what.value)
        except Exception as exc:  # shown inline, never raised
            self.save_status.value = error_html(describe_error(exc, "Save"))
            return
        n_atoms = len(images[0])
        message = ok_html(f"Saved {description}, {n_atoms} atoms, to {target}")
        size = target.stat().st_size
        if size <= MAX_DOWNLOAD_BYTES:
            data = base64.b64encode(target.read_bytes()).decode("ascii")
            message += (
                f'<a download="{html.escape(target.name)}" '
                f'href="data:application/octet-stream;base64,{data}" '
                f'style="color:#1565c0; text-decoration:underline">'
                f"Download {html.escape(target.name)} ({size / 1024:.1f} kB)</a>"
            )
        self.save_status.value = message
