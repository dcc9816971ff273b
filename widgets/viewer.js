// Generated from widgets/src/ by esbuild: do not edit. Rebuild with make viewer (npm ci --prefix widgets && npm run build --prefix widgets).

// src/bonds.js
var BondFinder = class {
  constructor() {
    this.pairs = new Uint32Array(1024);
    this.counts = new Int32Array(0);
    this.order = new Int32Array(0);
    this.cellOf = new Int32Array(0);
  }
  /**
   * Find pairs i < j with 0.05 Å < |r_i - r_j| < rcov_i + rcov_j + tol (tol in Å, like Jmol).
   * Returns the number of pairs; they are in this.pairs[0 .. 2 * count).
   */
  find(pos, n, rcov, tol) {
    if (n < 2 || !(tol >= 0)) return 0;
    let maxR = 0;
    for (let i = 0; i < n; i++) if (rcov[i] > maxR) maxR = rcov[i];
    const cutMax = 2 * maxR + tol;
    if (!(cutMax > 0)) return 0;
    let x0 = Infinity, y0 = Infinity, z0 = Infinity, x1 = -Infinity, y1 = -Infinity, z1 = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = pos[3 * i], y = pos[3 * i + 1], z = pos[3 * i + 2];
      if (!(Number.isFinite(x) && Number.isFinite(y) && Number.isFinite(z))) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      if (z < z0) z0 = z;
      if (z > z1) z1 = z;
    }
    if (!(x1 >= x0)) return 0;
    let h = cutMax;
    let nx, ny, nz;
    for (; ; ) {
      nx = Math.floor((x1 - x0) / h) + 1;
      ny = Math.floor((y1 - y0) / h) + 1;
      nz = Math.floor((z1 - z0) / h) + 1;
      if (nx * ny * nz <= 4 * n + 64) break;
      h *= 1.5;
    }
    const ncell = nx * ny * nz;
    if (this.counts.length < ncell + 1) this.counts = new Int32Array(ncell + 1);
    if (this.order.length < n) {
      this.order = new Int32Array(n);
      this.cellOf = new Int32Array(n);
    }
    const counts = this.counts;
    const order = this.order;
    const cellOf = this.cellOf;
    counts.fill(0, 0, ncell + 1);
    const inv = 1 / h;
    for (let i = 0; i < n; i++) {
      const x = pos[3 * i], y = pos[3 * i + 1], z = pos[3 * i + 2];
      if (!(Number.isFinite(x) && Number.isFinite(y) && Number.isFinite(z))) {
        cellOf[i] = -1;
        continue;
      }
      const c = Math.floor((x - x0) * inv) + nx * (Math.floor((y - y0) * inv) + ny * Math.floor((z - z0) * inv));
      cellOf[i] = c;
      counts[c + 1]++;
    }
    for (let c = 0; c < ncell; c++) counts[c + 1] += counts[c];
    for (let i = 0; i < n; i++) {
      const c = cellOf[i];
      if (c >= 0) order[counts[c]++] = i;
    }
    for (let c = ncell; c > 0; c--) counts[c] = counts[c - 1];
    counts[0] = 0;
    let pairs = this.pairs;
    let np = 0;
    for (let i = 0; i < n; i++) {
      const c = cellOf[i];
      if (c < 0) continue;
      const ix = c % nx;
      const iy = Math.floor(c / nx) % ny;
      const iz = Math.floor(c / (nx * ny));
      const xi = pos[3 * i], yi = pos[3 * i + 1], zi = pos[3 * i + 2];
      const ri = rcov[i];
      for (let dz = -1; dz <= 1; dz++) {
        const kz = iz + dz;
        if (kz < 0 || kz >= nz) continue;
        for (let dy = -1; dy <= 1; dy++) {
          const ky = iy + dy;
          if (ky < 0 || ky >= ny) continue;
          for (let dx = -1; dx <= 1; dx++) {
            const kx = ix + dx;
            if (kx < 0 || kx >= nx) continue;
            const cc = kx + nx * (ky + ny * kz);
            for (let q = counts[cc], qe = counts[cc + 1]; q < qe; q++) {
              const j = order[q];
              if (j <= i) continue;
              const ddx = pos[3 * j] - xi, ddy = pos[3 * j + 1] - yi, ddz = pos[3 * j + 2] - zi;
              const d2 = ddx * ddx + ddy * ddy + ddz * ddz;
              const cut = ri + rcov[j] + tol;
              if (d2 < cut * cut && d2 > 25e-4) {
                if (2 * np + 2 > pairs.length) {
                  const bigger = new Uint32Array(pairs.length * 2);
                  bigger.set(pairs);
                  pairs = this.pairs = bigger;
                }
                pairs[2 * np] = i;
                pairs[2 * np + 1] = j;
                np++;
              }
            }
          }
        }
      }
    }
    return np;
  }
};

// src/camera.js
var FOV_Y = 22 * Math.PI / 180;
var DEFAULT_VIEW = (() => {
  const a = -25 * Math.PI / 180;
  const b = -60 * Math.PI / 180;
  const ca = Math.cos(a), sa = Math.sin(a), cb = Math.cos(b), sb = Math.sin(b);
  return [ca, -sa, 0, cb * sa, cb * ca, -sb, sb * sa, sb * ca, cb];
})();
var Camera = class {
  constructor() {
    this.R = [1, 0, 0, 0, 1, 0, 0, 0, 1];
    this.target = [0, 0, 0];
    this.dist = 20;
  }
  rotate(axis, angle) {
    const [x, y, z] = axis;
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    const t = 1 - c;
    const Q = [
      t * x * x + c,
      t * x * y - s * z,
      t * x * z + s * y,
      t * x * y + s * z,
      t * y * y + c,
      t * y * z - s * x,
      t * x * z - s * y,
      t * y * z + s * x,
      t * z * z + c
    ];
    const R = this.R;
    const out = new Array(9);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        out[3 * i + j] = Q[3 * i] * R[j] + Q[3 * i + 1] * R[3 + j] + Q[3 * i + 2] * R[6 + j];
      }
    }
    this.R = orthonormalize(out);
  }
  orbit(dx, dy) {
    if (dx) this.rotate([0, 1, 0], dx * 8e-3);
    if (dy) this.rotate([1, 0, 0], dy * 8e-3);
  }
  pan(dx, dy, heightPx) {
    const wpp = 2 * this.dist * Math.tan(FOV_Y / 2) / Math.max(1, heightPx);
    const v = [-dx * wpp, dy * wpp, 0];
    const R = this.R;
    for (let j = 0; j < 3; j++) this.target[j] += R[j] * v[0] + R[3 + j] * v[1] + R[6 + j] * v[2];
  }
  zoom(factor) {
    this.dist = Math.min(1e5, Math.max(0.3, this.dist * factor));
  }
  /**
   * Look at `center` with rotation `R0` from just far enough to see every point (x, y, z, pad) of
   * `pts`. With (x, y, z) = R0 (p - center), a point is visible in the perspective frustum when
   * |x| + pad <= tan(fovX / 2) * (dist - z - pad), and the same for y.
   */
  fit(center, pts, aspect, R0 = DEFAULT_VIEW) {
    this.R = R0.slice();
    this.target = center.slice();
    const R = this.R;
    const ty = Math.tan(FOV_Y / 2);
    const tx = ty * aspect;
    let dist = 1;
    for (let k = 0; k < pts.length; k += 4) {
      const px = pts[k] - center[0], py = pts[k + 1] - center[1], pz = pts[k + 2] - center[2];
      const pad = pts[k + 3];
      const x = Math.abs(R[0] * px + R[1] * py + R[2] * pz) + pad;
      const y = Math.abs(R[3] * px + R[4] * py + R[5] * pz) + pad;
      const z = R[6] * px + R[7] * py + R[8] * pz + pad;
      if (!(Number.isFinite(x) && Number.isFinite(y) && Number.isFinite(z))) continue;
      dist = Math.max(dist, z + x / tx, z + y / ty);
    }
    this.dist = dist * 1.06;
  }
  /** World point -> view space. */
  toView(p) {
    const R = this.R;
    const x = p[0] - this.target[0];
    const y = p[1] - this.target[1];
    const z = p[2] - this.target[2];
    return [
      R[0] * x + R[1] * y + R[2] * z,
      R[3] * x + R[4] * y + R[5] * z,
      R[6] * x + R[7] * y + R[8] * z - this.dist
    ];
  }
  /** Column-major 4x4 view matrix. */
  viewMatrix() {
    const R = this.R;
    const T = this.target;
    const tx = -(R[0] * T[0] + R[1] * T[1] + R[2] * T[2]);
    const ty = -(R[3] * T[0] + R[4] * T[1] + R[5] * T[2]);
    const tz = -(R[6] * T[0] + R[7] * T[1] + R[8] * T[2]) - this.dist;
    return new Float32Array([
      R[0],
      R[3],
      R[6],
      0,
      R[1],
      R[4],
      R[7],
      0,
      R[2],
      R[5],
      R[8],
      0,
      tx,
      ty,
      tz,
      1
    ]);
  }
  /** Eye position and the world direction of the ray through normalised device coords (x, y). */
  ray(ndcX, ndcY, aspect) {
    const R = this.R;
    const th = Math.tan(FOV_Y / 2);
    const dv = [ndcX * th * aspect, ndcY * th, -1];
    const eyeV = [0, 0, this.dist];
    const dir = [0, 0, 0];
    const eye = this.target.slice();
    for (let j = 0; j < 3; j++) {
      dir[j] = R[j] * dv[0] + R[3 + j] * dv[1] + R[6 + j] * dv[2];
      eye[j] += R[6 + j] * eyeV[2];
    }
    const l = Math.hypot(dir[0], dir[1], dir[2]);
    return { eye, dir: [dir[0] / l, dir[1] / l, dir[2] / l] };
  }
};
function orthonormalize(R) {
  const a = [R[0], R[1], R[2]];
  let la = Math.hypot(...a);
  a[0] /= la;
  a[1] /= la;
  a[2] /= la;
  const b = [R[3], R[4], R[5]];
  const d = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  b[0] -= d * a[0];
  b[1] -= d * a[1];
  b[2] -= d * a[2];
  la = Math.hypot(...b);
  b[0] /= la;
  b[1] /= la;
  b[2] /= la;
  const c = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  return [a[0], a[1], a[2], b[0], b[1], b[2], c[0], c[1], c[2]];
}
function perspective(aspect, near, far) {
  const f = 1 / Math.tan(FOV_Y / 2);
  const nf = 1 / (near - far);
  return new Float32Array([
    f / aspect,
    0,
    0,
    0,
    0,
    f,
    0,
    0,
    0,
    0,
    (far + near) * nf,
    -1,
    0,
    0,
    2 * far * near * nf,
    0
  ]);
}

// src/util.js
var TAG = "[nnp_lab viewer]";
var TEX_W = 2048;
function asFloat32(v) {
  if (v == null) return new Float32Array(0);
  let buf;
  let off = 0;
  let len;
  if (v instanceof ArrayBuffer) {
    buf = v;
    len = v.byteLength;
  } else if (ArrayBuffer.isView(v)) {
    buf = v.buffer;
    off = v.byteOffset;
    len = v.byteLength;
  } else {
    return new Float32Array(0);
  }
  const n = len >> 2;
  if (off % 4 === 0) return new Float32Array(buf, off, n);
  return new Float32Array(buf.slice(off, off + 4 * n));
}
function asUint8(v) {
  if (v == null) return new Uint8Array(0);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return new Uint8Array(0);
}
function parseColor(s) {
  const m = /^#?([0-9a-f]{6})$/i.exec(String(s || "").trim());
  if (!m) return [1, 1, 1];
  const x = parseInt(m[1], 16);
  return [(x >> 16 & 255) / 255, (x >> 8 & 255) / 255, (x & 255) / 255];
}
function el(tag, cls, parent, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

// src/trajectory.js
var FRAME_SYNC_MS = 250;
function readTrajectory(view) {
  const m = view.model;
  view.mode = m.get("_mode") || "live";
  view.nFrames = m.get("_traj_n_frames") | 0;
  view.trajPos = asFloat32(m.get("_traj_positions"));
  view.trajCells = asFloat32(m.get("_traj_cells"));
  view.trajLabels = m.get("_traj_labels") || [];
  if (view.mode !== "live" && (view.nFrames < 1 || view.trajPos.length < view.nFrames * view.n * 3)) {
    view.mode = "live";
  }
  view.frame = Math.min(Math.max(m.get("frame_index") | 0, 0), Math.max(view.nFrames - 1, 0));
  view.playing = view.mode !== "live" && !!m.get("playing");
  view.dirty.pos = view.dirty.cell = view.dirty.ghosts = true;
}
function currentPositions(view) {
  if (view.mode !== "live") {
    const k = view.n * 3;
    return view.trajPos.subarray(view.frame * k, (view.frame + 1) * k);
  }
  return view.livePos;
}
function currentCell(view) {
  if (view.mode !== "live" && view.trajCells.length >= 9 * (view.frame + 1)) {
    return view.trajCells.subarray(9 * view.frame, 9 * view.frame + 9);
  }
  return view.liveCell;
}
function currentLabel(view) {
  if (view.mode !== "live") {
    const l = view.trajLabels[view.frame];
    return l != null ? String(l) : `frame ${view.frame}`;
  }
  return String(view.model.get("label") || "");
}
function syncPlayerUi(view) {
  const show = view.mode !== "live";
  view.player.style.display = show ? "flex" : "none";
  if (!show) return;
  view.slider.max = String(Math.max(view.nFrames - 1, 0));
  view.slider.value = String(view.frame);
  view.frameText.textContent = `${view.frame} / ${Math.max(view.nFrames - 1, 0)}`;
  view.playBtn.textContent = view.playing ? "\u23F8" : "\u25B6";
  const fps = Number(view.model.get("play_fps")) || 10;
  let best = view.speed.options[0];
  for (const o of view.speed.options) {
    if (Math.abs(Number(o.value) - fps) < Math.abs(Number(best.value) - fps)) best = o;
  }
  view.speed.value = best.value;
  view.overlayLabel.style.display = view.mode === "band" ? "" : "none";
  view.overlayBox.checked = !!view.model.get("overlay");
  view.root.dataset.frameIndex = String(view.frame);
}
function setFrame(view, f, fromUi) {
  if (view.mode === "live") return;
  f = Math.min(Math.max(f | 0, 0), view.nFrames - 1);
  if (f === view.frame && !fromUi) return;
  view.frame = f;
  view.dirty.pos = view.dirty.cell = true;
  syncPlayerUi(view);
  if (fromUi) syncFrameIndex(view, true);
  view.schedule();
}
function syncFrameIndex(view, force) {
  const now = performance.now();
  if (!force && now - view.lastFrameSync < FRAME_SYNC_MS) return;
  view.lastFrameSync = now;
  if ((view.model.get("frame_index") | 0) !== view.frame) {
    view.model.set("frame_index", view.frame);
    view.model.save_changes();
  }
}
function setPlaying(view, on, fromUi) {
  on = on && view.mode !== "live" && view.nFrames > 1;
  if (on === view.playing && !fromUi) return;
  view.playing = on;
  view.lastStep = performance.now();
  if (fromUi && !!view.model.get("playing") !== on) {
    view.model.set("playing", on);
    view.model.save_changes();
  }
  if (!on) syncFrameIndex(view, true);
  syncPlayerUi(view);
  view.schedule();
}
function stepPlayer(view, now) {
  const fps = Math.max(0.1, Number(view.model.get("play_fps")) || 10);
  const dt = 1e3 / fps;
  if (now - view.lastStep < dt) return false;
  const steps = Math.min(Math.floor((now - view.lastStep) / dt), view.nFrames);
  if (steps < 1) return false;
  view.lastStep += steps * dt;
  if (now - view.lastStep > dt) view.lastStep = now;
  let f = view.frame;
  for (let s = 0; s < steps; s++) {
    if (view.mode === "band") {
      if (f + view.bounce < 0 || f + view.bounce >= view.nFrames) view.bounce = -view.bounce;
      f += view.bounce;
    } else {
      f = (f + 1) % view.nFrames;
    }
  }
  const changed = f !== view.frame;
  view.frame = f;
  view.dirty.pos = view.dirty.cell = true;
  syncPlayerUi(view);
  syncFrameIndex(view, false);
  return changed;
}

// src/interaction.js
function bindInput(view) {
  const c = view.canvas;
  let drag = null;
  c.addEventListener("pointerdown", (e) => {
    c.setPointerCapture(e.pointerId);
    const edit = view.beginEditDrag ? view.beginEditDrag(e) : null;
    drag = {
      edit,
      x: e.clientX,
      y: e.clientY,
      x0: e.clientX,
      y0: e.clientY,
      button: e.button,
      pan: e.button === 2 || e.button === 1 || e.shiftKey,
      moved: false
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
    view.schedule();
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
      view.camera.zoom(Math.exp(Math.max(-200, Math.min(200, e.deltaY * unit)) * 15e-4));
      view.schedule();
    },
    { passive: false }
  );
  view.resizeObserver = new ResizeObserver(() => view.schedule());
  view.resizeObserver.observe(view.stage);
}
function atomAt(view, clientX, clientY) {
  const rect = view.canvas.getBoundingClientRect();
  if (!(rect.width > 0 && rect.height > 0) || view.n === 0) return -1;
  const ndcX = (clientX - rect.left) / rect.width * 2 - 1;
  const ndcY = 1 - (clientY - rect.top) / rect.height * 2;
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
function pickAt(view, clientX, clientY, additive) {
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
function readSelection(view) {
  const sel = view.model.get("selected") || [];
  view.selected = sel.filter((i) => Number.isInteger(i) && i >= 0 && i < view.n);
  view.dirty.flags = true;
  updatePickText(view);
}
function updatePickText(view) {
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
    txt += `  (${p[3 * last].toFixed(3)}, ${p[3 * last + 1].toFixed(3)}, ${p[3 * last + 2].toFixed(3)}) \xC5`;
  }
  if (sel.length > 1) txt += `   [${sel.length} selected]`;
  view.pickEl.textContent = txt;
  view.root.dataset.picked = String(last);
}
function projectAtom(view, i) {
  const rect = view.canvas.getBoundingClientRect();
  const p = currentPositions(view);
  if (!(i >= 0 && i < view.n)) return null;
  const v = view.camera.toView([p[3 * i], p[3 * i + 1], p[3 * i + 2]]);
  const f = 1 / Math.tan(FOV_Y / 2);
  const aspect = rect.width / rect.height;
  const x = f / aspect * v[0] / -v[2];
  const y = f * v[1] / -v[2];
  return { x: rect.left + (x + 1) / 2 * rect.width, y: rect.top + (1 - y) / 2 * rect.height };
}

// src/controls.js
function buildDom(view) {
  const root = el("div", "nnpv-root", view.host);
  view.root = root;
  root.dataset.framesDrawn = "0";
  view.stage = el("div", "nnpv-stage", root);
  view.stage.style.height = `${view.model.get("height") || 480}px`;
  view.canvas = el("canvas", "nnpv-canvas", view.stage);
  view.canvas.setAttribute("tabindex", "0");
  view.labelEl = el("div", "nnpv-label", view.stage);
  view.pickEl = el("div", "nnpv-pick", view.stage);
  view.errorEl = el("div", "nnpv-error", view.stage);
  const tools = el("div", "nnpv-tools", view.stage);
  const reset = el("button", "nnpv-btn nnpv-reset", tools, "\u27F2");
  reset.title = "Reset view";
  reset.addEventListener("click", () => view.resetView());
  const png = el("button", "nnpv-btn nnpv-png", tools, "PNG");
  png.title = "Download a PNG of the view";
  png.addEventListener("click", () => view.downloadPng());
  view.axes = buildAxes(view.stage);
  const player = el("div", "nnpv-player", root);
  view.player = player;
  view.playBtn = el("button", "nnpv-btn nnpv-play", player, "\u25B6");
  view.playBtn.title = "Play / pause";
  view.playBtn.addEventListener("click", () => setPlaying(view, !view.playing, true));
  view.slider = el("input", "nnpv-slider", player);
  view.slider.type = "range";
  view.slider.min = "0";
  view.slider.step = "1";
  view.slider.addEventListener("input", () => {
    const f = Number(view.slider.value);
    if (view.playing) setPlaying(view, false, true);
    setFrame(view, f, true);
  });
  view.frameText = el("span", "nnpv-frame", player, "");
  const speedLabel = el("label", "nnpv-speed", player, "fps ");
  view.speed = el("select", "nnpv-speed-select", speedLabel);
  for (const f of [1, 2, 5, 10, 20, 30, 60]) {
    const o = el("option", null, view.speed, String(f));
    o.value = String(f);
  }
  view.speed.addEventListener("change", () => {
    view.model.set("play_fps", Number(view.speed.value));
    view.model.save_changes();
  });
  const ov = el("label", "nnpv-overlay", player);
  view.overlayBox = el("input", null, ov);
  view.overlayBox.type = "checkbox";
  el("span", null, ov, " overlay all images");
  view.overlayLabel = ov;
  view.overlayBox.addEventListener("change", () => {
    view.model.set("overlay", view.overlayBox.checked);
    view.model.save_changes();
    view.dirty.ghosts = true;
    view.schedule();
  });
  root.nnpViewer = {
    project: (i) => projectAtom(view, i),
    selection: () => view.selected.slice(),
    stats: () => ({
      framesDrawn: view.framesDrawn,
      nAtoms: view.n,
      nBonds: view.renderer ? view.renderer.nPairs : 0,
      frame: view.frame,
      mode: view.mode,
      // Cumulative main-thread milliseconds: all of drawNow, and the bond search within it.
      cpuMs: view.perf.cpu,
      bondMs: view.perf.bonds,
      bondSearches: view.perf.searches,
      renderScale: view.dynScale,
      frameSeq: view.model.get("frame_seq") | 0,
      motionLod: view.motionLod
    })
  };
}
function buildAxes(parent) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "nnpv-axes");
  svg.setAttribute("width", "56");
  svg.setAttribute("height", "56");
  svg.setAttribute("viewBox", "-28 -28 56 56");
  parent.appendChild(svg);
  const colors = ["#d62728", "#2ca02c", "#1f77b4"];
  const items = ["x", "y", "z"].map((name, k) => {
    const line = document.createElementNS(NS, "line");
    line.setAttribute("x1", "0");
    line.setAttribute("y1", "0");
    line.setAttribute("stroke", colors[k]);
    line.setAttribute("stroke-width", "2");
    svg.appendChild(line);
    const text = document.createElementNS(NS, "text");
    text.textContent = name;
    text.setAttribute("fill", colors[k]);
    text.setAttribute("font-size", "10");
    text.setAttribute("text-anchor", "middle");
    text.setAttribute("dominant-baseline", "central");
    svg.appendChild(text);
    return { line, text };
  });
  return items;
}
function updateAxes(view) {
  const R = view.camera.R;
  for (let k = 0; k < 3; k++) {
    const x = R[k] * 17;
    const y = -R[3 + k] * 17;
    const { line, text } = view.axes[k];
    line.setAttribute("x2", x.toFixed(1));
    line.setAttribute("y2", y.toFixed(1));
    text.setAttribute("x", (x * 1.38).toFixed(1));
    text.setAttribute("y", (y * 1.38).toFixed(1));
  }
}
function showError(view, msg) {
  view.errorEl.textContent = msg;
  view.errorEl.style.display = "block";
}

// src/editing.js
var STEP_A = 0.1;
var BIG_STEP_A = 0.5;
function editable(view) {
  return !!view.model.get("editable") && view.mode === "live" && !view.model.get("running");
}
function sendEdit(view, op, args = {}) {
  view.model.send({ type: "edit", op, ...args });
}
function worldPerPixel(view, depth) {
  return 2 * Math.max(depth, 1e-3) * Math.tan(FOV_Y / 2) / Math.max(1, view.canvas.clientHeight);
}
function screenToWorld(view, dx, dy, depth) {
  const wpp = worldPerPixel(view, depth);
  const vx = dx * wpp;
  const vy = -dy * wpp;
  const R = view.camera.R;
  return [R[0] * vx + R[3] * vy, R[1] * vx + R[4] * vy, R[2] * vx + R[5] * vy];
}
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
function beginEditDrag(view, e) {
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
    }
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
    }
  };
}
function bindEditKeys(view) {
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
        const px = step / worldPerPixel(view, depth);
        const dx = key === "ArrowRight" ? px : key === "ArrowLeft" ? -px : 0;
        const dy = key === "ArrowDown" ? px : key === "ArrowUp" ? -px : 0;
        d = screenToWorld(view, dx, dy, depth);
      }
      sendEdit(view, "move", { displacement: d.map((v) => Number(v.toFixed(6))) });
    } else handled = false;
    if (handled) e.preventDefault();
  });
}
function buildEditBar(view) {
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
  button(
    "\u27F215\xB0",
    "Rotate the selection 15\xB0 about the axis pointing out of the screen",
    "rotate",
    () => sendEdit(view, "rotate", { angle: 15, axis: towardsViewer(view) })
  );
  view.undoBtn = button("Undo", "Undo (Ctrl+Z)", "undo");
  view.redoBtn = button("Redo", "Redo (Ctrl+Y)", "redo");
  view.addInput = el("input", "nnpv-add-input", bar);
  view.addInput.placeholder = "CO, O, H2O, SMILES\u2026";
  view.addInput.title = "What to add: an element, a molecule name or a SMILES";
  button("Add on picked", "Add it 2 \xC5 above the last picked atom (e.g. a surface atom)", "add", () => {
    const species = view.addInput.value.trim();
    const on = view.lastPicked >= 0 ? view.lastPicked : view.selected[view.selected.length - 1];
    if (species && on !== void 0 && on >= 0) sendEdit(view, "add", { species, on_atom: on, height: 2 });
  });
  view.relaxBtn = button(
    "Relax",
    "Relax the structure shown, live in this view (fixed atoms held)",
    "relax",
    () => sendEdit(view, view.model.get("running") ? "stop" : "relax")
  );
  view.nebStartBtn = button("NEB start", "Keep this structure as the NEB initial state", "set_neb_start");
  view.nebEndBtn = button("NEB end", "Keep this structure as the NEB final state", "set_neb_end");
  view.nebBtn = button("NEB", "Run a climbing-image NEB between the two, live in this view", "neb");
  view.editOnly = [...bar.children];
  view.backBtn = button("Back to editing", "Leave the band / trajectory and edit the structure again", "resume_editing");
  view.editMsg = el("div", "nnpv-editmsg", view.stage);
  syncEditBar(view);
}
function syncEditBar(view) {
  if (!view.editBar) return;
  const wanted = !!view.model.get("editable");
  const running = !!view.model.get("running");
  const live = wanted && view.mode === "live";
  view.editBar.style.display = wanted ? "flex" : "none";
  for (const b of view.editOnly) b.style.display = live ? "" : "none";
  if (running) view.relaxBtn.style.display = "";
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
    const first = el("option", null, view.elementSelect, "element\u2026");
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

// src/shaders.js
var SHAFT_RADIUS = 0.055;
var HEAD_RADIUS = 0.14;
var HEADER = `#version 300 es
precision highp float;
precision highp int;
precision highp sampler2D;
ivec2 texel(int k) { return ivec2(k & 2047, k >> 11); }
// Quads are drawn without instancing (SwiftShader runs instanced draws one instance at a time):
// vertex 4q + c is corner c of quad q, and a shared index buffer makes two triangles of it.
vec2 quadCorner(int vid) { return vec2((vid & 1) == 1 ? 1.0 : -1.0, (vid & 2) == 2 ? 1.0 : -1.0); }
`;
var SHADE = `
vec3 shade(vec3 base, vec3 n, vec3 v) {
  vec3 L = normalize(vec3(0.35, 0.55, 1.0));
  float diff = max(dot(n, L), 0.0);
  vec3 H = normalize(L + v);
  float spec = pow(max(dot(n, H), 0.0), 60.0);
  float amb = 0.32 + 0.12 * n.y;
  vec3 c = base * (amb + 0.68 * diff) + vec3(0.28) * spec;
  float rim = 1.0 - max(dot(n, v), 0.0);
  return c * (1.0 - 0.30 * rim * rim * rim);
}
`;
var SPHERE_VS = `${HEADER}
uniform sampler2D uPos;
uniform sampler2D uStyle;
uniform sampler2D uFlags;
uniform int uN;
uniform mat4 uView;
uniform mat4 uProj;
out vec3 vPos;
flat out vec3 vCenter;
flat out float vRadius;
flat out vec3 vColor;
flat out float vSel;
void main() {
  int k = gl_VertexID >> 2;
  vec2 corner = quadCorner(gl_VertexID);
  int a = k % uN;
  vec3 c = (uView * vec4(texelFetch(uPos, texel(k), 0).xyz, 1.0)).xyz;
  vec4 st = texelFetch(uStyle, texel(a), 0);
  float r = st.w;
  float d2 = dot(c, c);
  vCenter = c;
  vRadius = r;
  vColor = st.rgb;
  vSel = texelFetch(uFlags, texel(a), 0).r;
  if (!(r > 0.0) || d2 <= r * r * 1.0001) {
    vPos = c;
    gl_Position = vec4(2.0, 2.0, 2.0, 1.0);
    return;
  }
  vec3 w = -c / sqrt(d2);
  vec3 up = abs(w.y) < 0.99 ? vec3(0.0, 1.0, 0.0) : vec3(1.0, 0.0, 0.0);
  vec3 u = normalize(cross(up, w));
  vec3 v = cross(w, u);
  float s = r * sqrt(d2 / (d2 - r * r)) * 1.04;
  vec3 p = c + (u * corner.x + v * corner.y) * s;
  vPos = p;
  gl_Position = uProj * vec4(p, 1.0);
}
`;
var SPHERE_FS = `${HEADER}
in vec3 vPos;
flat in vec3 vCenter;
flat in float vRadius;
flat in vec3 vColor;
flat in float vSel;
uniform mat4 uProj;
uniform float uAlpha;
uniform float uSelectOn;
out vec4 outColor;
${SHADE}
void main() {
  vec3 dir = normalize(vPos);
  float b = dot(dir, vCenter);
  float h = b * b - dot(vCenter, vCenter) + vRadius * vRadius;
  if (h < 0.0) discard;
  float t = b - sqrt(h);
  vec3 p = dir * t;
  vec3 n = (p - vCenter) / vRadius;
  vec4 clip = uProj * vec4(p, 1.0);
  gl_FragDepth = clamp(clip.z / clip.w * 0.5 + 0.5, 0.0, 1.0);
  vec3 col = shade(vColor, n, -dir);
  // flags: 100/255 fixed (hatched), 200/255 selected (cyan rim)
  bool fixedAtom = (vSel > 0.3 && vSel < 0.5) || vSel > 0.95;
  if (fixedAtom && mod(gl_FragCoord.x + gl_FragCoord.y, 7.0) < 2.5) col *= 0.45;
  if (uSelectOn > 0.5 && vSel > 0.7) {
    float rim = 1.0 - max(dot(n, -dir), 0.0);
    col = mix(col, vec3(0.1, 0.8, 1.0), 0.35 + 0.6 * smoothstep(0.3, 0.75, rim));
  }
  outColor = vec4(col, uAlpha);
}
`;
var FRUSTUM_VS = `${HEADER}
uniform sampler2D uPos;
uniform sampler2D uStyle;
uniform sampler2D uForce;
uniform int uMode; // 1 arrow shafts (cylinders), 2 arrow heads (cones); one per atom
uniform float uForceScale;
uniform vec3 uArrowColor;
uniform mat4 uView;
uniform mat4 uProj;
out vec3 vPos;
flat out vec3 vA;
flat out vec3 vU;
flat out float vL;
flat out vec3 vR;
flat out vec3 vColA;
flat out vec3 vColB;
void hide() { vPos = vec3(0.0, 0.0, -1.0); gl_Position = vec4(2.0, 2.0, 2.0, 1.0); }
void main() {
  int q = gl_VertexID >> 2;
  vec2 corner = quadCorner(gl_VertexID);
  vec3 A; vec3 B; vec3 R; vec3 ca; vec3 cb;
  {
    int i = q;
    vec3 p = texelFetch(uPos, texel(i), 0).xyz;
    vec3 f = texelFetch(uForce, texel(i), 0).xyz * uForceScale;
    float len = length(f);
    if (!(len > 0.02)) { hide(); return; }
    vec3 u = f / len;
    float ra = texelFetch(uStyle, texel(i), 0).w;
    float head = min(0.4 * len, 0.45);
    vec3 start = p + u * ra * 0.85;
    vec3 tip = start + f;
    vec3 base = tip - u * head;
    if (uMode == 1) { A = start; B = base; R = vec3(${SHAFT_RADIUS}, ${SHAFT_RADIUS}, 0.0); }
    else { A = base; B = tip; R = vec3(${HEAD_RADIUS}, 0.0, 1.0); }
    ca = uArrowColor;
    cb = uArrowColor;
  }
  vec3 a = (uView * vec4(A, 1.0)).xyz;
  vec3 b = (uView * vec4(B, 1.0)).xyz;
  vec3 ax = b - a;
  float L = length(ax);
  if (!(L > 1e-5)) { hide(); return; }
  vec3 U = ax / L;
  vec3 side = cross(U, normalize(0.5 * (a + b)));
  float sl = length(side);
  if (sl < 1e-4) {
    side = normalize(cross(U, abs(U.y) < 0.9 ? vec3(0.0, 1.0, 0.0) : vec3(1.0, 0.0, 0.0)));
  } else {
    side /= sl;
  }
  float rmax = max(R.x, R.y);
  float along = 0.5 * (corner.y + 1.0);
  vec3 p = mix(a - U * rmax, b + U * rmax, along) + side * (corner.x * rmax * 1.3);
  vPos = p;
  vA = a;
  vU = U;
  vL = L;
  vR = R;
  vColA = ca;
  vColB = cb;
  gl_Position = uProj * vec4(p, 1.0);
}
`;
var FRUSTUM_FS = `${HEADER}
in vec3 vPos;
flat in vec3 vA;
flat in vec3 vU;
flat in float vL;
flat in vec3 vR;
flat in vec3 vColA;
flat in vec3 vColB;
uniform mat4 uProj;
uniform float uAlpha;
out vec4 outColor;
${SHADE}
void main() {
  vec3 D = normalize(vPos);
  vec3 o = -vA;
  float r0 = vR.x;
  float r1 = vR.y;
  float m = (r1 - r0) / vL;
  float sd = dot(D, vU);
  float so = dot(o, vU);
  float rs = r0 + m * so;
  float qa = 1.0 - sd * sd - m * m * sd * sd;
  float qb = dot(o, D) - so * sd - m * sd * rs;
  float qc = dot(o, o) - so * so - rs * rs;
  float t = -1.0;
  vec3 n = vec3(0.0, 0.0, 1.0);
  float disc = qb * qb - qa * qc;
  if (disc >= 0.0 && abs(qa) > 1e-9) {
    float sq = sqrt(disc);
    float t1 = (-qb - sq) / qa;
    float t2 = (-qb + sq) / qa;
    float ta = min(t1, t2);
    float tb = max(t1, t2);
    float s = so + ta * sd;
    if (ta > 0.0 && s >= 0.0 && s <= vL && r0 + m * s >= 0.0) {
      t = ta;
    } else {
      s = so + tb * sd;
      if (tb > 0.0 && s >= 0.0 && s <= vL && r0 + m * s >= 0.0) t = tb;
    }
    if (t > 0.0) {
      vec3 w = o + t * D;
      vec3 radial = w - dot(w, vU) * vU;
      n = normalize(normalize(radial) - m * vU);
    }
  }
  if (vR.z > 0.5 && abs(sd) > 1e-6) {
    float tc = -so / sd;
    vec3 w = o + tc * D;
    if (tc > 0.0 && dot(w, w) <= r0 * r0 && (t < 0.0 || tc < t)) { t = tc; n = -vU; }
  }
  if (t < 0.0) discard;
  vec3 p = t * D;
  if (dot(n, -D) < 0.0) n = -n;
  vec4 clip = uProj * vec4(p, 1.0);
  gl_FragDepth = clamp(clip.z / clip.w * 0.5 + 0.5, 0.0, 1.0);
  vec3 col = dot(p - vA, vU) < 0.5 * vL ? vColA : vColB;
  outColor = vec4(shade(col, n, -D), uAlpha);
}
`;
var BOND_VS = `${HEADER}
uniform highp usampler2D uPairs;
uniform sampler2D uPos;
uniform sampler2D uStyle;
uniform float uBondRadius;
uniform mat4 uView;
uniform mat4 uProj;
out float vAcross;
out float vAlong;
flat out vec3 vSide;
flat out vec3 vFront;
flat out vec3 vColA;
flat out vec3 vColB;
void main() {
  int q = gl_VertexID >> 2;
  vec2 corner = quadCorner(gl_VertexID);
  uvec2 pair = texelFetch(uPairs, texel(q), 0).xy;
  int i = int(pair.x);
  int j = int(pair.y);
  vec3 a = (uView * vec4(texelFetch(uPos, texel(i), 0).xyz, 1.0)).xyz;
  vec3 b = (uView * vec4(texelFetch(uPos, texel(j), 0).xyz, 1.0)).xyz;
  vec4 sa = texelFetch(uStyle, texel(i), 0);
  vec4 sb = texelFetch(uStyle, texel(j), 0);
  vColA = sa.rgb;
  vColB = sb.rgb;
  vec3 ax = b - a;
  float L = length(ax);
  // Draw only the part between the two sphere surfaces (the rest is hidden inside them):
  // the cylinder enters a sphere of radius R at sqrt(R^2 - r^2) from its centre.
  float r2 = uBondRadius * uBondRadius;
  float ta = 0.97 * sqrt(max(sa.w * sa.w - r2, 0.0));
  float tb = 0.97 * sqrt(max(sb.w * sb.w - r2, 0.0));
  vec3 mid = 0.5 * (a + b);
  vec3 side = cross(ax, mid);
  float sl = length(side);
  if (!(L > ta + tb + 1e-4) || !(sl > 1e-6 * L * length(mid))) {
    gl_Position = vec4(2.0, 2.0, 2.0, 1.0);  // overlapping atoms, or pointing at the eye: hidden
    return;
  }
  side /= sl;
  vec3 U = ax / L;
  vec3 front = normalize(cross(side, U));
  if (dot(front, mid) > 0.0) front = -front;
  vSide = side;
  vFront = front;
  vAcross = corner.x;
  float t = mix(ta, L - tb, 0.5 * (corner.y + 1.0));
  vAlong = t / L;  // < 0.5: the half of atom i
  vec3 p = a + U * t + side * (corner.x * uBondRadius);
  gl_Position = uProj * vec4(p, 1.0);
}
`;
var BOND_FS = `${HEADER}
in float vAcross;
in float vAlong;
flat in vec3 vSide;
flat in vec3 vFront;
flat in vec3 vColA;
flat in vec3 vColB;
out vec4 outColor;
${SHADE}
void main() {
  float x = clamp(vAcross, -1.0, 1.0);
  vec3 n = vSide * x + vFront * sqrt(1.0 - x * x);
  outColor = vec4(shade(vAlong < 0.5 ? vColA : vColB, n, vFront), 1.0);
}
`;
var LINE_VS = `${HEADER}
layout(location = 0) in vec3 aPos;
uniform mat4 uView;
uniform mat4 uProj;
void main() { gl_Position = uProj * uView * vec4(aPos, 1.0); }
`;
var LINE_FS = `${HEADER}
uniform vec4 uColor;
out vec4 outColor;
void main() { outColor = uColor; }
`;

// src/renderer.js
var BOND_RADIUS = 0.11;
var ARROW_COLOR = [0.95, 0.35, 0.05];
var GHOST_ALPHA = 0.28;
function compile(gl, type, src) {
  const sh = gl.createShader(type);
  gl.shaderSource(sh, src);
  gl.compileShader(sh);
  if (!gl.getShaderParameter(sh, gl.COMPILE_STATUS)) {
    const log = gl.getShaderInfoLog(sh);
    gl.deleteShader(sh);
    throw new Error(`${TAG} shader compile error: ${log}`);
  }
  return sh;
}
function program(gl, vs, fs) {
  const p = gl.createProgram();
  gl.attachShader(p, compile(gl, gl.VERTEX_SHADER, vs));
  gl.attachShader(p, compile(gl, gl.FRAGMENT_SHADER, fs));
  gl.linkProgram(p);
  if (!gl.getProgramParameter(p, gl.LINK_STATUS)) {
    throw new Error(`${TAG} program link error: ${gl.getProgramInfoLog(p)}`);
  }
  const uniforms = {};
  const nu = gl.getProgramParameter(p, gl.ACTIVE_UNIFORMS);
  for (let i = 0; i < nu; i++) {
    const info = gl.getActiveUniform(p, i);
    uniforms[info.name] = gl.getUniformLocation(p, info.name);
  }
  return { p, u: uniforms };
}
var DataTexture = class {
  /** A TEX_W-wide texture holding one texel per atom. */
  constructor(gl, internal, format, type, channels, ArrayType) {
    this.gl = gl;
    this.internal = internal;
    this.format = format;
    this.type = type;
    this.channels = channels;
    this.ArrayType = ArrayType;
    this.tex = gl.createTexture();
    this.rows = 0;
    this.scratch = new ArrayType(0);
    gl.bindTexture(gl.TEXTURE_2D, this.tex);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    this.upload(new ArrayType(channels), 1);
  }
  /** Upload `count` texels from `data` (count * channels values). */
  upload(data, count) {
    const gl = this.gl;
    const rows = Math.max(1, Math.ceil(count / TEX_W));
    const need = rows * TEX_W * this.channels;
    if (this.scratch.length < need) this.scratch = new this.ArrayType(need);
    const used = Math.min(data.length, count * this.channels);
    this.scratch.set(used === data.length ? data : data.subarray(0, used));
    gl.bindTexture(gl.TEXTURE_2D, this.tex);
    const view = this.scratch.subarray(0, need);
    if (rows === this.rows) {
      gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, TEX_W, rows, this.format, this.type, view);
    } else {
      gl.texImage2D(gl.TEXTURE_2D, 0, this.internal, TEX_W, rows, 0, this.format, this.type, view);
      this.rows = rows;
    }
  }
  dispose() {
    this.gl.deleteTexture(this.tex);
  }
};
var Renderer = class {
  constructor(canvas) {
    this.canvas = canvas;
    const gl = canvas.getContext("webgl2", {
      antialias: false,
      alpha: false,
      depth: true,
      premultipliedAlpha: false,
      preserveDrawingBuffer: false,
      powerPreference: "high-performance"
    });
    if (!gl) throw new Error("WebGL2 is not available in this browser");
    this.gl = gl;
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    this.sphere = program(gl, SPHERE_VS, SPHERE_FS);
    this.frustum = program(gl, FRUSTUM_VS, FRUSTUM_FS);
    this.bond = program(gl, BOND_VS, BOND_FS);
    this.line = program(gl, LINE_VS, LINE_FS);
    this.lineBuf = gl.createBuffer();
    this.indexBuf = gl.createBuffer();
    this.indexQuads = 0;
    this.quadVAO = gl.createVertexArray();
    gl.bindVertexArray(this.quadVAO);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.indexBuf);
    this.lineVAO = gl.createVertexArray();
    gl.bindVertexArray(this.lineVAO);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.lineBuf);
    gl.bufferData(gl.ARRAY_BUFFER, 24 * 3 * 4, gl.DYNAMIC_DRAW);
    gl.enableVertexAttribArray(0);
    gl.vertexAttribPointer(0, 3, gl.FLOAT, false, 0, 0);
    gl.bindVertexArray(null);
    this.posTex = new DataTexture(gl, gl.RGB32F, gl.RGB, gl.FLOAT, 3, Float32Array);
    this.styleTex = new DataTexture(gl, gl.RGBA32F, gl.RGBA, gl.FLOAT, 4, Float32Array);
    this.flagTex = new DataTexture(gl, gl.R8, gl.RED, gl.UNSIGNED_BYTE, 1, Uint8Array);
    this.forceTex = new DataTexture(gl, gl.RGB32F, gl.RGB, gl.FLOAT, 3, Float32Array);
    this.ghostTex = new DataTexture(gl, gl.RGB32F, gl.RGB, gl.FLOAT, 3, Float32Array);
    this.pairTex = new DataTexture(gl, gl.RG32UI, gl.RG_INTEGER, gl.UNSIGNED_INT, 2, Uint32Array);
    this.nPairs = 0;
    this.nLines = 0;
  }
  /** Draw `count` quads (two triangles each) with the bound program. */
  drawQuads(count) {
    const gl = this.gl;
    if (count <= 0) return;
    if (count > this.indexQuads) {
      const cap = Math.max(count, Math.ceil(this.indexQuads * 1.5), 1024);
      const idx = new Uint32Array(6 * cap);
      for (let q = 0, b = 0; q < cap; q++, b += 4) {
        const o = 6 * q;
        idx[o] = b;
        idx[o + 1] = b + 1;
        idx[o + 2] = b + 2;
        idx[o + 3] = b + 2;
        idx[o + 4] = b + 1;
        idx[o + 5] = b + 3;
      }
      gl.bindVertexArray(this.quadVAO);
      gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, idx, gl.STATIC_DRAW);
      this.indexQuads = cap;
    }
    gl.bindVertexArray(this.quadVAO);
    gl.drawElements(gl.TRIANGLES, 6 * count, gl.UNSIGNED_INT, 0);
  }
  setPairs(pairs, count) {
    this.pairTex.upload(pairs, count);
    this.nPairs = count;
  }
  setCellLines(cell) {
    const gl = this.gl;
    const a = [cell[0], cell[1], cell[2]];
    const b = [cell[3], cell[4], cell[5]];
    const c = [cell[6], cell[7], cell[8]];
    const norm = Math.hypot(...a) + Math.hypot(...b) + Math.hypot(...c);
    if (!(norm > 1e-6)) {
      this.nLines = 0;
      return;
    }
    const add = (u, v) => [u[0] + v[0], u[1] + v[1], u[2] + v[2]];
    const o = [0, 0, 0];
    const ab = add(a, b), ac = add(a, c), bc = add(b, c), abc = add(ab, c);
    const edges = [
      o,
      a,
      o,
      b,
      o,
      c,
      a,
      ab,
      a,
      ac,
      b,
      ab,
      b,
      bc,
      c,
      ac,
      c,
      bc,
      ab,
      abc,
      ac,
      abc,
      bc,
      abc
    ];
    const data = new Float32Array(edges.flat());
    gl.bindBuffer(gl.ARRAY_BUFFER, this.lineBuf);
    gl.bufferSubData(gl.ARRAY_BUFFER, 0, data);
    this.nLines = 24;
  }
  bindTex(unit, tex) {
    const gl = this.gl;
    gl.activeTexture(gl.TEXTURE0 + unit);
    gl.bindTexture(gl.TEXTURE_2D, tex.tex);
  }
  /**
   * Draw one frame. `s` holds: width, height, bg, view, proj, n, drawBonds, drawForces,
   * forceScale, drawCell, ghostCount (atoms * images in the overlay, 0 = none).
   */
  draw(s) {
    const gl = this.gl;
    gl.viewport(0, 0, s.width, s.height);
    gl.clearColor(s.bg[0], s.bg[1], s.bg[2], 1);
    gl.clearDepth(1);
    gl.enable(gl.DEPTH_TEST);
    gl.depthFunc(gl.LESS);
    gl.depthMask(true);
    gl.disable(gl.BLEND);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    if (s.drawCell && this.nLines > 0) {
      const L = this.line;
      gl.useProgram(L.p);
      gl.uniformMatrix4fv(L.u.uView, false, s.view);
      gl.uniformMatrix4fv(L.u.uProj, false, s.proj);
      const lum = (s.bg[0] + s.bg[1] + s.bg[2]) / 3;
      const g = lum > 0.5 ? 0.25 : 0.8;
      gl.uniform4f(L.u.uColor, g, g, g, 1);
      gl.bindVertexArray(this.lineVAO);
      gl.drawArrays(gl.LINES, 0, this.nLines);
    }
    if (s.n > 0) {
      this.bindTex(0, this.posTex);
      this.bindTex(1, this.styleTex);
      this.bindTex(2, this.flagTex);
      this.bindTex(3, this.forceTex);
      this.bindTex(4, this.pairTex);
      const S = this.sphere;
      gl.useProgram(S.p);
      gl.uniform1i(S.u.uPos, 0);
      gl.uniform1i(S.u.uStyle, 1);
      gl.uniform1i(S.u.uFlags, 2);
      gl.uniform1i(S.u.uN, s.n);
      gl.uniformMatrix4fv(S.u.uView, false, s.view);
      gl.uniformMatrix4fv(S.u.uProj, false, s.proj);
      gl.uniform1f(S.u.uAlpha, 1);
      gl.uniform1f(S.u.uSelectOn, 1);
      this.drawQuads(s.n);
      if (s.drawBonds && this.nPairs > 0) {
        const B = this.bond;
        gl.useProgram(B.p);
        gl.uniform1i(B.u.uPairs, 4);
        gl.uniform1i(B.u.uPos, 0);
        gl.uniform1i(B.u.uStyle, 1);
        gl.uniformMatrix4fv(B.u.uView, false, s.view);
        gl.uniformMatrix4fv(B.u.uProj, false, s.proj);
        gl.uniform1f(B.u.uBondRadius, BOND_RADIUS);
        this.drawQuads(this.nPairs);
      }
      if (s.drawForces) {
        const F = this.frustum;
        gl.useProgram(F.p);
        gl.uniform1i(F.u.uPos, 0);
        gl.uniform1i(F.u.uStyle, 1);
        gl.uniform1i(F.u.uForce, 3);
        gl.uniformMatrix4fv(F.u.uView, false, s.view);
        gl.uniformMatrix4fv(F.u.uProj, false, s.proj);
        gl.uniform1f(F.u.uAlpha, 1);
        gl.uniform1f(F.u.uForceScale, s.forceScale);
        gl.uniform3f(F.u.uArrowColor, ...ARROW_COLOR);
        gl.uniform1i(F.u.uMode, 1);
        this.drawQuads(s.n);
        gl.uniform1i(F.u.uMode, 2);
        this.drawQuads(s.n);
      }
      if (s.ghostCount > 0) {
        gl.enable(gl.BLEND);
        gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
        gl.depthMask(false);
        this.bindTex(0, this.ghostTex);
        gl.useProgram(S.p);
        gl.uniform1f(S.u.uAlpha, GHOST_ALPHA);
        gl.uniform1f(S.u.uSelectOn, 0);
        this.drawQuads(s.ghostCount);
        gl.depthMask(true);
        gl.disable(gl.BLEND);
      }
    }
    gl.bindVertexArray(null);
  }
  dispose() {
    const gl = this.gl;
    for (const t of [this.posTex, this.styleTex, this.flagTex, this.forceTex, this.ghostTex, this.pairTex]) t.dispose();
    for (const b of [this.indexBuf, this.lineBuf]) gl.deleteBuffer(b);
    for (const v of [this.quadVAO, this.lineVAO]) gl.deleteVertexArray(v);
    for (const p of [this.sphere, this.frustum, this.bond, this.line]) gl.deleteProgram(p.p);
    const lose = gl.getExtension("WEBGL_lose_context");
    if (lose) lose.loseContext();
  }
};

// src/view.js
var REPORT_MS = 400;
var GHOST_LIMIT = TEX_W * 2048;
var BALL_SCALE = 0.42;
var BALL_OFFSET = 0.1;
var ViewerView = class {
  constructor(model, host) {
    this.model = model;
    this.host = host;
    this.listeners = [];
    this.timers = [];
    this.raf = 0;
    this.destroyed = false;
    this.framesDrawn = 0;
    this.reportedFrames = -1;
    this.perf = { cpu: 0, bonds: 0, searches: 0 };
    this.wantDraw = false;
    this.dragging = false;
    this.dynScale = 1;
    this.motionLod = false;
    this.inMotion = false;
    this.frameMs = 0;
    this.session = 0;
    this.frameSamples = 0;
    this.probeFrom = 0;
    this.updatesSinceDraw = 0;
    this.lastMotion = 0;
    this.refineTimer = 0;
    this.camera = new Camera();
    this.bonds = new BondFinder();
    this.needsFit = true;
    this.n = 0;
    this.numbers = new Uint8Array(0);
    this.livePos = new Float32Array(0);
    this.liveCell = new Float32Array(9);
    this.forces = new Float32Array(0);
    this.rcov = new Float32Array(0);
    this.radius = new Float32Array(0);
    this.symbols = [];
    this.selected = [];
    this.mode = "live";
    this.trajPos = new Float32Array(0);
    this.trajCells = new Float32Array(0);
    this.nFrames = 0;
    this.frame = 0;
    this.playing = false;
    this.lastStep = 0;
    this.bounce = 1;
    this.lastFrameSync = 0;
    this.lastTime = 0;
    this.bounds = { center: [0, 0, 0], radius: 1 };
    this.dirty = { style: true, pos: true, forces: true, flags: true, cell: true, ghosts: true };
    buildDom(this);
    try {
      this.renderer = new Renderer(this.canvas);
    } catch (err) {
      this.renderer = null;
      showError(this, String(err && err.message ? err.message : err));
      console.warn(TAG, err);
    }
    if (this.renderer) {
      this.canvas.addEventListener("webglcontextlost", (e) => {
        e.preventDefault();
        this.renderer = null;
        showError(this, "The WebGL context was lost; re-run the cell to redraw.");
      });
    }
    buildEditBar(this);
    this.beginEditDrag = (e) => beginEditDrag(this, e);
    this.fixed = new Uint8Array(0);
    this.bindModel();
    bindInput(this);
    bindEditKeys(this);
    this.readStructure();
    readTrajectory(this);
    readSelection(this);
    syncPlayerUi(this);
    this.timers.push(setInterval(() => this.reportFrames(), REPORT_MS));
    this.schedule();
  }
  // ---------------------------------------------------------------- model
  on(name, fn) {
    this.model.on(name, fn);
    this.listeners.push([name, fn]);
  }
  bindModel() {
    const structure = () => {
      this.readStructure();
      this.schedule();
    };
    this.on("change:_numbers", structure);
    this.on("change:_elements", structure);
    this.on("change:_style", structure);
    this.on("change:_structure_id", () => {
      this.needsFit = true;
      structure();
    });
    this.on("change:_positions", () => {
      this.livePos = asFloat32(this.model.get("_positions"));
      this.updatesSinceDraw++;
      if (this.mode === "live") this.dirty.pos = true;
      this.schedule();
    });
    this.on("change:_cell", () => {
      this.liveCell = Float32Array.from(this.model.get("_cell") || []);
      this.dirty.cell = true;
      this.schedule();
    });
    const forces = () => {
      this.forces = asFloat32(this.model.get("_forces"));
      this.dirty.forces = true;
      this.schedule();
    };
    this.on("change:_forces", forces);
    for (const k of ["show_forces", "force_scale", "show_cell", "background", "spin"]) {
      this.on(`change:${k}`, () => {
        this.dirty.cell = true;
        this.schedule();
      });
    }
    for (const k of ["show_bonds", "bond_tolerance"]) {
      this.on(`change:${k}`, () => {
        this.dirty.pos = true;
        this.schedule();
      });
    }
    this.on("change:label", () => this.schedule());
    this.on("change:frame_seq", () => this.schedule());
    this.on("change:height", () => {
      this.stage.style.height = `${this.model.get("height") || 480}px`;
      this.schedule();
    });
    this.on("change:selected", () => {
      readSelection(this);
      this.schedule();
    });
    const traj = () => {
      readTrajectory(this);
      syncPlayerUi(this);
      this.schedule();
    };
    for (const k of ["_mode", "_traj_positions", "_traj_cells", "_traj_n_frames", "_traj_labels"]) {
      this.on(`change:${k}`, traj);
    }
    this.on("change:frame_index", () => {
      const f = this.model.get("frame_index") | 0;
      if (f !== this.frame) setFrame(this, f, false);
    });
    this.on("change:playing", () => setPlaying(this, !!this.model.get("playing"), false));
    this.on("change:play_fps", () => syncPlayerUi(this));
    this.on("change:overlay", () => {
      this.dirty.ghosts = true;
      syncPlayerUi(this);
      this.schedule();
    });
    this.on("msg:custom", (msg, buffers) => this.onCustom(msg, buffers));
    for (const k of ["editable", "can_undo", "can_redo", "edit_message", "measurement", "_mode", "running", "has_neb_start", "has_neb_end"]) {
      this.on(`change:${k}`, () => syncEditBar(this));
    }
    this.on("change:_fixed", () => {
      this.fixed = asUint8(this.model.get("_fixed"));
      this.dirty.flags = true;
      this.schedule();
    });
  }
  readStructure() {
    const m = this.model;
    this.numbers = asUint8(m.get("_numbers"));
    this.n = this.numbers.length;
    this.livePos = asFloat32(m.get("_positions"));
    this.liveCell = Float32Array.from(m.get("_cell") || []);
    this.forces = asFloat32(m.get("_forces"));
    const table = m.get("_elements") || {};
    const spacefill = m.get("_style") === "spacefill";
    const n = this.n;
    this.rcov = new Float32Array(n);
    this.radius = new Float32Array(n);
    this.symbols = new Array(n);
    const style = new Float32Array(4 * n);
    for (let i = 0; i < n; i++) {
      const e = table[String(this.numbers[i])] || [0.6, 0.6, 0.6, 1, 1.5, "X"];
      const rc = Number(e[3]) || 1;
      const rv = Number(e[4]) || rc;
      const r = spacefill ? rv : BALL_SCALE * rc + BALL_OFFSET;
      this.rcov[i] = rc;
      this.radius[i] = r;
      this.symbols[i] = String(e[5] || "X");
      style[4 * i] = e[0];
      style[4 * i + 1] = e[1];
      style[4 * i + 2] = e[2];
      style[4 * i + 3] = r;
    }
    this.styleData = style;
    this.root.dataset.nAtoms = String(n);
    this.fixed = asUint8(m.get("_fixed"));
    this.dirty.style = this.dirty.pos = this.dirty.forces = this.dirty.flags = this.dirty.cell = true;
    readSelection(this);
    syncEditBar(this);
  }
  // ---------------------------------------------------------------- commands from the UI / Python
  resetView() {
    this.needsFit = true;
    this.schedule();
  }
  onCustom(msg, _buffers) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "reset_view") {
      this.resetView();
    } else if (msg.type === "png_request") {
      try {
        const url = this.snapshot();
        const b64 = url.slice(url.indexOf(",") + 1);
        const bin = atob(b64);
        const bytes = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
        this.model.send({ type: "png", id: msg.id }, void 0, [bytes.buffer]);
      } catch (err) {
        this.model.send({ type: "png_error", id: msg.id, error: String(err) });
      }
    }
  }
  /** Render now and return the canvas as a PNG data URL (no preserveDrawingBuffer needed). */
  snapshot() {
    if (!this.renderer) throw new Error("the viewer has no WebGL context");
    this.drawNow(performance.now(), "still");
    return this.canvas.toDataURL("image/png");
  }
  downloadPng() {
    try {
      const a = document.createElement("a");
      a.href = this.snapshot();
      a.download = "nnp_lab_view.png";
      a.click();
    } catch (err) {
      console.warn(TAG, "PNG export failed:", err);
    }
  }
  reportFrames() {
    if (this.destroyed || this.framesDrawn === this.reportedFrames) return;
    this.reportedFrames = this.framesDrawn;
    this.model.set("frames_drawn", this.framesDrawn);
    this.model.save_changes();
  }
  // ---------------------------------------------------------------- render loop
  /** Request a redraw on the next animation frame (at most one per frame). */
  schedule() {
    this.wantDraw = true;
    this.requestTick();
  }
  requestTick() {
    if (this.raf || this.destroyed) return;
    this.raf = requestAnimationFrame((t) => {
      this.raf = 0;
      this.tick(t);
    });
  }
  tick(now) {
    if (this.destroyed) return;
    if (this.probeFrom) {
      const dt = now - this.probeFrom;
      this.probeFrom = 0;
      if (dt < 2e3) {
        this.frameMs = this.frameMs ? 0.7 * this.frameMs + 0.3 * dt : dt;
        this.frameSamples++;
      }
    }
    const spin = !!this.model.get("spin");
    if (this.playing && stepPlayer(this, now)) this.wantDraw = true;
    if (spin) {
      const dt = this.lastTime ? Math.min(now - this.lastTime, 100) : 16;
      this.camera.rotate([0, 1, 0], dt * 6e-4);
      this.wantDraw = true;
    }
    this.lastTime = now;
    if (this.wantDraw) {
      this.wantDraw = false;
      let kind = "still";
      if (spin || this.playing || this.dragging) kind = "motion";
      else if (this.updatesSinceDraw > 0 && this.mode === "live") kind = "stream";
      this.drawNow(now, kind);
      if (kind !== "still") {
        this.probeFrom = now;
        this.requestTick();
      }
    }
    if (this.playing || spin) this.requestTick();
  }
  /**
   * Adaptive quality. Software WebGL is mostly fragment-bound, so when frames cannot keep up the
   * canvas is rendered at a lower resolution (down to 40% per axis; the browser scales it up),
   * and if even that is too slow (tens of thousands of bonds), bonds and arrows are left out
   * until the view comes to rest. "Too slow" means more than ~36 ms from the animation frame
   * that drew to the next one (the browser delays animation frames while the GPU — here the
   * CPU running SwiftShader — is still busy), measured for continuous motion (spin, drag,
   * playback) and for live updates from Python alike. Quality comes back when frames are fast,
   * and a view at rest is always redrawn at full resolution with everything.
   *
   * @param {number} now  rAF timestamp
   * @param {"still"|"motion"|"stream"} kind
   * @returns {number} render scale for this frame
   */
  quality(now, kind) {
    this.updatesSinceDraw = 0;
    this.inMotion = kind !== "still";
    if (kind === "still") {
      this.session = 0;
      this.frameMs = 0;
      this.frameSamples = 0;
      this.motionLod = false;
      return 1;
    }
    this.session++;
    const enough = this.frameSamples >= 2 || this.frameSamples >= 1 && this.frameMs > 100;
    if (enough && this.session > 2) {
      if (this.frameMs > 36) {
        const f = Math.max(0.5, Math.min(0.9, Math.sqrt(30 / this.frameMs)));
        if (this.dynScale > 0.4) this.dynScale = Math.max(0.4, this.dynScale * f);
        else this.motionLod = true;
        this.frameMs = 0;
        this.frameSamples = 0;
      } else if (this.frameMs < 24) {
        if (this.dynScale < 1) this.dynScale = Math.min(1, this.dynScale * 1.08);
        else if (this.frameMs < 20) this.motionLod = false;
        this.frameMs = 0;
        this.frameSamples = 0;
      }
    }
    if (this.dynScale < 1 || this.motionLod) {
      clearTimeout(this.refineTimer);
      this.refineTimer = setTimeout(() => {
        if (!this.destroyed && !this.dragging && !this.playing && !this.model.get("spin")) this.schedule();
      }, 250);
    }
    return this.dynScale;
  }
  computeBounds(pos, cell, withCell) {
    let x0 = Infinity, y0 = Infinity, z0 = Infinity, x1 = -Infinity, y1 = -Infinity, z1 = -Infinity;
    const addPt = (x, y, z) => {
      if (!(Number.isFinite(x) && Number.isFinite(y) && Number.isFinite(z))) return;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      if (z < z0) z0 = z;
      if (z > z1) z1 = z;
    };
    for (let i = 0; i < this.n; i++) addPt(pos[3 * i], pos[3 * i + 1], pos[3 * i + 2]);
    if (withCell) {
      for (let k = 0; k < 8; k++) {
        const fa = k & 1, fb = k >> 1 & 1, fc = k >> 2 & 1;
        addPt(
          fa * cell[0] + fb * cell[3] + fc * cell[6],
          fa * cell[1] + fb * cell[4] + fc * cell[7],
          fa * cell[2] + fb * cell[5] + fc * cell[8]
        );
      }
    }
    if (!(x1 >= x0)) return { center: [0, 0, 0], radius: 1 };
    const center = [(x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2];
    let maxR = 0;
    for (let i = 0; i < this.n; i++) if (this.radius[i] > maxR) maxR = this.radius[i];
    const radius = Math.hypot(x1 - x0, y1 - y0, z1 - z0) / 2 + maxR;
    return { center, radius };
  }
  /** Atom centres (padded by their radii) and, if drawn, cell corners as [x, y, z, pad] quads. */
  fitPoints(pos, cell, withCell) {
    const n = this.n;
    const pts = new Float32Array(4 * (n + (withCell ? 8 : 0)));
    for (let i = 0; i < n; i++) {
      pts[4 * i] = pos[3 * i];
      pts[4 * i + 1] = pos[3 * i + 1];
      pts[4 * i + 2] = pos[3 * i + 2];
      pts[4 * i + 3] = this.radius[i];
    }
    if (withCell) {
      for (let k = 0; k < 8; k++) {
        const fa = k & 1, fb = k >> 1 & 1, fc = k >> 2 & 1;
        for (let j = 0; j < 3; j++) pts[4 * (n + k) + j] = fa * cell[j] + fb * cell[3 + j] + fc * cell[6 + j];
      }
    }
    return pts;
  }
  drawNow(now, kind = "still") {
    const t0 = performance.now();
    this.drawFrame(this.quality(now, kind));
    this.perf.cpu += performance.now() - t0;
  }
  drawFrame(scale) {
    const r = this.renderer;
    const m = this.model;
    const label = currentLabel(this);
    if (this.labelEl.textContent !== label) this.labelEl.textContent = label;
    if (!r) return;
    const dpr = Math.min(window.devicePixelRatio || 1, 2) * scale;
    const w = Math.max(1, Math.round(this.canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(this.canvas.clientHeight * dpr));
    this.root.dataset.renderScale = scale.toFixed(2);
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    const n = this.n;
    const pos = currentPositions(this);
    const havePos = pos.length >= 3 * n;
    const spacefill = m.get("_style") === "spacefill";
    const showCell = !!m.get("show_cell");
    const drawBonds = !spacefill && !!m.get("show_bonds");
    const lod = this.inMotion && this.motionLod;
    const d = this.dirty;
    if (d.style && n > 0) {
      r.styleTex.upload(this.styleData, n);
      d.style = false;
    }
    if (d.flags) {
      const flags = new Uint8Array(Math.max(n, 1));
      if (this.fixed.length === n && this.mode === "live") {
        for (let i = 0; i < n; i++) if (this.fixed[i]) flags[i] = 100;
      }
      for (const i of this.selected) flags[i] = flags[i] === 100 ? 255 : 200;
      r.flagTex.upload(flags, Math.max(n, 1));
      d.flags = false;
    }
    if (d.pos && havePos && n > 0) {
      r.posTex.upload(pos, n);
      this.bondsStale = true;
      d.pos = false;
      d.bounds = true;
    }
    if (this.bondsStale && havePos && n > 0 && !lod) {
      this.bondsStale = false;
      if (drawBonds) {
        const tb = performance.now();
        const np = this.bonds.find(pos, n, this.rcov, Number(m.get("bond_tolerance") ?? 0.4));
        this.perf.bonds += performance.now() - tb;
        this.perf.searches++;
        r.setPairs(this.bonds.pairs, np);
      } else {
        r.nPairs = 0;
      }
    }
    if (d.cell) {
      r.setCellLines(currentCell(this));
      d.cell = false;
      d.bounds = true;
    }
    const drawForces = !!m.get("show_forces") && this.mode === "live" && this.forces.length >= 3 * n && n > 0;
    if (d.forces && drawForces) {
      r.forceTex.upload(this.forces, n);
      d.forces = false;
    }
    const overlay = this.mode === "band" && !!m.get("overlay") && this.nFrames * n <= GHOST_LIMIT;
    if (d.ghosts && overlay) {
      r.ghostTex.upload(this.trajPos, this.nFrames * n);
      d.ghosts = false;
    }
    if (d.bounds || this.needsFit) {
      this.bounds = this.computeBounds(havePos ? pos : new Float32Array(0), currentCell(this), showCell && r.nLines > 0);
      d.bounds = false;
    }
    const aspect = w / h;
    if (this.needsFit && n > 0 && havePos) {
      this.camera.fit(this.bounds.center, this.fitPoints(pos, currentCell(this), showCell && r.nLines > 0), aspect);
      this.needsFit = false;
    }
    const vc = this.camera.toView(this.bounds.center);
    const zc = -vc[2];
    const far = Math.max(zc + this.bounds.radius + 2, 1);
    const near = Math.max(zc - this.bounds.radius - 2, far * 1e-4, 0.02);
    r.draw({
      width: w,
      height: h,
      bg: parseColor(m.get("background")),
      view: this.camera.viewMatrix(),
      proj: perspective(aspect, near, far),
      n: havePos ? n : 0,
      drawBonds: drawBonds && !lod,
      drawForces: drawForces && !lod,
      forceScale: Number(m.get("force_scale")) || 1,
      drawCell: showCell,
      ghostCount: overlay ? this.nFrames * n : 0
    });
    updateAxes(this);
    if (this.selected.length) updatePickText(this);
    this.framesDrawn++;
    this.root.dataset.framesDrawn = String(this.framesDrawn);
    this.root.dataset.frameSeq = String(m.get("frame_seq") | 0);
    this.root.dataset.nBonds = String(drawBonds ? r.nPairs : 0);
  }
  destroy() {
    this.destroyed = true;
    if (this.raf) cancelAnimationFrame(this.raf);
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.refineTimer);
    for (const [name, fn] of this.listeners) this.model.off(name, fn);
    if (this.resizeObserver) this.resizeObserver.disconnect();
    if (this.renderer) this.renderer.dispose();
    this.renderer = null;
    this.root.remove();
  }
};

// src/index.js
var index_default = {
  render({ model, el: host }) {
    const view = new ViewerView(model, host);
    return () => view.destroy();
  }
};
var _internals = { BondFinder, Camera, asFloat32, parseColor };
export {
  _internals,
  index_default as default
};
