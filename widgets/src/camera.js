// Camera: rotation R (world -> view, row-major 3x3), orbit target, distance; projection matrix.

export const FOV_Y = (22 * Math.PI) / 180;

/**
 * Default view (and "reset view"): the z axis points up the screen, tilted 30 degrees towards
 * the viewer, after a 25 degree turn about z — slabs show their layers and adsorbates, and
 * molecules and crystals look three-dimensional. R = Rx(-60 deg) Rz(-25 deg), world -> view.
 */
const DEFAULT_VIEW = (() => {
  const a = (-25 * Math.PI) / 180;
  const b = (-60 * Math.PI) / 180;
  const ca = Math.cos(a), sa = Math.sin(a), cb = Math.cos(b), sb = Math.sin(b);
  // Rx(b) * Rz(a), row-major
  return [ca, -sa, 0, cb * sa, cb * ca, -sb, sb * sa, sb * ca, cb];
})();

export class Camera {
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
      t * x * x + c, t * x * y - s * z, t * x * z + s * y,
      t * x * y + s * z, t * y * y + c, t * y * z - s * x,
      t * x * z - s * y, t * y * z + s * x, t * z * z + c,
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
    if (dx) this.rotate([0, 1, 0], dx * 0.008);
    if (dy) this.rotate([1, 0, 0], dy * 0.008);
  }

  pan(dx, dy, heightPx) {
    const wpp = (2 * this.dist * Math.tan(FOV_Y / 2)) / Math.max(1, heightPx);
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
      R[6] * x + R[7] * y + R[8] * z - this.dist,
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
      R[0], R[3], R[6], 0,
      R[1], R[4], R[7], 0,
      R[2], R[5], R[8], 0,
      tx, ty, tz, 1,
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
}

function orthonormalize(R) {
  const a = [R[0], R[1], R[2]];
  let la = Math.hypot(...a);
  a[0] /= la; a[1] /= la; a[2] /= la;
  const b = [R[3], R[4], R[5]];
  const d = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  b[0] -= d * a[0]; b[1] -= d * a[1]; b[2] -= d * a[2];
  la = Math.hypot(...b);
  b[0] /= la; b[1] /= la; b[2] /= la;
  const c = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  return [a[0], a[1], a[2], b[0], b[1], b[2], c[0], c[1], c[2]];
}

export function perspective(aspect, near, far) {
  const f = 1 / Math.tan(FOV_Y / 2);
  const nf = 1 / (near - far);
  return new Float32Array([
    f / aspect, 0, 0, 0,
    0, f, 0, 0,
    0, 0, (far + near) * nf, -1,
    0, 0, 2 * far * near * nf, 0,
  ]);
}
