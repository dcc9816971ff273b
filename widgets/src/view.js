// The widget view: model <-> state, lifecycle, PNG export and the render loop (adaptive quality,
// uploads, bond search, camera fit, draw). One ViewerView per rendered widget; its DOM
// (controls.js), trajectory player (trajectory.js) and pointer input / picking (interaction.js)
// are functions of the view that live in their own modules.

import { BondFinder } from "./bonds.js";
import { Camera, perspective } from "./camera.js";
import { buildDom, showError, updateAxes } from "./controls.js";
import { beginEditDrag, bindEditKeys, buildEditBar, syncEditBar } from "./editing.js";
import { bindInput, readSelection, updatePickText } from "./interaction.js";
import { Renderer } from "./renderer.js";
import {
  currentCell,
  currentLabel,
  currentPositions,
  readTrajectory,
  setFrame,
  setPlaying,
  stepPlayer,
  syncPlayerUi,
} from "./trajectory.js";
import { TAG, TEX_W, asFloat32, asUint8, parseColor } from "./util.js";

const REPORT_MS = 400; // how often frames_drawn is reported back to Python
const GHOST_LIMIT = TEX_W * 2048; // most atoms*images drawn in the band overlay
const BALL_SCALE = 0.42; // ball-and-stick sphere radius = 0.42 * covalent radius + 0.1 Å
const BALL_OFFSET = 0.1;

export class ViewerView {
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

    // Structure state.
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
      const e = table[String(this.numbers[i])] || [0.6, 0.6, 0.6, 1.0, 1.5, "X"];
      const rc = Number(e[3]) || 1.0;
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
        this.model.send({ type: "png", id: msg.id }, undefined, [bytes.buffer]);
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
      // Time from the previous drawing frame to this one: what that frame cost.
      const dt = now - this.probeFrom;
      this.probeFrom = 0;
      if (dt < 2000) {
        this.frameMs = this.frameMs ? 0.7 * this.frameMs + 0.3 * dt : dt;
        this.frameSamples++;
      }
    }
    const spin = !!this.model.get("spin");
    if (this.playing && stepPlayer(this, now)) this.wantDraw = true;
    if (spin) {
      const dt = this.lastTime ? Math.min(now - this.lastTime, 100) : 16;
      this.camera.rotate([0, 1, 0], dt * 0.0006);
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
    const enough = this.frameSamples >= 2 || (this.frameSamples >= 1 && this.frameMs > 100);
    if (enough && this.session > 2) {
      if (this.frameMs > 36) {
        // Pixel work scales with scale^2: aim straight for ~30 ms, at most halving per step.
        const f = Math.max(0.5, Math.min(0.9, Math.sqrt(30 / this.frameMs)));
        if (this.dynScale > 0.4) this.dynScale = Math.max(0.4, this.dynScale * f);
        else this.motionLod = true;
        this.frameMs = 0;
        this.frameSamples = 0;
      } else if (this.frameMs < 24) {
        if (this.dynScale < 1) this.dynScale = Math.min(1, this.dynScale * 1.08);
        else if (this.frameMs < 20) this.motionLod = false; // about one display frame
        this.frameMs = 0;
        this.frameSamples = 0;
      }
    }
    if (this.dynScale < 1 || this.motionLod) {
      // Once things come to rest, redraw at full quality.
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
      if (x < x0) x0 = x; if (x > x1) x1 = x;
      if (y < y0) y0 = y; if (y > y1) y1 = y;
      if (z < z0) z0 = z; if (z > z1) z1 = z;
    };
    for (let i = 0; i < this.n; i++) addPt(pos[3 * i], pos[3 * i + 1], pos[3 * i + 2]);
    if (withCell) {
      for (let k = 0; k < 8; k++) {
        const fa = k & 1, fb = (k >> 1) & 1, fc = (k >> 2) & 1;
        addPt(
          fa * cell[0] + fb * cell[3] + fc * cell[6],
          fa * cell[1] + fb * cell[4] + fc * cell[7],
          fa * cell[2] + fb * cell[5] + fc * cell[8],
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
        const fa = k & 1, fb = (k >> 1) & 1, fc = (k >> 2) & 1;
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
      // 100: fixed (FixAtoms, drawn hatched), 200: selected, 255: both
      const flags = new Uint8Array(Math.max(n, 1));
      if (this.fixed.length === n && this.mode === "live") for (let i = 0; i < n; i++) if (this.fixed[i]) flags[i] = 100;
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
      ghostCount: overlay ? this.nFrames * n : 0,
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
}
