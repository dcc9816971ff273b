// Renderer: GL resources (programs, data textures, buffers) and the draw calls.

import { TAG, TEX_W } from "./util.js";
import {
  BOND_FS,
  BOND_VS,
  FRUSTUM_FS,
  FRUSTUM_VS,
  LINE_FS,
  LINE_VS,
  SPHERE_FS,
  SPHERE_VS,
} from "./shaders.js";

const BOND_RADIUS = 0.11; // Å
const ARROW_COLOR = [0.95, 0.35, 0.05];
const GHOST_ALPHA = 0.28;

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

class DataTexture {
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
}

export class Renderer {
  constructor(canvas) {
    this.canvas = canvas;
    const gl = canvas.getContext("webgl2", {
      antialias: false,
      alpha: false,
      depth: true,
      premultipliedAlpha: false,
      preserveDrawingBuffer: false,
      powerPreference: "high-performance",
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

    // Quads: no vertex attributes, just the shared index buffer (see quadCorner in HEADER).
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
      o, a, o, b, o, c, a, ab, a, ac, b, ab, b, bc, c, ac, c, bc, ab, abc, ac, abc, bc, abc,
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
        // All images at once, semi-transparent; the opaque current image was drawn above.
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
    if (lose) lose.loseContext(); // browsers cap live WebGL contexts per page
  }
}
