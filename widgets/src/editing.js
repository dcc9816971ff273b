// Editing in the view (when the model's `editable` is true): the edit bar, dragging selected
// atoms in the view plane, box selection (Alt-drag), keyboard steps and shortcuts, and the
// edit / measurement messages. Every edit is a request to Python ({type: "edit", op, ...}),
// which applies it through the Viewer's methods and sends the new structure back: there is one
// implementation of each edit, in Python. Functions of the ViewerView (view.js).

import { FOV_Y } from "./camera.js";
import { atomAt, projectAtom } from "./interaction.js";
import { currentPositions } from "./trajectory.js";
import { el } from "./util.js";

const STEP_A = 0.1; // arrow-key step (Å); with Shift 0.5 Å
const BIG_STEP_A = 0.5;

/** Whether edit gestures apply now: an editable view, live (not a band or trajectory), no run going. */
export function editable(view) {
  return !!view.model.get("editable") && view.mode === "live" && !view.model.get("running");
}

export function sendEdit(view, op, args = {}) {
  view.model.send({ type: "edit", op, ...args });
}

/** World displacement of a point at view depth `depth` for a pointer move of (dx, dy) px. */
function worldPerPixel(view, depth) {
  return (2 * Math.max(depth, 1e-3) * Math.tan(FOV_Y / 2)) / Math.max(1, view.canvas.clientHeight);
}

export function screenToWorld(view, dx, dy, depth) {
  const wpp = worldPerPixel(view, depth);
  const vx = dx * wpp;
  const vy = -dy * wpp;
  const R = view.camera.R;
  return [R[0] * vx + R[3] * vy, R[1] * vx + R[4] * vy, R[2] * vx + R[5] * vy];
}

/** Unit vector pointing out of the screen (towards the viewer), in world coordinates. */
function towardsViewer(view) {
  const R = view.camera.R;
  return [R[6], R[7], R[8]];
}

function selectionDepth(view) {
  const p = currentPositions(view);
  let sum = 0;
  for (const i of view.selected) sum += -view.camera.toView([p[3 * i], p[3 * i + 1], p[3 * i + 2]])[2];
  return view.selected.length ? sum / view.selected.length : view.camera.dist;
}

// ---------------------------------------------------------------- pointer: drag-move and box

/**
 * Called by interaction.js on pointerdown. Returns a drag handler object when the editor takes
 * the gesture (a drag that starts on a selected atom moves the selection; Alt-drag draws a
 * selection box), or null to let the camera orbit / pan.
 */
export function beginEditDrag(view, e) {
  if (!editable(view) || e.button !== 0) return null;
  if (e.altKey) return boxDrag(view, e);
  const i = atomAt(view, e.clientX, e.clientY);
  if (i < 0 || !view.selected.includes(i)) return null;
  return moveDrag(view, e);
}

function moveDrag(view, e) {
  const depth = selectionDepth(view);
  const start = Float32Array.from(view.livePos);
  const total = [0, 0, 0];
  const x0 = e.clientX;
  const y0 = e.clientY;
  return {
    move(ev) {
      const d = screenToWorld(view, ev.clientX - x0, ev.clientY - y0, depth);
      total[0] = d[0];
      total[1] = d[1];
      total[2] = d[2];
      // Local preview only: Python gets one exact move on release.
      const p = Float32Array.from(start);
      for (const i of view.selected) for (let k = 0; k < 3; k++) p[3 * i + k] += d[k];
      view.livePos = p;
      view.dirty.pos = true;
      view.schedule();
    },
    end(ev, cancelled) {
      if (cancelled || Math.hypot(ev.clientX - x0, ev.clientY - y0) < 2) {
        view.livePos = start;
        view.dirty.pos = true;
        view.schedule();
        return;
      }
      sendEdit(view, "move", { displacement: total.map((v) => Number(v.toFixed(6))) });
    },
  };
}

function boxDrag(view, e) {
  const stageRect = view.stage.getBoundingClientRect();
  const box = el("div", "nnpv-box", view.stage);
  const x0 = e.clientX;
  const y0 = e.clientY;
  const place = (x, y) => {
    box.style.left = `${Math.min(x, x0) - stageRect.left}px`;
    box.style.top = `${Math.min(y, y0) - stageRect.top}px`;
    box.style.width = `${Math.abs(x - x0)}px`;
    box.style.height = `${Math.abs(y - y0)}px`;
  };
  place(x0, y0);
  return {
    move(ev) {
      place(ev.clientX, ev.clientY);
    },
    end(ev, cancelled) {
      box.remove();
      if (cancelled) return;
      const xa = Math.min(ev.clientX, x0), xb = Math.max(ev.clientX, x0);
      const ya = Math.min(ev.clientY, y0), yb = Math.max(ev.clientY, y0);
      const inside = [];
      for (let i = 0; i < view.n; i++) {
        const q = projectAtom(view, i);
        if (q && q.x >= xa && q.x <= xb && q.y >= ya && q.y <= yb) inside.push(i);
      }
      sendEdit(view, "select", { indices: inside, add: !!ev.shiftKey });
    },
  };
}

// ---------------------------------------------------------------- keyboard

export function bindEditKeys(view) {
  view.canvas.addEventListener("keydown", (e) => {
    if (!editable(view)) return;
    const ctrl = e.ctrlKey || e.metaKey;
    const key = e.key;
    let handled = true;
    if (ctrl && (key === "z" || key === "Z")) sendEdit(view, e.shiftKey ? "redo" : "undo");
    else if (ctrl && (key === "y" || key === "Y")) sendEdit(view, "redo");
    else if (ctrl && (key === "a" || key === "A")) sendEdit(view, "select", { everything: true });
    else if (key === "Delete" || key === "Backspace") {
      if (view.selected.length) sendEdit(view, "delete");
    } else if (key === "Escape") sendEdit(view, "select", { indices: [] });
    else if (key.startsWith("Arrow") || key === "PageUp" || key === "PageDown") {
      if (!view.selected.length) return;
      const step = e.shiftKey ? BIG_STEP_A : STEP_A;
      let d;
      if (key === "PageUp" || key === "PageDown") {
        const t = towardsViewer(view);
        const s = key === "PageUp" ? step : -step;
        d = [t[0] * s, t[1] * s, t[2] * s];
      } else {
        const depth = selectionDepth(view);
        const px = step / worldPerPixel(view, depth); // `step` Å in the view plane
        const dx = key === "ArrowRight" ? px : key === "ArrowLeft" ? -px : 0;
        const dy = key === "ArrowDown" ? px : key === "ArrowUp" ? -px : 0;
        d = screenToWorld(view, dx, dy, depth);
      }
      sendEdit(view, "move", { displacement: d.map((v) => Number(v.toFixed(6))) });
    } else handled = false;
    if (handled) e.preventDefault();
  });
}

// ---------------------------------------------------------------- the edit bar and messages

export function buildEditBar(view) {
  const bar = el("div", "nnpv-editbar", view.root);
  view.editBar = bar;
  const button = (text, title, op, args) => {
    const b = el("button", "nnpv-btn", bar, text);
    b.title = title;
    b.dataset.op = op;
    b.addEventListener("click", () => {
      if (typeof args === "function") args();
      else sendEdit(view, op, args || {});
      view.canvas.focus();
    });
    return b;
  };
  button("All", "Select all atoms (Ctrl+A)", "select", { everything: true });
  button("Invert", "Invert the selection", "select", { invert: true });
  view.elementSelect = el("select", "nnpv-element-select", bar);
  view.elementSelect.title = "Select every atom of an element";
  view.elementSelect.addEventListener("change", () => {
    if (view.elementSelect.value) sendEdit(view, "select", { element: view.elementSelect.value });
    view.elementSelect.value = "";
  });
  button("Top layer", "Select the top layer (z)", "select", { layer: -1 });
  button("Delete", "Delete the selection (Del)", "delete");
  button("Fix", "Hold the selection fixed (FixAtoms)", "fix");
  button("Unfix", "Release the selection", "unfix");
  button("Measure", "Distance (2 selected), angle (3) or dihedral (4)", "measure");
  button("⟲15°", "Rotate the selection 15° about the axis pointing out of the screen", "rotate", () =>
    sendEdit(view, "rotate", { angle: 15, axis: towardsViewer(view) }),
  );
  view.undoBtn = button("Undo", "Undo (Ctrl+Z)", "undo");
  view.redoBtn = button("Redo", "Redo (Ctrl+Y)", "redo");
  view.addInput = el("input", "nnpv-add-input", bar);
  view.addInput.placeholder = "CO, O, H2O, SMILES…";
  view.addInput.title = "What to add: an element, a molecule name or a SMILES";
  button("Add on picked", "Add it 2 Å above the last picked atom (e.g. a surface atom)", "add", () => {
    const species = view.addInput.value.trim();
    const on = view.lastPicked >= 0 ? view.lastPicked : view.selected[view.selected.length - 1];
    if (species && on !== undefined && on >= 0) sendEdit(view, "add", { species, on_atom: on, height: 2.0 });
  });
  view.relaxBtn = button("Relax", "Relax the structure shown, live in this view (fixed atoms held)", "relax", () =>
    sendEdit(view, view.model.get("running") ? "stop" : "relax"),
  );
  view.nebStartBtn = button("NEB start", "Keep this structure as the NEB initial state", "set_neb_start");
  view.nebEndBtn = button("NEB end", "Keep this structure as the NEB final state", "set_neb_end");
  view.nebBtn = button("NEB", "Run a climbing-image NEB between the two, live in this view", "neb");
  view.editOnly = [...bar.children];
  view.backBtn = button("Back to editing", "Leave the band / trajectory and edit the structure again", "resume_editing");
  view.editMsg = el("div", "nnpv-editmsg", view.stage);
  syncEditBar(view);
}

export function syncEditBar(view) {
  if (!view.editBar) return;
  const wanted = !!view.model.get("editable");
  const running = !!view.model.get("running");
  const live = wanted && view.mode === "live";
  view.editBar.style.display = wanted ? "flex" : "none";
  for (const b of view.editOnly) b.style.display = live ? "" : "none";
  if (running) view.relaxBtn.style.display = ""; // its Stop ends a relaxation or an NEB
  view.backBtn.style.display = wanted && !live && !running ? "" : "none";
  view.root.dataset.editable = editable(view) ? "1" : "";
  view.root.dataset.running = running ? "1" : "";
  for (const b of view.editOnly) if (b.tagName === "BUTTON") b.disabled = running;
  view.undoBtn.disabled = running || !view.model.get("can_undo");
  view.redoBtn.disabled = running || !view.model.get("can_redo");
  view.relaxBtn.disabled = false;
  view.relaxBtn.textContent = running ? "Stop" : "Relax";
  view.nebBtn.disabled = running || !(view.model.get("has_neb_start") && view.model.get("has_neb_end"));
  view.nebStartBtn.classList.toggle("nnpv-on", !!view.model.get("has_neb_start"));
  view.nebEndBtn.classList.toggle("nnpv-on", !!view.model.get("has_neb_end"));
  const symbols = [...new Set(view.symbols)].sort();
  const have = [...view.elementSelect.options].map((o) => o.value).join(",");
  if (have !== ["", ...symbols].join(",")) {
    view.elementSelect.textContent = "";
    const first = el("option", null, view.elementSelect, "element…");
    first.value = "";
    for (const s of symbols) el("option", null, view.elementSelect, s).value = s;
  }
  const msg = view.model.get("edit_message") || "";
  const meas = view.model.get("measurement") || "";
  view.editMsg.textContent = [meas, msg].filter(Boolean).join("\n");
  view.editMsg.classList.toggle("nnpv-warn", !!msg);
  view.root.dataset.measurement = meas;
  view.root.dataset.editMessage = msg;
}
