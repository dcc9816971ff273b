/**
 * nnp_lab 3D viewer: the front end of `nnp_lab.widgets.Viewer` (an anywidget ES module).
 * This is the entry point of the sources in widgets/src/; esbuild bundles them into the one
 * file the widget ships, widgets/viewer.js (see widgets/README.md).
 *
 * Dependency-free WebGL2, written for software rendering (SwiftShader) as much as for GPUs:
 *
 * - Atom data lives in float textures (positions, per-atom colour + radius, selection flags,
 *   forces). A new frame from Python uploads one texture of N x 3 float32 — the bytes Python
 *   sent, no per-atom JavaScript objects.
 * - Atoms are impostor spheres: one camera-facing quad per atom, ray-cast in the fragment shader
 *   (exact silhouette, per-pixel normal and depth). One draw call for all atoms. Quads are not
 *   instanced: SwiftShader (software WebGL) processes an instanced draw one instance at a time,
 *   which made 5,000 atoms 3x slower; each vertex finds its atom from gl_VertexID instead.
 * - Bonds are flat camera-facing quads between the sphere surfaces, shaded as cylinders, with
 *   no per-pixel depth, so hidden bond pixels are rejected before shading. They are recomputed
 *   from the current positions whenever these change (d < r_cov,i + r_cov,j + 0.4 Å, found on
 *   a uniform grid, O(N)); only the (i, j) index pairs go to the GPU. One draw call for all
 *   bonds. Bonds across periodic boundaries are not drawn.
 * - Force arrows are impostor frusta (cylinder shafts, cone heads) ray-cast like the spheres.
 * - The unit cell is 12 GL lines and follows every cell change.
 * - Redraws happen at most once per animation frame and only when something changed (or while
 *   playing / spinning). Each drawn frame increments `data-frames-drawn` on the widget root;
 *   the count is reported back to Python (`frames_drawn`) a few times per second.
 * - Adaptive quality: frames that cannot keep up are drawn at lower resolution, then without
 *   bonds; a view at rest is always redrawn at full quality (see ViewerView.quality, view.js).
 *
 * Modules: util.js (constants, data / DOM helpers), camera.js (camera, projection), bonds.js
 * (bond search), shaders.js (GLSL), renderer.js (GL resources, draw calls), view.js (ViewerView:
 * model <-> state, render loop), controls.js (DOM), trajectory.js (player), interaction.js
 * (pointer input, picking).
 *
 * Traits read from the model (see nnp_lab/widgets/viewer.py): _numbers (uint8 bytes),
 * _positions / _forces (float32 bytes), _cell (9 floats), _elements, _structure_id, frame_seq,
 * label, _style, show_cell, show_bonds, show_forces, force_scale, bond_tolerance, height,
 * background, spin, selected, _mode, _traj_positions, _traj_cells, _traj_n_frames,
 * _traj_labels, frame_index, playing, play_fps, overlay.
 */

import { BondFinder } from "./bonds.js";
import { Camera } from "./camera.js";
import { asFloat32, parseColor } from "./util.js";
import { ViewerView } from "./view.js";

export default {
  render({ model, el: host }) {
    const view = new ViewerView(model, host);
    return () => view.destroy();
  },
};

/** Internals exported for the JavaScript unit tests (tests/widgets/test_frontend_js.py). */
export const _internals = { BondFinder, Camera, asFloat32, parseColor };
