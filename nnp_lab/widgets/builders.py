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
from collections.abc import Mapping
from typing import Any

import numpy as np

import ipywidgets as widgets
from ase import Atoms
from ase.data import covalent_radii

from nnp_lab.build.composition import parse_composition
from nnp_lab.errors import InputError
from nnp_lab.widgets._html import fmt2, info_html
from nnp_lab.widgets._launcher import (
    DEFAULT_MD_OPTIONS,
    DEFAULT_RELAX_OPTIONS,
    PotentialLike,
    RunLauncher,
)
from nnp_lab.widgets._panels import (
    LEFT_WIDTH,
    PANEL_LOOK,
    BuilderPanel,
    StepError,
    dropdown,
    float_box,
    int_box,
    int_row,
    text_box,
)

__all__ = [
    "DEFAULT_MD_OPTIONS",
    "DEFAULT_RELAX_OPTIONS",
    "MoleculeBuilder",
    "NanoparticleBuilder",
    "RunLauncher",
    "SlabBuilder",
    "parse_composition",
]

#: Height of the site markers above the top layer, added to the largest covalent radius of the
#: surface atoms (so that the viewer draws no bond between a marker and a surface atom).
_MARKER_CLEARANCE = 0.8
#: Extra marker height per site kind: a bridge lies only ~0.74 Å (Cu(111)) from the next
#: 3-fold hollow, closer than the viewer's bond criterion for two dummy atoms (0.8 Å).
_MARKER_KIND_OFFSET = {"bridge": 0.5}


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
            **PANEL_LOOK.kwargs(),
        )
        self._hint = widgets.HTML(
            info_html(
                "Press Enter to build. Names (H2O, CO, ...) win over SMILES; "
                "'smiles:CO' is methanol."
            ),
            layout=widgets.Layout(width=LEFT_WIDTH),
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

        self.element = text_box(element, "Bulk", "Pt, Cu, Cu3Au, NaCl ...")
        self.structure = dropdown(["auto", *CRYSTAL_STRUCTURES], "auto", "Structure")
        self.lattice = float_box(
            0.0,
            "a (Å), 0 = auto",
            lo=0.0,
            hi=100.0,
            step=0.01,
            tooltip="Lattice constant in Å; 0 uses the element's reference value",
        )
        miller_row, self.miller = int_row("Miller (h k l)", (1, 1, 1), lo=-9, hi=9)
        self.layers = int_box(4, "Layers", lo=1, hi=60)
        self.vacuum = float_box(
            10.0,
            "Vacuum (Å)",
            lo=0.0,
            hi=100.0,
            step=0.5,
            tooltip="Empty space on each side of the slab",
        )
        size_row, (self.nx, self.ny) = int_row("Repeat (nx ny)", (3, 3), lo=1, hi=30)
        self.fixed_layers = int_box(2, "Fixed layers", lo=0, hi=59)
        self.adsorbate = text_box("", "Adsorbate", "CO, H, OH, H2O, CCO ... (empty: none)")
        self.site = dropdown([], None, "Site")
        self.height = float_box(
            2.0,
            "Height (Å)",
            lo=0.0,
            hi=10.0,
            step=0.1,
            tooltip="Height of the binding atom above the top layer",
        )
        self.binding_atom = text_box("0", "Binding atom", "index (0) or element (C)")
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
            raise StepError("Bulk crystal", exc) from exc
        try:
            slab = surface(crystal, miller, layers, vacuum=vacuum, fixed_layers=fixed, size=size)
        except Exception as exc:
            raise StepError("Slab", exc) from exc
        try:
            sites = adsorption_sites(slab)
        except Exception as exc:
            raise StepError("Adsorption sites", exc) from exc
        self._slab, self._sites, self._slab_key = slab, sites, key
        self._refresh_site_options()
        return slab

    def _refresh_site_options(self) -> None:
        previous = self.site.value
        previous_kind = previous.split("-")[0] if isinstance(previous, str) else None
        options = [
            (f"{s.label}  ({fmt2(s.position[0])}, {fmt2(s.position[1])}) Å", s.label)
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
            raise StepError("Adsorbate", exc) from exc

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
            # flagged as adsorbate: an adsorbate added on a marker in the view (Viewer.add)
            # measures its height from the slab's top layer, not from the markers
            if "adsorbate" not in shown.arrays:
                shown.arrays["adsorbate"] = np.zeros(len(shown), dtype=bool)
            markers.arrays["adsorbate"] = np.ones(len(markers), dtype=bool)
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
                f"<tr{style}><td>{html.escape(s.label)}</td><td>{fmt2(s.position[0])}</td>"
                f"<td>{fmt2(s.position[1])}</td><td>{fmt2(s.position[2])}</td><td>{atoms}</td></tr>"
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
    see :func:`nnp_lab.build.parse_composition`), shape (icosahedron, decahedron, octahedron,
    cuboctahedron, wulff), size (shells for icosahedron/decahedron/cuboctahedron, atoms along
    an edge for the octahedron, a target atom count for wulff) and the seed of the random
    alloy. See :func:`nnp_lab.build.nanoparticle`.

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

        self.composition = text_box(composition, "Composition", "Pt  or  Pt:0.5, Pd:0.5")
        self.shape = dropdown(list(NANOPARTICLE_SHAPES), "cuboctahedron", "Shape")
        self.size = int_box(3, "Size", lo=1, hi=5000)
        self.seed = int_box(0, "Seed", lo=0, hi=2**31 - 1)
        self._hint = widgets.HTML(
            info_html(
                "Size: shells (icosahedron, decahedron, cuboctahedron: 2 -> 13, 3 -> 55, "
                "4 -> 147 atoms), atoms per edge (octahedron), target atoms (wulff)."
            ),
            layout=widgets.Layout(width=LEFT_WIDTH),
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
