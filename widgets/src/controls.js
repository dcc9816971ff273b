// The widget's DOM: stage, canvas, overlays, tool buttons, trajectory player bar, axes gizmo and
// the test hook. Functions of the ViewerView (view.js): they create the elements as fields of
// `view` and wire the controls to the view, the player (trajectory.js) and picking (interaction.js).

import { projectAtom } from "./interaction.js";
import { setFrame, setPlaying } from "./trajectory.js";
import { el } from "./util.js";

export function buildDom(view) {
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
  const reset = el("button", "nnpv-btn nnpv-reset", tools, "⟲");
  reset.title = "Reset view";
  reset.addEventListener("click", () => view.resetView());
  const png = el("button", "nnpv-btn nnpv-png", tools, "PNG");
  png.title = "Download a PNG of the view";
  png.addEventListener("click", () => view.downloadPng());
  view.axes = buildAxes(view.stage);

  const player = el("div", "nnpv-player", root);
  view.player = player;
  view.playBtn = el("button", "nnpv-btn nnpv-play", player, "▶");
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

  // Test/bench hook (not a public API): lets a browser test project an atom to the screen.
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
      motionLod: view.motionLod,
    }),
  };
}

export function buildAxes(parent) {
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

export function updateAxes(view) {
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

export function showError(view, msg) {
  view.errorEl.textContent = msg;
  view.errorEl.style.display = "block";
}
