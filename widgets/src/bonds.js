// Bonds: covalent-radius criterion on a uniform grid (cell list), O(N).

export class BondFinder {
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
      if (x < x0) x0 = x; if (x > x1) x1 = x;
      if (y < y0) y0 = y; if (y > y1) y1 = y;
      if (z < z0) z0 = z; if (z > z1) z1 = z;
    }
    if (!(x1 >= x0)) return 0;
    let h = cutMax;
    let nx, ny, nz;
    for (;;) {
      nx = Math.floor((x1 - x0) / h) + 1;
      ny = Math.floor((y1 - y0) / h) + 1;
      nz = Math.floor((z1 - z0) / h) + 1;
      if (nx * ny * nz <= 4 * n + 64) break;
      h *= 1.5; // very sparse system: coarser grid keeps memory O(N)
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
    // counts[c] is now the start of cell c; fill `order` using a running cursor, then restore.
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
              if (d2 < cut * cut && d2 > 0.0025) {
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
}
