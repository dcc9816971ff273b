// Shared constants and small data / DOM helpers.

export const TAG = "[nnp_lab viewer]";
export const TEX_W = 2048; // atoms per texture row; must match the shaders' `k & 2047`, `k >> 11`

/** View a DataView / ArrayBuffer / typed array from the model as a Float32Array (no copy when aligned). */
export function asFloat32(v) {
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

export function asUint8(v) {
  if (v == null) return new Uint8Array(0);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return new Uint8Array(0);
}

export function parseColor(s) {
  const m = /^#?([0-9a-f]{6})$/i.exec(String(s || "").trim());
  if (!m) return [1, 1, 1];
  const x = parseInt(m[1], 16);
  return [((x >> 16) & 255) / 255, ((x >> 8) & 255) / 255, (x & 255) / 255];
}

export function el(tag, cls, parent, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
