// Pointer input (orbit, pan, zoom), picking (CPU ray cast) and the selection read-out.
// Functions of the ViewerView (view.js); they read and write its camera, selected and
// lastPicked fields.

import { FOV_Y } from "./camera.js";
import { currentPositions } from "./trajectory.js";

export function bindInput(view) {
  const c = view.canvas;
  let drag = null;
  c.addEventListener("pointerdown", (e) => {
    c.setPointerCapture(e.pointerId);
    // An editable view may take the gesture (drag the selection, Alt-drag a selection box).
    const edit = view.beginEditDrag ? view.beginEditDrag(e) : null;
    drag = {
      edit,
      x: e.clientX,
      y: e.clientY,
      x0: e.clientX,
      y0: e.clientY,
      button: e.button,
      pan: e.button === 2 || e.button === 1 || e.shiftKey,
      moved: false,
    };
    view.dragging = true;
    c.classList.add("nnpv-dragging");
  });
  c.addEventListener("pointermove", (e) => {
    if (!drag) return;
    if (drag.edit) {
      drag.edit.move(e);
      return;
    }
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    drag.x = e.clientX;
    drag.y = e.clientY;
    if (!drag.moved && Math.hypot(e.clientX - drag.x0, e.clientY - drag.y0) > 4) drag.moved = true;
    if (!drag.moved) return;
    if (drag.pan) view.camera.pan(dx, dy, c.clientHeight);
    else view.camera.orbit(dx, dy);
    view.schedule();
  });
  const end = (e) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    view.dragging = false;
    c.classList.remove("nnpv-dragging");
    view.schedule(); // full-resolution redraw after the drag
    if (d.edit) {
      const moved = Math.hypot(e.clientX - d.x0, e.clientY - d.y0) > 4;
      d.edit.end(e, e.type !== "pointerup");
      if (moved || e.type !== "pointerup") return;
    }
    if (e.type === "pointerup" && !d.moved && d.button === 0) pickAt(view, e.clientX, e.clientY, e.shiftKey || e.ctrlKey || e.metaKey);
  };
  c.addEventListener("pointerup", end);
  c.addEventListener("pointercancel", end);
  c.addEventListener("contextmenu", (e) => e.preventDefault());
  c.addEventListener(
    "wheel",
    (e) => {
      e.preventDefault();
      const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
      view.camera.zoom(Math.exp(Math.max(-200, Math.min(200, e.deltaY * unit)) * 0.0015));
      view.schedule();
    },
    { passive: false },
  );
  view.resizeObserver = new ResizeObserver(() => view.schedule());
  view.resizeObserver.observe(view.stage);
}

/** Index of the atom under client point (x, y), or -1. CPU ray cast, O(N). */
export function atomAt(view, clientX, clientY) {
  const rect = view.canvas.getBoundingClientRect();
  if (!(rect.width > 0 && rect.height > 0) || view.n === 0) return -1;
  const ndcX = ((clientX - rect.left) / rect.width) * 2 - 1;
  const ndcY = 1 - ((clientY - rect.top) / rect.height) * 2;
  const { eye, dir } = view.camera.ray(ndcX, ndcY, rect.width / rect.height);
  const pos = currentPositions(view);
  let best = -1;
  let bestT = Infinity;
  for (let i = 0; i < view.n; i++) {
    const ox = pos[3 * i] - eye[0], oy = pos[3 * i + 1] - eye[1], oz = pos[3 * i + 2] - eye[2];
    const b = ox * dir[0] + oy * dir[1] + oz * dir[2];
    if (b <= 0) continue;
    const r = view.radius[i];
    const h = b * b - (ox * ox + oy * oy + oz * oz) + r * r;
    if (h < 0) continue;
    const t = b - Math.sqrt(h);
    if (t < bestT) {
      bestT = t;
      best = i;
    }
  }
  return best;
}

export function pickAt(view, clientX, clientY, additive) {
  const i = atomAt(view, clientX, clientY);
  let sel = view.selected.slice();
  if (i < 0) {
    if (!additive) sel = [];
  } else if (additive) {
    const k = sel.indexOf(i);
    if (k >= 0) sel.splice(k, 1);
    else sel.push(i);
  } else {
    sel = [i];
  }
  view.lastPicked = i;
  view.selected = sel;
  view.dirty.flags = true;
  updatePickText(view);
  view.model.set("selected", sel);
  view.model.save_changes();
  view.schedule();
}

export function readSelection(view) {
  const sel = view.model.get("selected") || [];
  view.selected = sel.filter((i) => Number.isInteger(i) && i >= 0 && i < view.n);
  view.dirty.flags = true;
  updatePickText(view);
}

export function updatePickText(view) {
  const sel = view.selected;
  if (!sel.length) {
    view.pickEl.textContent = "";
    view.root.dataset.picked = "";
    return;
  }
  const last = sel.includes(view.lastPicked) ? view.lastPicked : sel[sel.length - 1];
  const p = currentPositions(view);
  let txt = `#${last} ${view.symbols[last] || "?"}`;
  if (p.length >= 3 * (last + 1)) {
    txt += `  (${p[3 * last].toFixed(3)}, ${p[3 * last + 1].toFixed(3)}, ${p[3 * last + 2].toFixed(3)}) Å`;
  }
  if (sel.length > 1) txt += `   [${sel.length} selected]`;
  view.pickEl.textContent = txt;
  view.root.dataset.picked = String(last);
}

/** Client (CSS pixel) coordinates of atom i's centre, for tests. */
export function projectAtom(view, i) {
  const rect = view.canvas.getBoundingClientRect();
  const p = currentPositions(view);
  if (!(i >= 0 && i < view.n)) return null;
  const v = view.camera.toView([p[3 * i], p[3 * i + 1], p[3 * i + 2]]);
  const f = 1 / Math.tan(FOV_Y / 2);
  const aspect = rect.width / rect.height;
  const x = (f / aspect) * v[0] / -v[2];
  const y = (f * v[1]) / -v[2];
  return { x: rect.left + ((x + 1) / 2) * rect.width, y: rect.top + ((1 - y) / 2) * rect.height };
}
