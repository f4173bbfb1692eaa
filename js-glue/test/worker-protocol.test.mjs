// SPDX-License-Identifier: Apache-2.0
// The page <-> session worker messages (src/worker/protocol.ts) and the attach secrets
// (src/worker/secret.ts): every malformed message is a typed WorkerProtocolError, bounds hold.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lib } from './helpers.mjs';
import { newSecret, protocol, secretsEqual } from './worker-helpers.mjs';

const { parsePageMessage, parseWorkerMessage, WorkerProtocolError, limits } = protocol;

/** A minimal session of an `open` message. */
function valid0Session() {
  return { target: { host: 'h', port: 22 }, username: 'u', auth: { password: 'p' } };
}

const valid = [
  { v: 1, type: 'hello', pageId: 'p1', lock: 'mana:page:p1' },
  { v: 1, type: 'hello', pageId: 'p1', lock: null },
  {
    v: 1,
    type: 'open',
    req: 1,
    connect: { url: 'wss://gw.example/ws', token: 'jwt' },
    session: {
      target: { host: 'h', port: 22 },
      username: 'u',
      auth: { privateKey: 'k' },
      term: { cols: 80, rows: 24, env: { LANG: 'C' } },
      verifyHostKey: true,
    },
    graceMs: 1000,
    scrollback: 500,
    stream: true,
  },
  {
    v: 1,
    type: 'open',
    req: 2,
    connect: { url: 'ws://gw/ws' },
    session: {
      target: { host: 'h', port: 22 },
      username: 'u',
      auth: [
        { privateKey: 'k', passphrase: 'p' },
        { password: 'pw' },
        { keyboardInteractive: true },
      ],
      command: 'true',
    },
  },
  {
    v: 1,
    type: 'open',
    req: 4,
    connect: { url: 'ws://x' },
    session: { ...valid0Session(), command: 'true', algorithms: 'legacy' },
  },
  {
    v: 1,
    type: 'open',
    req: 5,
    connect: { url: 'ws://x' },
    session: { ...valid0Session(), algorithms: { kex: ['curve25519-sha256'], mac: [] } },
  },
  { v: 1, type: 'attach', req: 2, sessionId: 's', secret: 'x', readOnly: false, takeOver: true },
  { v: 1, type: 'hostkey-answer', req: 3, accept: true },
  { v: 1, type: 'kbd-answer', req: 4, answers: ['secret', ''] },
  { v: 1, type: 'kbd-answer', req: 4, answers: null },
  {
    v: 1,
    type: 'open',
    req: 6,
    connect: { url: 'ws://x' },
    session: {
      ...valid0Session(),
      auth: [
        { securityKey: { credentialId: 'aWQ', publicKey: 'sk-ecdsa k', rpId: 'localhost' } },
        {
          securityKey: {
            credentialId: 'aWQ',
            publicKey: 'k',
            rpId: 'r',
            userVerification: 'required',
            timeoutMs: 5000,
          },
        },
      ],
    },
  },
  {
    v: 1,
    type: 'open',
    req: 7,
    connect: { url: 'ws://x' },
    session: {
      ...valid0Session(),
      via: [
        {
          target: { host: 'bastion', port: 22 },
          username: 'u',
          auth: [{ password: 'p' }, { keyboardInteractive: true }],
          verifyHostKey: true,
        },
      ],
    },
  },
  { v: 1, type: 'sign-answer', req: 5, signature: new ArrayBuffer(300) },
  { v: 1, type: 'sign-answer', req: 5, signature: null },
  {
    v: 1,
    type: 'sign-answer',
    req: 5,
    signature: null,
    code: 'presence_not_given',
    message: 'no touch',
  },
  { v: 1, type: 'input', sessionId: 's', data: new ArrayBuffer(4) },
  { v: 1, type: 'consume', sessionId: 's', n: 10 },
  { v: 1, type: 'resize', sessionId: 's', cols: 100, rows: 40 },
  { v: 1, type: 'detach', sessionId: 's' },
  { v: 1, type: 'close', sessionId: 's' },
  { v: 1, type: 'bye' },
];

test('every page message type parses back to itself', () => {
  for (const m of valid) assert.deepEqual(parsePageMessage(m), m, m.type);
});

test('malformed page messages are WorkerProtocolErrors, never other exceptions', () => {
  const bad = [
    null,
    undefined,
    42,
    'hello',
    [],
    {},
    { type: 'hello', pageId: 'p', lock: null }, // no version
    { v: 1, type: 'nope' },
    { v: 1, type: 'hello', pageId: 7, lock: null },
    { v: 1, type: 'hello', pageId: 'x'.repeat(65), lock: null },
    { v: 1, type: 'input', sessionId: 's', data: new Uint8Array(4) }, // a view, not a buffer
    { v: 1, type: 'input', sessionId: 's', data: new ArrayBuffer(limits.maxInputBytes + 1) },
    { v: 1, type: 'consume', sessionId: 's', n: -1 },
    { v: 1, type: 'consume', sessionId: 's', n: 1.5 },
    { v: 1, type: 'consume', sessionId: 's', n: '5' },
    { v: 1, type: 'resize', sessionId: 's', cols: 0, rows: 24 },
    { v: 1, type: 'resize', sessionId: 's', cols: 80, rows: limits.maxRows + 1 },
    { v: 1, type: 'attach', req: 1, sessionId: 's', secret: 'x', readOnly: 'no', takeOver: false },
    {
      v: 1,
      type: 'attach',
      req: -1,
      sessionId: 's',
      secret: 'x',
      readOnly: false,
      takeOver: false,
    },
    { v: 1, type: 'open', req: 1, connect: { url: 'http://x' }, session: valid[2].session },
    {
      v: 1,
      type: 'open',
      req: 1,
      connect: { url: 'ws://x' },
      session: { ...valid[2].session, auth: { keyboardInteractive: 1 } },
    },
    {
      v: 1,
      type: 'open',
      req: 1,
      connect: { url: 'ws://x' },
      session: { ...valid[2].session, auth: [] },
    },
    {
      v: 1,
      type: 'open',
      req: 1,
      connect: { url: 'ws://x' },
      session: {
        ...valid[2].session,
        auth: Array.from({ length: limits.maxAuthMethods + 1 }, () => ({ password: 'p' })),
      },
    },
    {
      v: 1,
      type: 'open',
      req: 1,
      connect: { url: 'ws://x' },
      session: { ...valid[2].session, auth: [{ password: 'p' }, { keyboardInteractive: 'yes' }] },
    },
    ...[
      { credentialId: 'a', publicKey: 'k' }, // no rpId
      { credentialId: 'a', publicKey: 'k', rpId: 'r', userVerification: 'always' },
      { credentialId: 'a', publicKey: 'k', rpId: 'r', timeoutMs: 0 },
      { credentialId: 'a'.repeat(1025), publicKey: 'k', rpId: 'r' },
      { credentialId: 'a', publicKey: 'k', rpId: 'r'.repeat(254) },
      'sk-ecdsa k',
    ].map((securityKey) => ({
      v: 1,
      type: 'open',
      req: 1,
      connect: { url: 'ws://x' },
      session: { ...valid[2].session, auth: { securityKey } },
    })),
    {
      v: 1,
      type: 'open',
      req: 1,
      connect: { url: 'ws://x' },
      session: {
        ...valid[2].session,
        via: [
          {
            target: { host: 'b', port: 22 },
            username: 'u',
            auth: [{ securityKey: { credentialId: 'a', publicKey: 'k', rpId: 'r' } }],
          },
        ],
      },
    },
    { v: 1, type: 'sign-answer', req: 1 }, // no signature
    { v: 1, type: 'sign-answer', req: 1, signature: new Uint8Array(8) }, // a view, not a buffer
    { v: 1, type: 'sign-answer', req: 1, signature: new ArrayBuffer(limits.maxSignatureBytes + 1) },
    { v: 1, type: 'sign-answer', req: 1, signature: null, code: 'c'.repeat(65) },
    { v: 1, type: 'kbd-answer', req: 1, answers: 'secret' },
    { v: 1, type: 'kbd-answer', req: 1, answers: [5] },
    { v: 1, type: 'kbd-answer', req: 1 },
    { v: 1, type: 'kbd-answer', req: 1, answers: Array(limits.maxKbdPrompts + 1).fill('a') },
    { v: 1, type: 'kbd-answer', req: 1, answers: ['a'.repeat(limits.maxSecretText + 1)] },
    {
      v: 1,
      type: 'open',
      req: 1,
      connect: { url: 'ws://x' },
      session: { ...valid[2].session, target: { host: 'h', port: 70000 } },
    },
    {
      v: 1,
      type: 'open',
      req: 1,
      connect: { url: 'ws://x' },
      session: valid[2].session,
      graceMs: 10,
    },
    {
      v: 1,
      type: 'open',
      req: 1,
      connect: { url: 'ws://x' },
      session: valid[2].session,
      stream: 'yes',
    },
    {
      v: 1,
      type: 'open',
      req: 1,
      connect: { url: 'ws://x' },
      session: valid[2].session,
      graceMs: limits.maxGraceMs + 1,
    },
    // algorithms: a preset name, or lists of bounded names per known kind
    ...[
      'weak',
      { hostkey: ['ssh-rsa'] },
      { cipher: 'aes128-ctr' },
      { mac: [7] },
      { kex: ['x'.repeat(65)] },
      { kex: Array(65).fill('a') },
    ].map((algorithms) => ({
      v: 1,
      type: 'open',
      req: 1,
      connect: { url: 'ws://x' },
      session: { ...valid[2].session, algorithms },
    })),
  ];
  for (const m of bad) {
    assert.throws(() => parsePageMessage(m), WorkerProtocolError, JSON.stringify(m));
  }
  const e = (() => {
    try {
      parsePageMessage({ v: 2, type: 'bye' });
    } catch (err) {
      return err;
    }
  })();
  assert.ok(e instanceof WorkerProtocolError);
  assert.equal(e.code, 'version');
  assert.equal(e.name, 'WorkerProtocolError');
  assert.equal(lib.WorkerProtocolError, WorkerProtocolError, 'exported from the package');
});

test('keyboard-interactive answers are secrets: not in the error of a malformed answer', () => {
  for (const answers of [
    ['hunter2-secret', 7],
    ['hunter2-secret', 'x'.repeat(70_000)],
  ]) {
    const e = (() => {
      try {
        parsePageMessage({ v: 1, type: 'kbd-answer', req: 1, answers });
      } catch (err) {
        return err;
      }
    })();
    assert.ok(e instanceof WorkerProtocolError);
    assert.ok(!e.message.includes('hunter2'), e.message);
  }
});

test('worker messages are validated on the page too', () => {
  const ok = [
    { v: 1, type: 'ready', mode: 'shared' },
    { v: 1, type: 'opened', req: 1, sessionId: 's', secret: 'x' },
    {
      v: 1,
      type: 'attached',
      req: 1,
      sessionId: 's',
      readOnly: false,
      screen: '\x1b[1mhi',
      offset: 0,
    },
    {
      v: 1,
      type: 'hostkey',
      req: 1,
      info: {
        host: 'h',
        port: 22,
        algorithm: 'ssh-ed25519',
        fingerprint: 'SHA256:x',
        known: 'new',
      },
    },
    {
      v: 1,
      type: 'hostkey',
      req: 2,
      open: 7,
      info: { host: 'h', port: 22, algorithm: 'a', fingerprint: 'f', known: 'match' },
    },
    { v: 1, type: 'data', sessionId: 's', data: new ArrayBuffer(3), stream: 'stdout' },
    { v: 1, type: 'sign', req: 3, open: 7, data: new ArrayBuffer(300) },
    { v: 1, type: 'ready', mode: 'shared', inputRoom: true, via: true, securityKey: true },
    { v: 1, type: 'exit', sessionId: 's', code: 3 },
    { v: 1, type: 'detached', sessionId: 's', reason: 'taken-over' },
    { v: 1, type: 'session-ended', sessionId: 's', reason: 'detached-too-long' },
    { v: 1, type: 'error', req: 4, code: 'bad-secret', message: 'no' },
    {
      v: 1,
      type: 'kbd',
      req: 2,
      open: 1,
      name: 'n',
      instruction: 'i',
      prompts: [
        { prompt: 'Password: ', echo: false },
        { prompt: 'Code: ', echo: true },
      ],
    },
    { v: 1, type: 'kbd', req: 3, open: 1, hop: 3, name: '', instruction: '', prompts: [] },
    {
      v: 1,
      type: 'error',
      req: 1,
      code: 'open-failed',
      message: 'auth_failed: no',
      failure: {
        name: 'SshAuthError',
        code: 'auth_failed',
        origin: 'remote',
        message: 'no',
        sshCode: -18,
        methods: ['publickey', 'keyboard-interactive'],
      },
    },
    {
      v: 1,
      type: 'error',
      req: 1,
      code: 'open-failed',
      message: 'hostkey_changed: x',
      failure: {
        name: 'HostKeyError',
        code: 'hostkey_changed',
        origin: 'local',
        message: 'x',
        sshCode: 0,
        hostKey: {
          host: 'h',
          port: 22,
          algorithm: 'ssh-ed25519',
          fingerprint: 'SHA256:x',
          known: 'changed',
        },
      },
    },
  ];
  for (const m of ok) assert.deepEqual(parseWorkerMessage(m), m, m.type);
  for (const m of [
    { v: 1, type: 'ready', mode: 'other' },
    { v: 1, type: 'session-ended', sessionId: 's', reason: 'whatever' },
    { v: 1, type: 'data', sessionId: 's', data: 'text' },
    { v: 1, type: 'attached', req: 1, sessionId: 's', readOnly: false, screen: '', offset: -1 },
    { v: 1, type: 'hostkey', req: 1, info: { host: 'h', port: 22, known: 'changed' } },
    { v: 0, type: 'ready', mode: 'shared' },
    { v: 1, type: 'kbd', req: 1, open: 1, name: '', instruction: '', prompts: [{ prompt: 'p' }] },
    {
      v: 1,
      type: 'kbd',
      req: 1,
      open: 1,
      name: '',
      instruction: '',
      prompts: Array(limits.maxKbdPrompts + 1).fill({ prompt: 'p', echo: false }),
    },
    { v: 1, type: 'kbd', req: 1, name: '', instruction: '', prompts: [] }, // no `open`
    { v: 1, type: 'kbd', req: 1, open: 1, hop: 4, name: '', instruction: '', prompts: [] },
    { v: 1, type: 'sign', req: 1, data: new ArrayBuffer(8) }, // no `open`
    { v: 1, type: 'sign', req: 1, open: 1, data: new ArrayBuffer(limits.maxSignBytes + 1) },
    { v: 1, type: 'sign', req: 1, open: 1, data: 'bytes' },
    {
      v: 1,
      type: 'error',
      code: 'open-failed',
      message: 'm',
      failure: { name: 'SshAuthError', code: 'auth_failed', origin: 'elsewhere', message: 'm' },
    },
    {
      v: 1,
      type: 'error',
      code: 'open-failed',
      message: 'm',
      failure: { name: 'SshAuthError', code: 'c', origin: 'local', message: 'm', methods: [1] },
    },
  ]) {
    assert.throws(() => parseWorkerMessage(m), WorkerProtocolError, JSON.stringify(m));
  }
});

test('transferable() moves a whole buffer and copies a view once', () => {
  const whole = new Uint8Array([1, 2, 3]);
  assert.equal(protocol.transferable(whole), whole.buffer);
  const big = new Uint8Array(16);
  const view = big.subarray(4, 8);
  const t = protocol.transferable(view);
  assert.notEqual(t, big.buffer);
  assert.equal(t.byteLength, 4);
});

test('attach secrets: 256 random bits, constant-time comparison semantics', () => {
  const a = newSecret();
  const b = newSecret();
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(a, b);
  assert.equal(secretsEqual(a, a), true);
  assert.equal(secretsEqual(`${a}`, a.slice()), true);
  const flip = (s, i) => s.slice(0, i) + (s[i] === '0' ? '1' : '0') + s.slice(i + 1);
  assert.equal(secretsEqual(flip(a, 0), a), false, 'first char differs');
  assert.equal(secretsEqual(flip(a, 63), a), false, 'last char differs');
  assert.equal(secretsEqual(a.slice(0, 63), a), false, 'shorter');
  assert.equal(secretsEqual(`${a}0`, a), false, 'longer');
  assert.equal(secretsEqual('', a), false, 'empty');
  assert.equal(secretsEqual(a.slice(0, 32).repeat(2), a), false, 'a repeated prefix');
});

test('connection messages: round-trips, and malformed ones are WorkerProtocolErrors', () => {
  const session = { target: { host: 'h', port: 22 }, username: 'u', auth: { password: 'p' } };
  const pageOk = [
    { v: 1, type: 'connect', req: 1, connect: { url: 'wss://gw/ws', token: 't' }, graceMs: 500 },
    { v: 1, type: 'connect', req: 1, connect: { url: 'ws://gw/ws' } },
    { v: 1, type: 'attach-connection', req: 2, connectionId: 'c', secret: 's' },
    { v: 1, type: 'open-channel', req: 3, connectionId: 'c', target: { host: 'h', port: 7 } },
    {
      v: 1,
      type: 'open-channel',
      req: 3,
      connectionId: 'c',
      target: { host: 'h', port: 7 },
      graceMs: 1000,
    },
    { v: 1, type: 'release-connection', connectionId: 'c' },
    { v: 1, type: 'open', req: 4, connectionId: 'c', session },
  ];
  for (const m of pageOk) assert.deepEqual(parsePageMessage(m), m, m.type);
  const workerOk = [
    { v: 1, type: 'connected', req: 1, connectionId: 'c', secret: 's' },
    { v: 1, type: 'connection-ended', connectionId: 'c', reason: 'detached-too-long' },
    { v: 1, type: 'connection-ended', connectionId: 'c', reason: 'error', code: 'x', message: 'm' },
    { v: 1, type: 'writable', sessionId: 's', room: 4096 },
    { v: 1, type: 'ready', mode: 'page', inputRoom: true },
    { v: 1, type: 'ready', mode: 'page', inputRoom: true, via: true },
  ];
  for (const m of workerOk) assert.deepEqual(parseWorkerMessage(m), m, m.type);
  const pageBad = [
    { v: 1, type: 'connect', req: 1, connect: { url: 'http://gw/' } },
    { v: 1, type: 'connect', req: 1, connect: { url: 'ws://gw/', token: 5 } },
    { v: 1, type: 'connect', req: 1, connect: { url: 'ws://gw/' }, graceMs: 1 },
    { v: 1, type: 'connect', req: 1 },
    { v: 1, type: 'attach-connection', req: 2, connectionId: 'c' },
    { v: 1, type: 'attach-connection', req: 2, connectionId: 'c'.repeat(65), secret: 's' },
    { v: 1, type: 'attach-connection', req: 2, connectionId: 'c', secret: 's'.repeat(129) },
    { v: 1, type: 'open-channel', req: 3, connectionId: 'c', target: { host: 'h', port: 0 } },
    {
      v: 1,
      type: 'open-channel',
      req: 3,
      connectionId: 'c',
      target: { host: 'h'.repeat(256), port: 1 },
    },
    { v: 1, type: 'open-channel', req: 3, connectionId: 'c' },
    { v: 1, type: 'open-channel', req: 3, target: { host: 'h', port: 1 } },
    {
      v: 1,
      type: 'open-channel',
      req: 3,
      connectionId: 'c',
      target: { host: 'h', port: 1 },
      graceMs: limits.maxGraceMs + 1,
    },
    { v: 1, type: 'release-connection' },
    { v: 1, type: 'release-connection', connectionId: 7 },
    // `open`: exactly one of connect and connectionId
    { v: 1, type: 'open', req: 4, session },
    { v: 1, type: 'open', req: 4, connect: { url: 'ws://gw/' }, connectionId: 'c', session },
    { v: 1, type: 'open', req: 4, connectionId: 'c'.repeat(65), session },
  ];
  for (const m of pageBad) {
    assert.throws(() => parsePageMessage(m), WorkerProtocolError, JSON.stringify(m));
  }
  const workerBad = [
    { v: 1, type: 'connected', req: 1, connectionId: 'c' },
    { v: 1, type: 'connected', req: -1, connectionId: 'c', secret: 's' },
    { v: 1, type: 'connection-ended', connectionId: 'c', reason: 'exit' },
    { v: 1, type: 'connection-ended', connectionId: 'c', reason: 'closed', code: 'x'.repeat(65) },
    { v: 1, type: 'connection-ended', reason: 'closed' },
    { v: 1, type: 'writable', sessionId: 's', room: -1 },
  ];
  for (const m of workerBad) {
    assert.throws(() => parseWorkerMessage(m), WorkerProtocolError, JSON.stringify(m));
  }
});

test('connection status, events and stats: round-trips, bounds, no credit grants', () => {
  const status = {
    state: 'reconnecting',
    pauseReasons: ['transport', 'app'],
    bufferedAmount: 12,
    storedSession: 'none',
    rttMs: 1.25,
    server: {
      server: 'mana-gateway/1',
      maxFrame: 1 << 20,
      heartbeatMs: 20000,
      idleTimeoutMs: 60000,
      maxChannels: 64,
      window: 262144,
      resumeTtlMs: null,
      route: 'gw-1',
    },
    lastError: { name: 'TransportError', code: 'transport_lost', origin: 'remote', message: 'm' },
  };
  const pageOk = [
    { v: 1, type: 'connection-status', req: 5, connectionId: 'c' },
    { v: 1, type: 'pause-connection', connectionId: 'c', on: true },
    { v: 1, type: 'close-connection', connectionId: 'c', code: 4001, reason: 'bye' },
    { v: 1, type: 'close-connection', connectionId: 'c', code: 1000, reason: '' },
    { v: 1, type: 'channel-stats', req: 6, sessionId: 's' },
  ];
  for (const m of pageOk) assert.deepEqual(parsePageMessage(m), m, m.type);
  const stats = {
    sent: 1,
    sendLimit: 2,
    acked: 1,
    received: 3,
    consumed: 3,
    recvLimit: 9,
    window: 6,
    replayBytes: 0,
  };
  const ev = (event) => ({ v: 1, type: 'connection-event', connectionId: 'c', status, event });
  const workerOk = [
    { v: 1, type: 'connected', req: 1, connectionId: 'c', secret: 's', status },
    { v: 1, type: 'connection-event', connectionId: 'c', req: 5, status },
    ev({ kind: 'state', from: 'ready', to: 'reconnecting', error: status.lastError }),
    ev({ kind: 'state', from: 'reconnecting', to: 'ready' }),
    ev({ kind: 'diagnostic', code: 'rtt_sample', at: 1.5e12, phase: 'ready', detail: 'd' }),
    ev({ kind: 'pause', reason: 'app', reasons: ['app'] }),
    ev({ kind: 'resume', reason: 'app', reasons: [] }),
    ev({ kind: 'rate_limited', channel: 3, detail: 'slow' }),
    ev({ kind: 'persistence', persistence: 'load', storage: 'memory', found: false }),
    { v: 1, type: 'channel-stats', req: 6, sessionId: 's', stats },
    { v: 1, type: 'channel-stats', req: 6, sessionId: 's', stats: null },
  ];
  for (const m of workerOk) assert.deepEqual(parseWorkerMessage(m), m, JSON.stringify(m.event));
  const pageBad = [
    { v: 1, type: 'close-connection', connectionId: 'c', code: 1001, reason: '' },
    { v: 1, type: 'close-connection', connectionId: 'c', code: 5000, reason: '' },
    { v: 1, type: 'close-connection', connectionId: 'c', code: 4000, reason: 'r'.repeat(124) },
    { v: 1, type: 'pause-connection', connectionId: 'c', on: 'yes' },
    { v: 1, type: 'connection-status', connectionId: 'c' },
    { v: 1, type: 'channel-stats', req: 1 },
  ];
  for (const m of pageBad) {
    assert.throws(() => parsePageMessage(m), WorkerProtocolError, JSON.stringify(m));
  }
  const workerBad = [
    { v: 1, type: 'connection-event', connectionId: 'c' },
    { v: 1, type: 'connection-event', connectionId: 'c', status: { ...status, state: 'open' } },
    {
      v: 1,
      type: 'connection-event',
      connectionId: 'c',
      status: { ...status, pauseReasons: ['detached'] },
    },
    { v: 1, type: 'connection-event', connectionId: 'c', status: { ...status, rttMs: -1 } },
    { v: 1, type: 'connection-event', connectionId: 'c', status: { ...status, server: {} } },
    ev({ kind: 'credit_grant', channel: 1, amount: 5 }),
    ev({ kind: 'diagnostic', code: 'x', at: Number.NaN, phase: 'p', detail: '' }),
    ev({
      kind: 'diagnostic',
      code: 'x',
      at: 1,
      phase: 'p',
      detail: 'd'.repeat(limits.maxText + 1),
    }),
    ev({ kind: 'state', from: 'ready', to: 'gone' }),
    { v: 1, type: 'channel-stats', req: 6, sessionId: 's', stats: { ...stats, sent: -1 } },
    { v: 1, type: 'channel-stats', req: 6, sessionId: 's' },
  ];
  for (const m of workerBad) {
    assert.throws(() => parseWorkerMessage(m), WorkerProtocolError, JSON.stringify(m));
  }
});
