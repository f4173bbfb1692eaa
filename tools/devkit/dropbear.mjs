// SPDX-License-Identifier: Apache-2.0
// The one launcher of a real Dropbear SSH server (Debian's dropbear-bin, /usr/sbin/dropbear) on a
// loopback port for the JS tools: the interop journeys (issue #20 §2) of the js-glue tests and the
// Playwright suite. Node ESM, no dependencies; modelled on sshd.mjs and sharing its helpers.
//
//   import { startDropbear } from '<root>/tools/devkit/dropbear.mjs';
//   const db = await startDropbear({ password: true });
//   // ... connect to db.host:db.port as db.user (key db.userKey or password db.password) ...
//   await db.stop();
//
// startDropbear(options?) -> Promise<Dropbear>
//   options (all optional):
//     password        true | string  allow password logins (default: off, `-s`). true = the shared
//                               test password of sshd.mjs; a string sets that password with
//                               chpasswd (the user is shared by every launcher on the machine).
//     authorizedKeys  string[]  extra public key lines accepted for the user (the generated user
//                               key is always accepted).
//     hostKeyTypes    string[]  'ed25519' | 'ecdsa' | 'rsa', generated with dropbearkey
//                               (default ['ed25519']).
//     userKeyType     'ed25519' | 'ecdsa' | 'rsa'   the generated user key (ssh-keygen, OpenSSH
//                               format, what the browser client reads). Default ed25519.
//     args            string[]  extra dropbear options (e.g. ['-K', '5'] for server keepalives).
//     dir             string    working directory (default: a fresh mkdtemp dir, removed on stop).
//     dropbearPath    string    default $DROPBEAR or /usr/sbin/dropbear.
//     timeoutMs       number    start timeout (default 10000).
//   Dropbear:
//     host            '127.0.0.1'
//     port            number    the port the kernel gave dropbear (see "Port" below)
//     user            'mana-e2e'
//     password        string | undefined   (set when password logins are on)
//     version         string    e.g. '2022.83' (from `dropbear -V`)
//     hostKeys        { ed25519?: {pub, fingerprint, path}, ecdsa?: ..., rsa?: ... } as in sshd.mjs:
//                     pub = OpenSSH public key line, fingerprint = fingerprintOf(pub)
//                     ('SHA256:...', what the browser client reports)
//     userKey         { privateKey, publicKey, path, fingerprint }
//     home            host path of the directory the sessions see as the user's home (files a
//                     test puts there are readable by the user as ~/NAME)
//     userHome        the user's home path inside the sessions ('/home/mana-e2e')
//     dir, logPath, pid
//     log()           string: dropbear's log so far (`-E`: stderr)
//     stop()          Promise<void>: SIGTERM to dropbear and every session process (SIGKILL
//                     after 2 s), removes a temp dir it created. Idempotent; also runs
//                     (synchronously, SIGKILL) on process exit.
//
// How (measured on Debian 12, dropbear-bin 2022.83, as root in a container):
// - Root only: the login user is the shared test account `mana-e2e` (ensureTestUser of sshd.mjs:
//   useradd once, chpasswd), because Dropbear can only log a user in as someone else when it runs
//   as root, and it checks passwords against /etc/shadow itself (no PAM in Debian's build).
// - authorized_keys: Dropbear has no AuthorizedKeysFile option; it reads
//   ~user/.ssh/authorized_keys. The launcher runs dropbear in a private mount namespace
//   (`unshare --mount`) where a temp dir is bind-mounted over the user's home, so the key file,
//   and whatever the shells write to ~, live in the test's own dir and vanish with it; the real
//   home is never touched. Dropbear's permission checks hold: home 0755, ~/.ssh 0700,
//   authorized_keys 0600, all owned by the user.
// - Port: dropbear cannot report a port, but it can listen on port 0 (`-p 127.0.0.1:0`); the
//   launcher reads the kernel-chosen port of dropbear's listening socket from /proc (its socket
//   inodes in /proc/PID/fd, their LISTEN rows in /proc/PID/net/tcp). No free-port race.
//
// CLI: `node tools/devkit/dropbear.mjs [--password]` starts one, prints its description as JSON on
// one line (without the private key) and runs until SIGINT/SIGTERM.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  daemonStop,
  DEFAULT_TEST_PASSWORD,
  DEFAULT_TEST_USER,
  ensureTestUser,
  fingerprintOf,
  keygen,
  killTree,
  processTree,
  run,
  waitBanner,
} from './sshd.mjs';

/** Dropbear's version ('2022.83') from `dropbear -V` (it prints to stderr). */
export function dropbearVersion(dropbearPath = process.env.DROPBEAR || '/usr/sbin/dropbear') {
  const r = spawnSync(dropbearPath, ['-V'], { encoding: 'utf8' });
  if (r.error)
    throw new Error(`${dropbearPath}: ${r.error.message} (make deps installs dropbear-bin)`);
  const m = /Dropbear v(\S+)/.exec(`${r.stdout}${r.stderr}`);
  if (!m) throw new Error(`${dropbearPath} -V: no version in ${JSON.stringify(r.stderr)}`);
  return m[1];
}

/** A Dropbear host key made by dropbearkey; returns { pub, fingerprint, path }. */
function dropbearKey(file, type) {
  const args = ['-t', type, '-f', file];
  if (type === 'rsa') args.push('-s', '3072');
  if (type === 'ecdsa') args.push('-s', '256');
  run('dropbearkey', args);
  // `-y` prints "Public key portion is:", the OpenSSH public key line and a fingerprint.
  const out = run('dropbearkey', ['-y', '-f', file]);
  const pub = out.split('\n').find((l) => /^(ssh-|ecdsa-)\S+ AAAA/.test(l));
  if (!pub) throw new Error(`dropbearkey -y -f ${file}: no public key line in ${out}`);
  const line = pub.trim().split(/\s+/).slice(0, 2).join(' ');
  return { pub: line, fingerprint: fingerprintOf(line), path: file };
}

/** The ports of every TCP socket of `pid` in LISTEN state (from /proc; [] while there is none). */
export function listeningPorts(pid) {
  const inodes = new Set();
  let fds = [];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  const ports = [];
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9])) {
        ports.push(parseInt(f[1].split(':')[1], 16));
      }
    }
  }
  return ports;
}

export async function startDropbear(options = {}) {
  const {
    authorizedKeys = [],
    hostKeyTypes = ['ed25519'],
    userKeyType = 'ed25519',
    args = [],
    dropbearPath = process.env.DROPBEAR || '/usr/sbin/dropbear',
    timeoutMs = 10000,
  } = options;
  if (process.getuid?.() !== 0) {
    throw new Error(
      'startDropbear: needs root (the test user mana-e2e, a private mount namespace for its ' +
        'authorized_keys)',
    );
  }
  const version = dropbearVersion(dropbearPath);
  const wantPassword = options.password !== undefined && options.password !== false;
  const password = wantPassword
    ? typeof options.password === 'string'
      ? options.password
      : DEFAULT_TEST_PASSWORD
    : undefined;
  const user = DEFAULT_TEST_USER;
  // The account needs a usable password field even for key logins (useradd leaves it locked);
  // key-only instances set the shared default, as every other launcher does.
  ensureTestUser(user, password ?? DEFAULT_TEST_PASSWORD);
  const pw = lookupUser(user);

  const ownDir = !options.dir;
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mana-dropbear-'));
  fs.mkdirSync(dir, { recursive: true });

  const hostKeys = {};
  for (const type of hostKeyTypes) {
    if (!['ed25519', 'ecdsa', 'rsa'].includes(type)) {
      throw new Error(`startDropbear: unknown host key type ${type}`);
    }
    hostKeys[type] = dropbearKey(path.join(dir, `host_${type}`), type);
  }
  const uk = keygen(path.join(dir, 'user_key'), userKeyType);
  const userKey = {
    privateKey: fs.readFileSync(uk.path, 'utf8'),
    publicKey: uk.pub,
    fingerprint: uk.fingerprint,
    path: uk.path,
  };

  // The home the sessions see (bind-mounted over pw.home inside dropbear's mount namespace).
  const home = path.join(dir, 'home');
  const sshDir = path.join(home, '.ssh');
  fs.mkdirSync(sshDir, { recursive: true });
  const authPath = path.join(sshDir, 'authorized_keys');
  fs.writeFileSync(authPath, [uk.pub, ...authorizedKeys].join('\n') + '\n');
  fs.chmodSync(home, 0o755);
  fs.chmodSync(sshDir, 0o700);
  fs.chmodSync(authPath, 0o600);
  for (const p of [home, sshDir, authPath]) fs.chownSync(p, pw.uid, pw.gid);
  if (!fs.existsSync(pw.home)) {
    throw new Error(`startDropbear: ${user}'s home ${pw.home} is missing (bind mount target)`);
  }

  const logPath = path.join(dir, 'dropbear.log');
  const dbArgs = [
    '-F', // foreground
    '-E', // log to stderr
    '-m', // no motd (sshd.mjs: PrintMotd no)
    '-p',
    '127.0.0.1:0',
    ...hostKeyTypes.flatMap((t) => ['-r', hostKeys[t].path]),
    '-P',
    path.join(dir, 'dropbear.pid'),
    '-T',
    '20',
    ...(wantPassword ? [] : ['-s']),
    ...args,
  ];
  // mount --bind in a fresh mount namespace, then exec dropbear in it (same pid throughout).
  const script = 'mount --bind "$1" "$2" || exit 97; shift 2; exec "$@"';
  const logFd = fs.openSync(logPath, 'a');
  const proc = spawn(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      '--',
      '/bin/sh',
      '-c',
      script,
      'sh',
      home,
      pw.home,
      dropbearPath,
      ...dbArgs,
    ],
    { stdio: ['ignore', 'ignore', logFd] },
  );
  fs.closeSync(logFd);
  let dead = false;
  proc.on('exit', () => {
    dead = true;
  });
  proc.on('error', () => {
    dead = true;
  });
  const readLog = () => (fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : '');

  let port;
  try {
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (dead) throw new Error('dropbear exited');
      const ports = listeningPorts(proc.pid);
      if (ports.length > 0) {
        port = ports[0];
        break;
      }
      if (Date.now() > end) throw new Error(`dropbear: no listening socket within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitBanner(port, Math.max(1000, end - Date.now()), () => dead, 'dropbear');
  } catch (e) {
    killTree(processTree(proc.pid), 'SIGKILL');
    const log = readLog();
    if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`${e.message}\n${log.slice(-2000)}`);
  }

  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    version,
    hostKeys,
    userKey,
    home,
    userHome: pw.home,
    dir,
    logPath,
    pid: proc.pid,
    log: readLog,
    ...daemonStop(
      proc,
      () => dead,
      () => {
        if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
      },
    ),
  };
}

/** uid, gid and home of a local account (getent passwd). */
function lookupUser(name) {
  const line = run('getent', ['passwd', name]).trim();
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
}

// --- CLI ----------------------------------------------------------------------------------
if (import.meta.url === `file://${process.argv[1]}`) {
  const db = await startDropbear({ password: process.argv.includes('--password') || undefined });
  const { privateKey, ...userKey } = db.userKey;
  void privateKey;
  const out = {
    host: db.host,
    port: db.port,
    user: db.user,
    password: db.password,
    version: db.version,
    hostKeys: db.hostKeys,
    userKey,
    dir: db.dir,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  const quit = () => db.stop().then(() => process.exit(0));
  process.on('SIGINT', quit);
  process.on('SIGTERM', quit);
  setInterval(() => {}, 1 << 30);
}
