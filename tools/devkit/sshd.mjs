// SPDX-License-Identifier: Apache-2.0
// The one launcher of a real OpenSSH server (Debian's /usr/sbin/sshd) on a loopback port for the
// JS tools. Node ESM, no dependencies. Used by the js-glue SSH tests, the web demo, the browser
// bench and the Playwright tests. Python twin: sshd.py (a subset: key login only).
//
//   import { startSshd } from '<root>/tools/devkit/sshd.mjs';
//   const sshd = await startSshd({ password: true, kbdInteractive: true });
//   // ... connect to sshd.host:sshd.port as sshd.user ...
//   await sshd.stop();
//
// startSshd(options?) -> Promise<Sshd>
//   options (all optional):
//     authorizedKeys  string[]  extra public key lines accepted for the user (the generated user
//                               key is always accepted).
//     users           string[]  AllowUsers list (default: [user]).
//     user            string    login user. Default: 'mana-e2e' when password or kbdInteractive
//                               is requested (created idempotently with useradd + chpasswd; needs
//                               root), else the current user.
//     password        true | string  enable PasswordAuthentication. true = the default test
//                               password 'mana-e2e-pass-1'; a string sets that password with
//                               chpasswd (the user is shared by all sshd instances on the machine:
//                               concurrent tests should use the same password).
//     kbdInteractive  boolean   enable keyboard-interactive (needs UsePAM yes: PAM's pam_unix asks
//                               "Password: "; the answer is the user's password).
//     hostKeyTypes    string[]  host key types, any of 'ed25519' | 'ecdsa' | 'rsa' (default
//                               ['ed25519']). The order is the HostKey order in sshd_config.
//     userKeyType     'ed25519' | 'ecdsa' | 'rsa'   type of the generated user key (default ed25519).
//     userKeyPassphrase string  encrypt the generated user private key with this passphrase.
//     extraConfig     string    lines put first in sshd_config, so they win over the defaults
//                               (e.g. "Ciphers aes256-gcm@openssh.com", "LogLevel DEBUG3").
//     dir             string    working directory (default: a fresh mkdtemp dir, removed on stop).
//     sshdPath        string    default $SSHD or /usr/sbin/sshd.
//     timeoutMs       number    start timeout (default 10000).
//   Sshd:
//     host            '127.0.0.1'
//     port            number
//     user            string
//     password        string | undefined   (set when password or kbdInteractive is enabled)
//     hostKeys        { ed25519?: {pub, fingerprint, path}, ecdsa?: ..., rsa?: ... }
//                     pub = OpenSSH public key line "ssh-ed25519 AAAA...", fingerprint =
//                     'SHA256:<base64 without padding>' (the same string `ssh-keygen -l` prints).
//     userKey         { privateKey, publicKey, passphrase?, path, fingerprint }  (privateKey is
//                     the OpenSSH "BEGIN OPENSSH PRIVATE KEY" text)
//     dir, configPath, logPath
//     authorizedKeysPath  the user's authorized_keys (sshd reads it at every login: a test may
//                     append a line it learns later, e.g. an enrolled security key)
//     log()           string: sshd's stderr so far (sshd -e logs there)
//     stop()          Promise<void>: SIGTERM to sshd and every session process it forked
//                     (SIGKILL after 2 s), removes a temp dir it created. Idempotent. Also runs
//                     (synchronously, SIGKILL) on process exit.
//
// CLI: `node tools/devkit/sshd.mjs [--password] [--kbd]` starts one, prints its description as
// JSON on one line (without the private key unless --print-key) and runs until SIGINT/SIGTERM.
//
// Notes (measured on Debian 12, OpenSSH 9.2p1, as root in a container):
// - Public-key only runs with UsePAM no. PasswordAuthentication with UsePAM no checks
//   /etc/shadow directly (sshd runs as root). Keyboard-interactive on Linux exists only via PAM,
//   so kbdInteractive turns on UsePAM yes (Debian's /etc/pam.d/sshd; pam_loginuid works here).
// - StrictModes no: the config, keys and authorized_keys live in a temp dir owned by root; the
//   dir is made 0755 and authorized_keys 0644 because sshd reads it with the user's uid.
// - The privilege separation dir /run/sshd is created when missing (root only).

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './net.mjs';

export const DEFAULT_TEST_USER = 'mana-e2e';
export const DEFAULT_TEST_PASSWORD = 'mana-e2e-pass-1';

const live = new Set();
let exitHookInstalled = false;

/** 'SHA256:...' (base64 without padding) of an OpenSSH public key line. */
export function fingerprintOf(pubLine) {
  const blob = Buffer.from(pubLine.trim().split(/\s+/)[1], 'base64');
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

export function run(cmd, args, input) {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  }
  return r.stdout;
}

/** ssh-keygen: an OpenSSH key pair in `file` / `file`.pub; returns { pub, fingerprint, path }. */
export function keygen(file, type, passphrase = '') {
  const args = ['-q', '-t', type, '-N', passphrase, '-C', `mana-test-${type}`, '-f', file];
  if (type === 'rsa') args.unshift('-b', '3072');
  if (type === 'ecdsa') args.unshift('-b', '256');
  run('ssh-keygen', args);
  const pub = fs.readFileSync(file + '.pub', 'utf8').trim();
  return { pub, fingerprint: fingerprintOf(pub), path: file };
}

/** Creates the shared test user (idempotent) and sets its password. Root only. */
export function ensureTestUser(user, password) {
  if (process.getuid?.() !== 0) {
    throw new Error(`startSshd: password/keyboard-interactive auth needs root (to create ${user})`);
  }
  const exists = spawnSync('id', ['-u', user]).status === 0;
  if (!exists) {
    const r = spawnSync('useradd', ['-m', '-s', '/bin/bash', user], { encoding: 'utf8' });
    // A concurrent launcher may have created it in between: re-check instead of failing.
    if (r.status !== 0 && spawnSync('id', ['-u', user]).status !== 0) {
      throw new Error(`useradd ${user} failed: ${r.stderr}`);
    }
  }
  run('chpasswd', [], `${user}:${password}\n`);
}

/** Resolves when the port answers with an SSH-2.0- banner, rejects after timeoutMs. */
export function waitBanner(port, timeoutMs, isDead, name = 'sshd') {
  const end = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (isDead()) return reject(new Error(`${name} exited`));
      if (Date.now() > end) return reject(new Error(`${name}: no SSH-2.0- banner on port ${port}`));
      const sock = net.connect(port, '127.0.0.1');
      let buf = '';
      const retry = () => {
        sock.destroy();
        setTimeout(attempt, 50);
      };
      sock.setTimeout(1000, retry);
      sock.on('error', retry);
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        if (buf.startsWith('SSH-2.0-')) {
          sock.destroy();
          resolve();
        } else if (buf.length >= 8) retry();
      });
    };
    attempt();
  });
}

/** pid and every descendant (from /proc), descendants first. */
export function processTree(rootPid) {
  const children = new Map();
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${ent}/stat`, 'utf8');
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(ent));
  }
  const out = [];
  const walk = (pid) => {
    for (const c of children.get(pid) ?? []) walk(c);
    out.push(pid);
  };
  walk(rootPid);
  return out;
}

export function killTree(pids, sig) {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const inst of live) inst.stopSync();
  });
}

export async function startSshd(options = {}) {
  const {
    authorizedKeys = [],
    kbdInteractive = false,
    hostKeyTypes = ['ed25519'],
    userKeyType = 'ed25519',
    userKeyPassphrase,
    extraConfig = '',
    sshdPath = process.env.SSHD || '/usr/sbin/sshd',
    timeoutMs = 10000,
  } = options;
  const wantPassword = options.password !== undefined && options.password !== false;
  const needsUser = wantPassword || kbdInteractive;
  const password = needsUser
    ? typeof options.password === 'string'
      ? options.password
      : DEFAULT_TEST_PASSWORD
    : undefined;
  const user = options.user ?? (needsUser ? DEFAULT_TEST_USER : os.userInfo().username);
  const users = options.users ?? [user];

  if (process.getuid?.() === 0 && !fs.existsSync('/run/sshd')) {
    fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  }
  if (needsUser) ensureTestUser(user, password);

  const ownDir = !options.dir;
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mana-sshd-'));
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755);

  const hostKeys = {};
  for (const type of hostKeyTypes) {
    if (!['ed25519', 'ecdsa', 'rsa'].includes(type)) {
      throw new Error(`startSshd: unknown host key type ${type}`);
    }
    hostKeys[type] = keygen(path.join(dir, `host_${type}`), type);
  }
  const uk = keygen(path.join(dir, 'user_key'), userKeyType, userKeyPassphrase ?? '');
  const userKey = {
    privateKey: fs.readFileSync(uk.path, 'utf8'),
    publicKey: uk.pub,
    fingerprint: uk.fingerprint,
    path: uk.path,
    ...(userKeyPassphrase !== undefined ? { passphrase: userKeyPassphrase } : {}),
  };
  const authPath = path.join(dir, 'authorized_keys');
  fs.writeFileSync(authPath, [uk.pub, ...authorizedKeys].join('\n') + '\n', { mode: 0o644 });
  fs.chmodSync(authPath, 0o644);

  const configPath = path.join(dir, 'sshd_config');
  const logPath = path.join(dir, 'sshd.log');
  let proc;
  let port;
  let dead = false;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    // extraConfig first: for most keywords sshd uses the first value it reads.
    const cfg = [
      extraConfig,
      `ListenAddress 127.0.0.1:${port}`,
      ...hostKeyTypes.map((t) => `HostKey ${hostKeys[t].path}`),
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `UsePAM ${kbdInteractive ? 'yes' : 'no'}`,
      'StrictModes no',
      'PubkeyAuthentication yes',
      `AuthorizedKeysFile ${authPath}`,
      `PasswordAuthentication ${wantPassword ? 'yes' : 'no'}`,
      `KbdInteractiveAuthentication ${kbdInteractive ? 'yes' : 'no'}`,
      'PermitRootLogin prohibit-password',
      `AllowUsers ${users.join(' ')}`,
      'PrintMotd no',
      'PrintLastLog no',
      'AcceptEnv LANG LC_* MANA_*',
      'MaxStartups 100:30:200',
      'MaxAuthTries 20',
      'LogLevel VERBOSE',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n');
    fs.writeFileSync(configPath, cfg);
    const logFd = fs.openSync(logPath, 'a');
    dead = false;
    proc = spawn(sshdPath, ['-D', '-e', '-f', configPath], {
      stdio: ['ignore', 'ignore', logFd],
    });
    fs.closeSync(logFd);
    proc.on('exit', () => {
      dead = true;
    });
    proc.on('error', () => {
      dead = true;
    });
    try {
      await waitBanner(port, timeoutMs, () => dead);
      break;
    } catch (e) {
      killTree([proc.pid], 'SIGKILL');
      const log = fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : '';
      // Another process grabbed the free port between freePort() and sshd's bind: retry.
      if (attempt < 3 && /Bind to port|Address already in use/.test(log)) continue;
      throw new Error(`${e.message}\n${log.slice(-2000)}`);
    }
  }

  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    hostKeys,
    userKey,
    dir,
    configPath,
    logPath,
    authorizedKeysPath: authPath,
    pid: proc.pid,
    log: () => (fs.existsSync(logPath) ? fs.readFileSync(logPath, 'utf8') : ''),
    ...daemonStop(
      proc,
      () => dead,
      () => {
        if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
      },
    ),
  };
}

/**
 * The stop() / stopSync() of a launched daemon (sshd, dropbear), registered for the exit hook:
 * SIGTERM to its process tree, SIGKILL to what is left after 2 s (stopSync: SIGKILL at once),
 * then `cleanup()`. `isDead()` says the daemon process has exited already.
 */
export function daemonStop(proc, isDead, cleanup) {
  let stopped = false;
  const handle = {
    stopSync() {
      if (stopped) return;
      stopped = true;
      live.delete(handle);
      killTree(processTree(proc.pid), 'SIGKILL');
      cleanup();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      live.delete(handle);
      const pids = processTree(proc.pid);
      killTree(pids, 'SIGTERM');
      const end = Date.now() + 2000;
      const alive = () => pids.filter((p) => fs.existsSync(`/proc/${p}`) && !isZombie(p));
      while (alive().length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      killTree(alive(), 'SIGKILL');
      if (!isDead()) await new Promise((r) => proc.once('exit', r));
      cleanup();
    },
  };
  live.add(handle);
  installExitHook();
  return handle;
}

export function isZombie(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z';
  } catch {
    return true;
  }
}

// --- CLI ----------------------------------------------------------------------------------
if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const sshd = await startSshd({
    password: args.includes('--password') ? true : undefined,
    kbdInteractive: args.includes('--kbd'),
  });
  const { privateKey, ...userKey } = sshd.userKey;
  const out = {
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    password: sshd.password,
    hostKeys: sshd.hostKeys,
    userKey: args.includes('--print-key') ? sshd.userKey : userKey,
    dir: sshd.dir,
  };
  void privateKey;
  process.stdout.write(JSON.stringify(out) + '\n');
  const quit = () => sshd.stop().then(() => process.exit(0));
  process.on('SIGINT', quit);
  process.on('SIGTERM', quit);
  setInterval(() => {}, 1 << 30);
}
