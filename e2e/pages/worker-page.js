// The session worker page (pages/worker.html): a real xterm.js terminal wired by ManaAttachAddon
// to a RemoteSshSession of ManaWorkerClient (the SSH session runs in the SharedWorker). The specs
// drive it through window.manaWorker with page.evaluate().
import { ManaAttachAddon, ManaWorkerClient, enrollSecurityKey } from '@mana/websocket';
import { Terminal } from '@xterm/xterm';

const term = new Terminal({ cols: 80, rows: 24, scrollback: 1000 });
term.open(document.getElementById('terminal'));

// resets: output chunks that start with RIS (a restored screen, or a frame of a lagging page).
const state = { events: [], hostKeys: [], kbdRounds: [], resets: 0 };
let client;
let view;
let addon;

function wire(v) {
  view = v;
  v.onClose(({ error }) => {
    state.events.push({ type: 'close', name: error?.name, code: error?.code });
  });
  v.onDetached((reason) => {
    state.events.push({ type: 'detached', reason });
  });
  v.onData((d) => {
    if (d[0] === 0x1b && d[1] === 0x63) state.resets++;
  });
  // One view on the terminal at a time; a read-only view gets no keystrokes and sends no resize.
  addon?.dispose();
  addon = new ManaAttachAddon(v, { bidirectional: !v.readOnly });
  term.loadAddon(addon);
}

function describe(e) {
  return {
    name: e?.name ?? 'Error',
    code: e?.code,
    message: String(e?.message ?? e),
    ...(Array.isArray(e?.methods) ? { methods: e.methods } : {}),
  };
}

window.manaWorker = {
  state,
  async start(options = {}) {
    client = await ManaWorkerClient.start(options);
    return client.mode;
  },
  async open(connect, session) {
    const v = await client.openSession(connect, {
      ...session,
      term: { cols: term.cols, rows: term.rows },
      hostKey: {
        verify: (info) => {
          state.hostKeys.push(info);
          return true;
        },
      },
    });
    wire(v);
    return v.sessionId;
  },
  /**
   * Opens a shell whose auth is `session.auth` (a list) followed by keyboard-interactive: each
   * round is recorded in state.kbdRounds and answered with `kbd.answer` for every prompt, or the
   * handler throws (`kbd.throws`) or never answers (`kbd.hang`). Returns the outcome (errors by name, code and methods).
   */
  async openKbd(connect, session, kbd) {
    try {
      const v = await client.openSession(connect, {
        ...session,
        auth: [
          ...(session.auth ?? []),
          {
            keyboardInteractive: async (prompts, info) => {
              state.kbdRounds.push({ prompts, info });
              if (kbd.throws) throw new Error('the user closed the dialog');
              if (kbd.hang) return new Promise(() => {}); // a dialog nobody answers
              return prompts.map(() => kbd.answer);
            },
          },
        ],
        term: { cols: term.cols, rows: term.rows },
      });
      wire(v);
      return { ok: true, sessionId: v.sessionId };
    } catch (e) {
      return { ok: false, ...describe(e) };
    }
  },
  /** enrollSecurityKey() in this page: the authorized_keys line and the credential to store. */
  async enrol(rpId, user) {
    const e = await enrollSecurityKey({ rpId, user });
    return { line: e.authorizedKeysLine, credential: e.credential };
  },
  /**
   * Opens a shell whose auth is `auth` (e.g. `{ securityKey }`: the worker asks this page to sign,
   * a worker has no navigator.credentials). Returns the outcome (errors by name, code, methods).
   */
  async openWith(connect, session, auth) {
    try {
      const v = await client.openSession(connect, {
        ...session,
        auth,
        term: { cols: term.cols, rows: term.rows },
      });
      wire(v);
      return { ok: true, sessionId: v.sessionId };
    } catch (e) {
      return { ok: false, ...describe(e) };
    }
  },
  async reattach(options = {}) {
    try {
      const v = await client.reattach(options);
      if (v === undefined) return { ok: false, name: 'none' };
      wire(v);
      return { ok: true, readOnly: v.readOnly, screenChars: v.restoredScreen.length };
    } catch (e) {
      return { ok: false, ...describe(e) };
    }
  },
  async attach(sessionId, secret, options = {}) {
    try {
      const v = await client.attach(sessionId, secret, options);
      wire(v);
      return { ok: true, readOnly: v.readOnly, screenChars: v.restoredScreen.length };
    } catch (e) {
      return { ok: false, ...describe(e) };
    }
  },
  stored() {
    return JSON.parse(sessionStorage.getItem('mana-websocket:worker-sessions') ?? '{}');
  },
  /** Keystrokes through xterm (as typed), so they pass the addon. */
  type(text) {
    term.input(text, true);
  },
  /** The terminal's text: scrollback and screen, trailing blanks trimmed. */
  text() {
    const buf = term.buffer.active;
    const lines = [];
    for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n').replace(/\n+$/, '');
  },
  /** Detaches this page's view (the session stays in the worker for its grace). */
  detach() {
    view?.dispose();
  },
  viewState() {
    return view?.state;
  },
  /** view.write() directly (not through xterm): the error a read-only view throws. */
  write(text) {
    try {
      return { ok: true, n: view.write(new window.TextEncoder().encode(text)) };
    } catch (e) {
      return { ok: false, ...describe(e) };
    }
  },
  /** The page's terminal: which buffer is active (a full-screen program uses `alternate`). */
  screen() {
    const buf = term.buffer.active;
    const rows = [];
    for (let i = 0; i < term.rows; i++) {
      rows.push(buf.getLine(buf.viewportY + i)?.translateToString(true) ?? '');
    }
    return { type: buf.type, rows, cursorX: buf.cursorX, cursorY: buf.cursorY };
  },
};
window.manaLoaded = Promise.resolve(true);
