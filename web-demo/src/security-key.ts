// The demo's security-key panel (issue #24): "Enrol a security key" runs enrollSecurityKey()
// (WebAuthn create(), ES256) with this page's host name as the rpId, shows the authorized_keys
// line to add on the server and keeps the credential (its id, public key and rpId: no secret) in
// localStorage, one per rpId and user. With the method "security key" the form logs in with
// `auth: { securityKey }`, the key signing the SSH login through navigator.credentials.get().
//
// The demo server started by `make demo` can append the line to its own sshd's authorized_keys
// (POST /api/authorized-key; /api/demo says `authorizeKeys: true`): the "Add to the demo sshd"
// button. Against any other server, the user adds the line by hand.
//
// WebAuthn needs a host name: at http://127.0.0.1 the panel says to open http://localhost.
import { enrollSecurityKey, SecurityKeyError, type SecurityKeyCredential } from '@mana/websocket';

interface Stored {
  credential: SecurityKeyCredential;
  line: string;
}

export interface SecurityKeyPanel {
  /** The `auth` of the form's "security key" method, or an error text for the banner. */
  auth(user: string): { securityKey: SecurityKeyCredential } | { error: string };
  /** Shows the enrolment of the form's current user (call when the user field changes). */
  refresh(): void;
}

const STORAGE_KEY = 'mana-demo.security-keys';
const IP_HOST = /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:.]+\])$/i;

function byId<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e as T;
}

function loadAll(): Record<string, Stored> {
  try {
    const v = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '{}') as unknown;
    return v !== null && typeof v === 'object' ? (v as Record<string, Stored>) : {};
  } catch {
    return {};
  }
}

function saveAll(all: Record<string, Stored>): void {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(all));
  } catch {
    // storage full or off: the enrolment lasts for this page only
  }
}

/** Wires the panel (#auth-sk in index.html). `user()` reads the form's user field. */
export function initSecurityKeyPanel(o: {
  user: () => string;
  canAuthorize: boolean;
  onError: (text: string) => void;
}): SecurityKeyPanel {
  const rpId = location.hostname;
  const status = byId<HTMLParagraphElement>('sk-status');
  const lineBox = byId<HTMLTextAreaElement>('sk-line');
  const btnEnrol = byId<HTMLButtonElement>('btn-sk-enrol');
  const btnAdd = byId<HTMLButtonElement>('btn-sk-authorize');
  const btnForget = byId<HTMLButtonElement>('btn-sk-forget');
  const verify = byId<HTMLInputElement>('sk-verify');
  const keyOf = (user: string) => `${rpId} ${user}`;
  let session: Record<string, Stored> = loadAll();

  const render = () => {
    const s = session[keyOf(o.user())];
    lineBox.value = s?.line ?? '';
    lineBox.hidden = s === undefined;
    btnForget.hidden = s === undefined;
    btnAdd.hidden = s === undefined || !o.canAuthorize;
    if (IP_HOST.test(rpId) || rpId === '') {
      btnEnrol.disabled = true;
      const u = new URL(location.href);
      u.hostname = 'localhost';
      status.textContent =
        `Security keys need a host name (WebAuthn refuses an IP address as its rpId): open ` +
        `${u.origin}/ instead.`;
      return;
    }
    btnEnrol.disabled = false;
    status.textContent = s
      ? `Enrolled for ${o.user()} (rpId ${rpId}). Add this line to ~${o.user()}/.ssh/` +
        'authorized_keys on the server, then Connect: the key signs the login.'
      : `No security key enrolled in this browser for ${o.user() || 'this user'} (rpId ${rpId}).`;
  };

  btnEnrol.addEventListener('click', () => {
    const user = o.user();
    if (!user) {
      o.onError('Fill in the user first: the key is enrolled for it.');
      return;
    }
    btnEnrol.disabled = true;
    enrollSecurityKey({ rpId, user, verifyRequired: verify.checked })
      .then((e) => {
        session = loadAll();
        session[keyOf(user)] = { credential: e.credential, line: e.authorizedKeysLine };
        saveAll(session);
        document.body.dataset.securityKey = 'enrolled';
      })
      .catch((e: unknown) => {
        o.onError(
          e instanceof SecurityKeyError
            ? `Enrolment failed (${e.code}): ${e.message}`
            : `Enrolment failed: ${String(e)}`,
        );
      })
      .finally(render);
  });
  btnAdd.addEventListener('click', () => {
    const line = session[keyOf(o.user())]?.line;
    if (!line) return;
    fetch('/api/authorized-key', {
      method: 'POST',
      headers: { 'x-mana-demo': '1', 'content-type': 'text/plain' },
      body: line,
    })
      .then(async (res) => {
        const body = (await res.json().catch(() => ({}))) as { error?: string; path?: string };
        if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
        status.textContent = `Added to the demo sshd's ${body.path ?? 'authorized_keys'}: Connect.`;
        document.body.dataset.securityKey = 'authorized';
      })
      .catch((e: unknown) => o.onError(`The demo server did not add the key: ${String(e)}`));
  });
  btnForget.addEventListener('click', () => {
    session = loadAll();
    delete session[keyOf(o.user())];
    saveAll(session);
    render();
  });
  render();
  return {
    refresh: render,
    auth(user) {
      const s = loadAll()[keyOf(user)];
      if (s) return { securityKey: s.credential };
      return {
        error: `No security key is enrolled for ${user} here: "Enrol a security key" first.`,
      };
    },
  };
}
