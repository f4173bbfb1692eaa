// In-page helpers for the e2e specs. The specs drive everything with page.evaluate(); this file
// only makes the package and a few tools reachable as globals:
//   window.mana        the @mana/websocket module (the real npm build)
//   window.e2e         helpers: Sha256 (incremental), fillSeeded, collect(), record()
//   window.manaLoaded  a promise that resolves once the wasm core is loaded
import * as mana from '@mana/websocket';

// ---- incremental SHA-256 (crypto.subtle has no streaming API) ------------------------------------
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export class Sha256 {
  #h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  #w = new Uint32Array(64);
  #buf = new Uint8Array(64);
  #bufLen = 0;
  #total = 0;

  get length() {
    return this.#total;
  }

  update(data) {
    let i = 0;
    this.#total += data.length;
    if (this.#bufLen > 0) {
      const n = Math.min(64 - this.#bufLen, data.length);
      this.#buf.set(data.subarray(0, n), this.#bufLen);
      this.#bufLen += n;
      i = n;
      if (this.#bufLen < 64) return this;
      this.#block(this.#buf, 0);
      this.#bufLen = 0;
    }
    for (; i + 64 <= data.length; i += 64) this.#block(data, i);
    if (i < data.length) {
      this.#buf.set(data.subarray(i));
      this.#bufLen = data.length - i;
    }
    return this;
  }

  /** The state as plain JSON (a page saves it to sessionStorage to go on after a reload). */
  snapshot() {
    return {
      h: Array.from(this.#h),
      buf: Array.from(this.#buf.subarray(0, this.#bufLen)),
      total: this.#total,
    };
  }

  /** A hash that goes on from snapshot() `s`. */
  static restore(s) {
    const x = new Sha256();
    x.#h = Uint32Array.from(s.h);
    x.#buf.set(s.buf);
    x.#bufLen = s.buf.length;
    x.#total = s.total;
    return x;
  }

  hex() {
    const bits = this.#total * 8;
    const pad = new Uint8Array((this.#bufLen < 56 ? 56 : 120) - this.#bufLen + 8);
    pad[0] = 0x80;
    const dv = new DataView(pad.buffer);
    dv.setUint32(pad.length - 8, Math.floor(bits / 2 ** 32));
    dv.setUint32(pad.length - 4, bits >>> 0);
    const h = this.#h.slice();
    const saved = { buf: this.#buf.slice(), len: this.#bufLen, total: this.#total };
    this.update(pad);
    const out = Array.from(this.#h, (x) => x.toString(16).padStart(8, '0')).join('');
    this.#h = h;
    this.#buf = saved.buf;
    this.#bufLen = saved.len;
    this.#total = saved.total;
    return out;
  }

  #block(d, o) {
    const w = this.#w;
    for (let t = 0; t < 16; t++) {
      w[t] =
        (d[o + 4 * t] << 24) |
        (d[o + 4 * t + 1] << 16) |
        (d[o + 4 * t + 2] << 8) |
        d[o + 4 * t + 3];
    }
    for (let t = 16; t < 64; t++) {
      const a = w[t - 15];
      const b = w[t - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
    }
    const H = this.#h;
    let a = H[0],
      b = H[1],
      c = H[2],
      e = H[4],
      f = H[5],
      g = H[6],
      dd = H[3],
      h = H[7];
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (h + S1 + ch + K[t] + w[t]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      h = g;
      g = f;
      f = e;
      e = (dd + t1) | 0;
      dd = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    H[0] += a;
    H[1] += b;
    H[2] += c;
    H[3] += dd;
    H[4] += e;
    H[5] += f;
    H[6] += g;
    H[7] += h;
  }
}

/** Byte i of the seeded stream depends only on (seed, i); identical to e2e/fixtures/targets.ts. */
export function fillSeeded(out, seed, offset) {
  for (let i = 0; i < out.length; i++) {
    const pos = offset + i;
    let x = (Math.imul(pos >>> 2, 0x9e3779b1) ^ Math.imul(seed, 0x85ebca6b) ^ 0x27d4eb2f) >>> 0;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = (x >>> ((pos & 3) * 8)) & 0xff;
  }
}

/**
 * Consumes everything a channel delivers, hashing it (after the first `skip` bytes, e.g. the SSH
 * banner) and keeping only counters: nothing is retained, so the heap stays flat.
 */
export function collect(ch, { skip = 0 } = {}) {
  const state = { received: 0, hashed: 0, head: '', sha: new Sha256(), waiters: [] };
  const dec = new TextDecoder();
  ch.onData(({ data }) => {
    let d = data;
    if (state.received < skip) {
      const n = Math.min(skip - state.received, d.length);
      state.head += dec.decode(d.subarray(0, n));
      d = d.subarray(n);
    }
    state.received += data.length;
    state.sha.update(d);
    state.hashed += d.length;
    ch.consume(data.length);
    for (const w of [...state.waiters]) {
      if (state.received >= w.n) {
        state.waiters.splice(state.waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  state.until = (n, ms = 30000) =>
    state.received >= n
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
          const t = setTimeout(
            () => reject(new Error(`only ${state.received}/${n} bytes arrived`)),
            ms,
          );
          state.waiters.push({ n, resolve: () => (clearTimeout(t), resolve()) });
        });
  return state;
}

/** Records a connection's events (state changes, policy transitions, diagnostic codes). */
export function record(conn) {
  const r = { states: [], policy: [], diagnostics: [], persistence: [] };
  conn.onStateChange((e) => r.states.push(e.error ? `${e.to}:${e.error.name}` : e.to));
  conn.onPolicy((p) => {
    if (p.kind === 'pause' || p.kind === 'resume') r.policy.push(`${p.kind}:${p.reason}`);
  });
  conn.onDiagnostic((d) => r.diagnostics.push(d.code));
  conn.onPersistence((p) => r.persistence.push(p.kind));
  return r;
}

window.mana = mana;
window.e2e = { Sha256, fillSeeded, collect, record };
window.manaLoaded = mana.loadCore().then(() => true);
