// SPDX-License-Identifier: Apache-2.0
// A stand-in for dist/mana-worker.js in ManaWorkerClient's in-page mode (`workerUrl` pointing
// here): startPageHost() serves the page with the real WorkerHost, whose open() authenticates a
// scripted session against the methods it is given, as the SSH engine would (one keyboard-
// interactive round "Password: " answered through the page). `script` steers it per test.
import { MessageChannel } from 'node:worker_threads';
import { lib } from './helpers.mjs';
import { FakeSession, WorkerHost, headlessScreen } from './worker-helpers.mjs';
import { sessionAuth } from '../../build/js/package/dist/worker/questions.js';

export const PASSWORD = 'correct horse';
export const script = {
  /** What each open was given: the method kinds, in order. */
  opens: [],
  /** The keyboard-interactive rounds asked: their answers (the test checks what arrived). */
  answers: [],
  /** An error open() throws instead of authenticating. */
  failWith: undefined,
};
const ports = [];

async function open(_connect, session, ask) {
  const methods = sessionAuth(session.auth, ask);
  script.opens.push(methods.map((m) => Object.keys(m)[0]));
  if (script.failWith) throw script.failWith;
  if (ask.verifyHostKey !== undefined) {
    const hostKey = {
      host: session.target.host,
      port: session.target.port,
      algorithm: 'ssh-ed25519',
      fingerprint: `SHA256:key-of-${session.target.port}`,
      known: 'new',
    };
    if (!(await ask.verifyHostKey(hostKey))) {
      throw new lib.HostKeyError('host key was not accepted', {
        code: 'hostkey_rejected',
        origin: 'local',
        hostKey,
      });
    }
  }
  const allowed = ['password', 'keyboard-interactive'];
  for (const m of methods) {
    if ('password' in m && m.password === PASSWORD) break;
    if ('keyboardInteractive' in m) {
      let answers;
      try {
        answers = await m.keyboardInteractive([{ prompt: 'Password: ', echo: false }], {
          name: 'pam',
          instruction: '',
        });
      } catch {
        throw new lib.SshAuthError('keyboard-interactive authentication was cancelled', {
          code: 'auth_cancelled',
          origin: 'local',
          methods: allowed,
        });
      }
      script.answers.push(answers);
      if (answers[0] === PASSWORD) break;
    }
    if (m === methods.at(-1)) {
      throw new lib.SshAuthError('SSH authentication as u failed (server allows: ...)', {
        code: 'auth_failed',
        origin: 'remote',
        sshCode: -18,
        methods: allowed,
      });
    }
  }
  return { session: new FakeSession(), release: () => {} };
}

export function startPageHost() {
  const host = new WorkerHost({ mode: 'page', open, screen: headlessScreen });
  const channel = new MessageChannel();
  host.addPort(channel.port1);
  ports.push(channel.port1, channel.port2);
  return channel.port2;
}

/** Closes every port handed out (Node keeps a process alive while one is open). */
export function closeAll() {
  for (const p of ports.splice(0)) p.close();
}
