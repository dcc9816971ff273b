// Trajectory state and the player: which frame is shown (positions, cell, label), the player
// bar's state, frame stepping by wall-clock time, and frame_index / playing sync with Python.
// Functions of the ViewerView (view.js); they read and write its trajectory fields (mode,
// nFrames, trajPos, trajCells, trajLabels, frame, playing, lastStep, bounce, lastFrameSync).

import { asFloat32 } from "./util.js";

const FRAME_SYNC_MS = 250; // how often the playing frame index is reported back

export function readTrajectory(view) {
  const m = view.model;
  view.mode = m.get("_mode") || "live";
  view.nFrames = m.get("_traj_n_frames") | 0;
  view.trajPos = asFloat32(m.get("_traj_positions"));
  view.trajCells = asFloat32(m.get("_traj_cells"));
  view.trajLabels = m.get("_traj_labels") || [];
  if (view.mode !== "live" && (view.nFrames < 1 || view.trajPos.length < view.nFrames * view.n * 3)) {
    view.mode = "live"; // inconsistent buffers mid-update; the next change event fixes it
  }
  view.frame = Math.min(Math.max(m.get("frame_index") | 0, 0), Math.max(view.nFrames - 1, 0));
  view.playing = view.mode !== "live" && !!m.get("playing");
  view.dirty.pos = view.dirty.cell = view.dirty.ghosts = true;
}

export function currentPositions(view) {
  if (view.mode !== "live") {
    const k = view.n * 3;
    return view.trajPos.subarray(view.frame * k, (view.frame + 1) * k);
  }
  return view.livePos;
}

export function currentCell(view) {
  if (view.mode !== "live" && view.trajCells.length >= 9 * (view.frame + 1)) {
    return view.trajCells.subarray(9 * view.frame, 9 * view.frame + 9);
  }
  return view.liveCell;
}

export function currentLabel(view) {
  if (view.mode !== "live") {
    const l = view.trajLabels[view.frame];
    return l != null ? String(l) : `frame ${view.frame}`;
  }
  return String(view.model.get("label") || "");
}

export function syncPlayerUi(view) {
  const show = view.mode !== "live";
  view.player.style.display = show ? "flex" : "none";
  if (!show) return;
  view.slider.max = String(Math.max(view.nFrames - 1, 0));
  view.slider.value = String(view.frame);
  view.frameText.textContent = `${view.frame} / ${Math.max(view.nFrames - 1, 0)}`;
  view.playBtn.textContent = view.playing ? "⏸" : "▶";
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

export function setFrame(view, f, fromUi) {
  if (view.mode === "live") return;
  f = Math.min(Math.max(f | 0, 0), view.nFrames - 1);
  if (f === view.frame && !fromUi) return;
  view.frame = f;
  view.dirty.pos = view.dirty.cell = true;
  syncPlayerUi(view);
  if (fromUi) syncFrameIndex(view, true);
  view.schedule();
}

export function syncFrameIndex(view, force) {
  const now = performance.now();
  if (!force && now - view.lastFrameSync < FRAME_SYNC_MS) return;
  view.lastFrameSync = now;
  if ((view.model.get("frame_index") | 0) !== view.frame) {
    view.model.set("frame_index", view.frame);
    view.model.save_changes();
  }
}

export function setPlaying(view, on, fromUi) {
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

/** Advance the playing trajectory by wall-clock time; returns whether the frame changed. */
export function stepPlayer(view, now) {
  const fps = Math.max(0.1, Number(view.model.get("play_fps")) || 10);
  const dt = 1000 / fps;
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
