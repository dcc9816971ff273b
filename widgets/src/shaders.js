// GLSL ES 3.00 sources of the four programs (spheres, force-arrow frusta, bonds, cell lines).
// Atom k's data are at texel (k & 2047, k >> 11): TEX_W in util.js must match.

const SHAFT_RADIUS = 0.055; // Å, force arrows
const HEAD_RADIUS = 0.14; // Å

const HEADER = `#version 300 es
precision highp float;
precision highp int;
precision highp sampler2D;
ivec2 texel(int k) { return ivec2(k & 2047, k >> 11); }
// Quads are drawn without instancing (SwiftShader runs instanced draws one instance at a time):
// vertex 4q + c is corner c of quad q, and a shared index buffer makes two triangles of it.
vec2 quadCorner(int vid) { return vec2((vid & 1) == 1 ? 1.0 : -1.0, (vid & 2) == 2 ? 1.0 : -1.0); }
`;

const SHADE = `
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

export const SPHERE_VS = `${HEADER}
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

export const SPHERE_FS = `${HEADER}
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

export const FRUSTUM_VS = `${HEADER}
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

export const FRUSTUM_FS = `${HEADER}
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

// Bonds: flat camera-facing quads between the two atoms' sphere surfaces, shaded as cylinders. No
// discard and no gl_FragDepth, so the depth test rejects hidden bond pixels before shading (most
// of them, inside and behind the spheres drawn first). The quad lies in the plane through the
// bond axis facing the viewer, so its depth is the axis depth: at most one bond radius behind
// the true surface.
export const BOND_VS = `${HEADER}
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

export const BOND_FS = `${HEADER}
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

export const LINE_VS = `${HEADER}
layout(location = 0) in vec3 aPos;
uniform mat4 uView;
uniform mat4 uProj;
void main() { gl_Position = uProj * uView * vec4(aPos, 1.0); }
`;

export const LINE_FS = `${HEADER}
uniform vec4 uColor;
out vec4 outColor;
void main() { outColor = uColor; }
`;
