// The mana-websocket demo page: an xterm.js terminal on an SSH session that runs in this page
// (@mana/websocket + its wasm SSH engine) over one WebSocket through mana-gateway. The terminal
// is wired by the ManaAttachAddon (term.loadAddon), next to xterm's fit, web-links, search and
// clipboard (OSC 52) addons. Keys: Ctrl+Shift+C copies the selection, Ctrl+Shift+V pastes (the
// browser's paste), Ctrl+Shift+F opens the search box.
//
// The demo server (scripts/demo.mjs) serves this page, GET /api/demo (the embedded default
// target: loopback sshd, demo user and key) and POST /api/token (a short-lived HS256 JWT for the
// gateway; never put into a URL). `window.manaDemo` exposes the live objects for make demo-check
// and the Playwright journeys.
import '@xterm/xterm/css/xterm.css';
import './style.css';
import { ClipboardAddon, type IClipboardProvider } from '@xterm/addon-clipboard';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { Terminal } from '@xterm/xterm';
import * as mana from '@mana/websocket';
import {
  AuthError,
  ChannelOpenError,
  connect,
  HostKeyError,
  ManaAttachAddon,
  ManaError,
  PolicyError,
  SecurityKeyError,
  SessionLostError,
  SshAuthError,
  SshSession,
  TransportError,
  type Connection,
  type HostKeyInfo,
  type SshAuthMethod,
  type SshExitEvent,
} from '@mana/websocket';
import { initSecurityKeyPanel, type SecurityKeyPanel } from './security-key';

type AuthOption = SshAuthMethod;

interface DemoDefaults {
  gatewayUrl: string;
  target: { host: string; port: number };
  user: string;
  password?: string;
  privateKey?: string;
  hostKey?: { algorithm: string; fingerprint: string };
  /** The demo server appends security-key lines to its sshd (POST /api/authorized-key). */
  authorizeKeys?: boolean;
}

// ---- DOM -----------------------------------------------------------------------------------------

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e as T;
}

const form = el<HTMLFormElement>('connect-form');
const termBox = el<HTMLDivElement>('terminal');
const banner = el<HTMLDivElement>('banner');
const btnReconnect = el<HTMLButtonElement>('btn-reconnect');
const btnDisconnect = el<HTMLButtonElement>('btn-disconnect');
const btnConnect = el<HTMLButtonElement>('btn-connect');
const hkDialog = el<HTMLDialogElement>('hostkey-dialog');
const btnSearch = el<HTMLButtonElement>('btn-search');
const searchBox = el<HTMLFormElement>('search');
const searchInput = el<HTMLInputElement>('search-input');
const field = (name: string): HTMLInputElement | HTMLTextAreaElement => {
  const f = form.elements.namedItem(name);
  if (!(f instanceof HTMLInputElement || f instanceof HTMLTextAreaElement)) {
    throw new Error(`form field ${name} missing`);
  }
  return f;
};
const status = {
  state: el('st-state'),
  rtt: el('st-rtt'),
  buffered: el('st-buffered'),
  paused: el('st-paused'),
  resumes: el('st-resumes'),
  bytes: el('st-bytes'),
  pending: el('st-pending'),
  target: el('st-target'),
};

function showBanner(text: string, kind: 'error' | 'hard' | 'info' = 'error'): void {
  banner.textContent = text;
  banner.className = kind;
  banner.dataset.kind = kind;
  banner.hidden = false;
}
function clearBanner(): void {
  banner.hidden = true;
  banner.textContent = '';
  delete banner.dataset.kind;
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// ---- errors: one clear sentence per typed error ---------------------------------------------------

function describeError(e: unknown): { text: string; hard: boolean } {
  if (e instanceof HostKeyError) {
    const changed = e.code === 'hostkey_changed';
    return {
      text:
        (changed
          ? `HOST KEY CHANGED for ${e.hostKey.host}:${e.hostKey.port}: the server now presents ` +
            `${e.hostKey.algorithm} ${e.hostKey.fingerprint}, which is not the key stored on ` +
            'first use. This can be an attack.\n'
          : `Host key rejected: ${e.message}\n`) +
        'Nothing was sent after the key exchange.' +
        (changed
          ? ' If the server really got a new key, remove the stored one (forgetHostKey, or clear ' +
            "this site's storage) and connect again."
          : ''),
      hard: true,
    };
  }
  if (e instanceof SecurityKeyError) {
    return { text: `Security key (${e.code}): ${e.message}`, hard: false };
  }
  if (e instanceof SshAuthError) {
    const allowed = e.methods.length ? ` The server allows: ${e.methods.join(', ')}.` : '';
    return { text: `SSH authentication failed: ${e.message}.${allowed}`, hard: false };
  }
  if (e instanceof AuthError) {
    return { text: `The gateway refused the token: ${e.message}`, hard: false };
  }
  if (e instanceof PolicyError) {
    return { text: `The gateway refused: ${e.message} (${e.code})`, hard: false };
  }
  if (e instanceof ChannelOpenError) {
    return { text: `The gateway could not open the target: ${e.message}`, hard: false };
  }
  if (e instanceof TransportError) {
    return { text: `Cannot reach the gateway: ${e.message}`, hard: false };
  }
  if (e instanceof SessionLostError) {
    return {
      text: `The SSH session is gone: ${e.message}. Use "Reconnect" to log in again.`,
      hard: false,
    };
  }
  if (e instanceof ManaError) {
    return { text: `${e.name} (${e.code}): ${e.message}`, hard: false };
  }
  return { text: e instanceof Error ? e.message : String(e), hard: false };
}

// ---- host-key prompt -------------------------------------------------------------------------------

function askHostKey(info: HostKeyInfo): Promise<boolean> {
  if (info.known === 'match') return Promise.resolve(true);
  if (info.known === 'changed') return Promise.resolve(false); // hard failure (HostKeyError)
  el('hk-host').textContent = `${info.host}:${info.port}`;
  el('hk-alg').textContent = info.algorithm;
  el('hk-fp').textContent = info.fingerprint;
  hkDialog.returnValue = '';
  hkDialog.showModal();
  return new Promise((resolve) => {
    hkDialog.addEventListener('close', () => resolve(hkDialog.returnValue === 'accept'), {
      once: true,
    });
  });
}

// ---- the terminal ---------------------------------------------------------------------------------

// No blinking cursor: xterm's DOM renderer blinks it with an endless CSS animation, which keeps a
// frame pending at all times; Chromium then holds the tasks that follow a key press (the echo's
// WebSocket message included) until that frame is presented, 0-17 ms later
// (docs/ssh-in-browser.md, "Keystroke latency: where the time went").
const term = new Terminal({
  cursorBlink: false,
  convertEol: false,
  scrollback: 5000,
  fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace',
  fontSize: 14,
});
const fit = new FitAddon();
term.loadAddon(fit);
// Links open in a new tab. OSC 52 lets remote programs (tmux, vim) set the clipboard; reading it
// is refused (answered empty), or the remote side could read whatever the user copied elsewhere.
const writeOnlyClipboard: IClipboardProvider = {
  readText: () => '',
  writeText: (selection, text) =>
    String(selection) === 'c' ? navigator.clipboard?.writeText(text) : undefined,
};
term.loadAddon(new WebLinksAddon());
term.loadAddon(new ClipboardAddon(undefined, writeOnlyClipboard));
const search = new SearchAddon();
term.loadAddon(search);
let termOpened = false;
/** The terminal was disposed (window.manaDemo.disposeTerminal): the page is done. */
let termDisposed = false;

// Terminal keys the page takes (returning false keeps them from xterm; nothing else is done on
// ordinary keys, so typing asks for no extra frame).
term.attachCustomKeyEventHandler((ev) => {
  if (ev.type !== 'keydown' || !ev.ctrlKey || !ev.shiftKey || ev.altKey || ev.metaKey) return true;
  switch (ev.code) {
    case 'KeyC': // copy the selection (Ctrl+C stays ^C)
      if (term.hasSelection()) void navigator.clipboard?.writeText(term.getSelection());
      ev.preventDefault();
      return false;
    case 'KeyV': // the browser's own paste (plain text): xterm's paste handler sends it
      return false;
    case 'KeyF':
      ev.preventDefault();
      openSearch();
      return false;
    default:
      return true;
  }
});

function openSearch(): void {
  searchBox.hidden = false;
  const selected = term.getSelection();
  if (selected !== '' && !selected.includes('\n')) searchInput.value = selected;
  searchInput.select();
  searchInput.focus();
}
function closeSearch(): void {
  searchBox.hidden = true;
  search.clearDecorations();
  if (!termDisposed) term.focus();
}
searchBox.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = searchInput.value;
  if (text === '') return;
  const back = (ev.submitter as HTMLButtonElement | null)?.value === 'prev';
  const found = back ? search.findPrevious(text) : search.findNext(text);
  searchBox.dataset.found = found ? '1' : '0';
});
searchInput.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape') {
    ev.preventDefault();
    closeSearch();
  } else if (ev.key === 'Enter' && ev.shiftKey) {
    ev.preventDefault();
    const found = search.findPrevious(searchInput.value);
    searchBox.dataset.found = found ? '1' : '0';
  }
});
el('search-close').addEventListener('click', closeSearch);
btnSearch.addEventListener('click', openSearch);

function showTerminal(): void {
  form.hidden = true;
  termBox.hidden = false;
  btnSearch.hidden = false;
  if (!termOpened) {
    term.open(termBox);
    termOpened = true;
  }
  fit.fit();
  term.focus();
}
new ResizeObserver(() => {
  if (termOpened && !termBox.hidden && !termDisposed) fit.fit();
}).observe(termBox);

// ---- session lifecycle -----------------------------------------------------------------------------

interface Live {
  conn: Connection;
  session: SshSession | undefined;
  attachment: ManaAttachAddon | undefined;
  exit: SshExitEvent | undefined;
  resumes: number;
  error: string | undefined;
}
let live: Live | undefined;

let securityKeys: SecurityKeyPanel | undefined;

function formValues(): {
  gateway: string;
  host: string;
  port: number;
  user: string;
  auth: AuthOption | { error: string };
} {
  const method = (form.elements.namedItem('method') as RadioNodeList).value;
  const passphrase = field('passphrase').value;
  const user = field('user').value.trim();
  const auth: AuthOption | { error: string } =
    method === 'password'
      ? { password: field('password').value }
      : method === 'securityKey'
        ? (securityKeys?.auth(user) ?? { error: 'The page is still loading.' })
        : passphrase
          ? { privateKey: field('privateKey').value, passphrase }
          : { privateKey: field('privateKey').value };
  return {
    gateway: field('gateway').value.trim(),
    host: field('host').value.trim(),
    port: Number(field('port').value),
    user,
    auth,
  };
}

async function fetchToken(): Promise<string> {
  const res = await fetch('/api/token', { method: 'POST', headers: { 'x-mana-demo': '1' } });
  if (!res.ok) throw new Error(`demo server refused a token: HTTP ${res.status}`);
  const body = (await res.json()) as { token: string };
  return body.token;
}

async function start(): Promise<void> {
  clearBanner();
  const v = formValues();
  if (!v.host || !v.user || !Number.isInteger(v.port) || v.port < 1 || v.port > 65535) {
    showBanner('Host, port (1..65535) and user are required.');
    return;
  }
  if ('error' in v.auth) {
    showBanner(v.auth.error);
    return;
  }
  if ('privateKey' in v.auth && !v.auth.privateKey.includes('PRIVATE KEY')) {
    showBanner('Paste an OpenSSH private key ("BEGIN OPENSSH PRIVATE KEY"), or choose password.');
    return;
  }
  const auth = v.auth;
  btnConnect.disabled = true;
  await stop();
  let conn: Connection | undefined;
  try {
    const token = await fetchToken();
    conn = await connect({ url: v.gateway, token });
    const l: Live = {
      conn,
      session: undefined,
      attachment: undefined,
      exit: undefined,
      resumes: 0,
      error: undefined,
    };
    live = l;
    conn.onDiagnostic((d) => {
      if (d.code === 'resume_accepted') l.resumes++;
    });
    conn.onStateChange(({ to, error }) => {
      if (to === 'closed' && error && !l.exit) {
        const { text, hard } = describeError(error);
        l.error = text;
        showBanner(text, hard ? 'hard' : 'error');
        finished();
      }
    });
    await conn.whenReady();
    showTerminal();
    const session = await conn.openSession({
      target: { host: v.host, port: v.port },
      username: v.user,
      auth,
      hostKey: { verify: askHostKey },
      term: { cols: term.cols, rows: term.rows, type: 'xterm-256color' },
      flow: 'manual',
    });
    l.session = session;
    status.target.textContent = `${v.user}@${v.host}:${v.port}`;
    // The addon owns the session: term.dispose() (or stop()) releases its wasm handle too.
    l.attachment = new ManaAttachAddon(session, { disposeSession: true });
    term.loadAddon(l.attachment);
    session.onExit((e) => {
      l.exit = e;
      const what = e.signal ? `signal ${e.signal}` : `code ${e.code ?? '?'}`;
      document.body.dataset.exitCode = String(e.code ?? '');
      showBanner(`The remote shell exited with ${what}.`, 'info');
    });
    session.onClose(({ error }) => {
      if (error && !l.exit) {
        const { text, hard } = describeError(error);
        l.error = text;
        showBanner(text, hard ? 'hard' : 'error');
      }
      finished();
    });
    btnDisconnect.hidden = false;
    term.focus();
  } catch (e) {
    const { text, hard } = describeError(e);
    if (live) live.error = text;
    showBanner(text, hard ? 'hard' : 'error');
    finished();
  } finally {
    btnConnect.disabled = false;
  }
}

/** The session ended (exit, close, error): keep the terminal visible, offer reconnect. */
let finishedFor: Live | undefined;
function finished(): void {
  btnDisconnect.hidden = true;
  btnReconnect.hidden = false;
  // Once per session (the connection's close and the session's onClose may both report it).
  if (!termOpened || termDisposed || (live !== undefined && finishedFor === live)) return;
  finishedFor = live;
  term.write('\r\n\x1b[2m[session closed]\x1b[0m\r\n');
}

async function stop(): Promise<void> {
  const l = live;
  live = undefined;
  if (!l) return;
  try {
    l.session?.close();
  } catch {
    // already closed
  }
  // Detaches from the terminal (leaving xterm's addon list) and disposes the session.
  l.attachment?.dispose();
  l.session?.dispose();
  l.conn.dispose();
  await Promise.resolve();
}

// ---- status bar ----------------------------------------------------------------------------------

// Every DOM write asks for a frame, and a key press that meets a pending frame has its echo held
// until that frame is presented (see the terminal above). So only changed text is written, and
// while the user types (a key in the last second) the refresh waits for xterm's next render: its
// writes then go into a frame that is drawn anyway.
function setText(node: HTMLElement, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

function renderStatus(): void {
  const l = live;
  setText(
    status.state,
    l
      ? l.exit
        ? `exited (${l.exit.signal ?? l.exit.code ?? '?'})`
        : l.session
          ? `${l.conn.state} / ssh ${l.session.state}`
          : l.conn.state
      : 'idle',
  );
  const rtt = l?.conn.rttMs;
  setText(status.rtt, typeof rtt === 'number' ? `${rtt.toFixed(1)} ms` : '-');
  setText(status.buffered, l ? fmtBytes(l.conn.bufferedAmount) : '-');
  const reasons: string[] = l ? [...l.conn.pauseReasons] : [];
  if (l?.attachment?.paused) reasons.push('xterm');
  setText(status.paused, reasons.length ? reasons.join(',') : 'no');
  setText(status.resumes, String(l?.resumes ?? 0));
  const s = l?.attachment?.stats();
  setText(status.bytes, s ? `${fmtBytes(s.written)} / ${fmtBytes(s.inputSent)}` : '-');
  setText(status.pending, s ? fmtBytes(s.pending) : '-');
}

let lastKeyAt = -Infinity;
let statusDue = false;
term.onData(() => {
  lastKeyAt = performance.now();
});
term.onBinary(() => {
  lastKeyAt = performance.now();
});
term.onRender(() => {
  if (!statusDue) return;
  statusDue = false;
  renderStatus();
});
setInterval(() => {
  if (performance.now() - lastKeyAt < 1000) {
    statusDue = true;
    return;
  }
  statusDue = false;
  renderStatus();
}, 250);

// ---- wiring ----------------------------------------------------------------------------------------

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void start();
});
for (const r of form.querySelectorAll<HTMLInputElement>('input[name=method]')) {
  r.addEventListener('change', () => {
    el('auth-key').hidden = r.value !== 'key' || !r.checked;
    el('auth-password').hidden = r.value !== 'password' || !r.checked;
    el('auth-sk').hidden = r.value !== 'securityKey' || !r.checked;
  });
}
field('keyFile').addEventListener('change', () => {
  const file = (field('keyFile') as HTMLInputElement).files?.[0];
  if (!file) return;
  if (file.size > 64 * 1024) {
    showBanner('That file is larger than 64 KiB: not an OpenSSH private key.');
    return;
  }
  void file.text().then((t) => {
    field('privateKey').value = t;
  });
});
btnDisconnect.addEventListener('click', () => {
  live?.session?.close();
});
btnReconnect.addEventListener('click', () => {
  btnReconnect.hidden = true;
  term.reset();
  void start();
});

async function init(): Promise<void> {
  let d: DemoDefaults | undefined;
  try {
    const res = await fetch('/api/demo');
    if (res.ok) d = (await res.json()) as DemoDefaults;
  } catch {
    // served without the demo server: empty form
  }
  const defGateway = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.hostname}:8022/`;
  field('gateway').value = d?.gatewayUrl ?? defGateway;
  field('host').value = d?.target.host ?? '127.0.0.1';
  field('port').value = String(d?.target.port ?? 22);
  field('user').value = d?.user ?? '';
  if (d?.privateKey) field('privateKey').value = d.privateKey;
  if (d?.password) field('password').value = d.password;
  securityKeys = initSecurityKeyPanel({
    user: () => field('user').value.trim(),
    canAuthorize: d?.authorizeKeys === true,
    onError: (text) => showBanner(text),
  });
  field('user').addEventListener('input', () => securityKeys?.refresh());
  if (d?.hostKey) {
    el('demo-note').textContent =
      `Demo target: the loopback sshd started by make demo. Its host key: ` +
      `${d.hostKey.algorithm} ${d.hostKey.fingerprint}`;
  }
  // After a reload: the library lists the SSH sessions the old page had (metadata stored next to
  // the transport token). Their keys lived in the old page, so they can only be reopened.
  let lost: { host: string; port: number; username: string; fingerprint?: string }[] = [];
  try {
    lost = SshSession.lostSessions({ url: field('gateway').value });
  } catch {
    // storage unavailable
  }
  const last = lost[lost.length - 1];
  if (last) {
    showBanner(
      `The SSH session to ${last.username}@${last.host}:${last.port}` +
        (last.fingerprint ? ` (host key ${last.fingerprint})` : '') +
        ' ended with the page reload: its keys lived in the old page. Reconnect to log in again.',
      'info',
    );
    btnReconnect.hidden = false;
  }
  document.body.dataset.ready = '1';
}

declare global {
  interface Window {
    manaDemo: {
      /** The @mana/websocket build this page bundles (for tests that drive the API directly). */
      lib: typeof mana;
      term: Terminal;
      live: () => Live | undefined;
      start: () => Promise<void>;
      stop: () => Promise<void>;
      /** The terminal's text (scrollback + screen), trailing blanks trimmed. */
      text: () => string;
      /** term.dispose(): releases every addon, the session's included (the page is done). */
      disposeTerminal: () => void;
    };
  }
}
window.manaDemo = {
  lib: mana,
  term,
  live: () => live,
  start,
  stop,
  text: () => {
    const buf = term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n').replace(/\s+$/, '');
  },
  disposeTerminal: () => {
    termDisposed = true;
    term.dispose();
  },
};
void init();
