// SPDX-License-Identifier: Apache-2.0
// Jump hosts (SshSessionOptions.via): the target's SSH session runs over a chain of bastions, all
// in the page. The gateway connects to the first bastion only (a plain `tcp` channel, its policy
// decides as for any target). Each bastion's SshSession runs in tunnel mode: after its own host
// key check and authentication its engine opens a `direct-tcpip` channel to the next hop, and a
// TunnelWire (ssh/tunnel-wire.ts) makes that channel the wire of the next SshSession. The layers
// open one after the other; a failure rejects with the failing layer's error (its `sshLayer`
// names it) and closes the layers opened before it.
import type { ConnectionBase } from '../connection.js';
import { invalidArgument as invalid } from '../errors.js';
import type { SshEngineConfig, SshModule } from '../internal/ssh-types.js';
import { loginConfig, validateLogin } from './engine-config.js';
import type { SshAlgorithmKind } from './errors.js';
import { KnownHosts } from './known-hosts.js';
import { createSshSession, type SessionLayerOptions } from './session.js';
import { TunnelWire } from './tunnel-wire.js';
import type { SshJumpHost, SshSessionOptions } from './types.js';
import type { SshWire } from './wire.js';

/** At most this many bastions in a chain. */
const maxHops = 4;
const maxHostLength = 255;
/**
 * What a bastion's engine reads of its tunnel ahead of the next engine (its high-water mark):
 * the next engine takes the bytes at once, so this only bounds a burst.
 */
const tunnelHighWater = 256 * 1024;

/** The bastions of `options.via`, outermost first, checked ([] without `via`). */
export function jumpHostsOf(options: SshSessionOptions): SshJumpHost[] {
  const via: unknown = options.via;
  if (via === undefined) return [];
  const hops: unknown[] = Array.isArray(via) ? via : [via];
  if (hops.length === 0 || hops.length > maxHops) {
    throw invalid(`openSession: via takes 1..${maxHops} jump hosts`);
  }
  const checked = hops.map((h, i) => {
    if (typeof h !== 'object' || h === null) {
      throw invalid(`openSession: via[${i}] must be {target, username, auth}`);
    }
    validateLogin(h as SshJumpHost, `via[${i}].`);
    return h as SshJumpHost;
  });
  // Every host after the first goes into a direct-tcpip request: a DNS name's bound.
  for (const [what, host] of [
    ...checked.slice(1).map((h, i) => [`via[${i + 1}].target`, h.target.host]),
    ['target', options.target.host],
  ]) {
    if ((host ?? '').length > maxHostLength) {
      throw invalid(`openSession: ${what}.host is longer than ${maxHostLength} characters`);
    }
  }
  return checked;
}

/** One bastion, ready to start. */
export interface HopPlan {
  options: SshSessionOptions;
  known: KnownHosts;
  config: SshEngineConfig;
  layer: SessionLayerOptions;
}

/**
 * The sessions of the bastions: options (flow 'manual', their own host key policy and deadline),
 * known hosts, engine configuration in tunnel mode (throws SshAlgorithmError for an unsupported
 * algorithm before anything is sent).
 */
export function planJumpChain(
  hops: SshJumpHost[],
  options: SshSessionOptions,
  supported: (kind: SshAlgorithmKind) => string[],
): HopPlan[] {
  return hops.map((hop, i) => {
    const target = { host: hop.target.host, port: hop.target.port };
    const nextHop = i + 1 < hops.length ? hops[i + 1]?.target : undefined;
    const next = { host: (nextHop ?? options.target).host, port: (nextHop ?? options.target).port };
    const known = new KnownHosts(hop.knownHosts ?? options.knownHosts);
    const hopOptions: SshSessionOptions = {
      target,
      username: hop.username,
      auth: hop.auth,
      flow: 'manual',
      timeoutMs: hop.timeoutMs ?? options.timeoutMs ?? 30000,
      ...(hop.hostKey !== undefined ? { hostKey: hop.hostKey } : {}),
    };
    return {
      options: hopOptions,
      known,
      config: {
        ...loginConfig(hop, known, supported),
        appHighWater: tunnelHighWater,
        directHost: next.host,
        directPort: next.port,
      },
      layer: { layer: { role: 'bastion', hop: i, ...target }, tunnelTo: next },
    };
  });
}

/**
 * Opens the bastions one after the other: the first over a new `tcp` channel to it, each next
 * one over the tunnel of the one before. Resolves with the last bastion's tunnel (the wire of the
 * target's session); rejects with the error of the first layer that failed.
 */
export async function openJumpChain(
  conn: ConnectionBase,
  module: SshModule,
  plan: HopPlan[],
): Promise<SshWire> {
  const first = plan[0];
  if (first === undefined) throw invalid('openSession: via is empty');
  let wire: SshWire = conn.openChannel({ target: first.options.target, kind: 'tcp' });
  for (const hop of plan) {
    const engine = new module.SshEngine(hop.config);
    const session = createSshSession(conn, wire, engine, hop.options, hop.known, hop.layer);
    // A failure closes this layer, and with it its wire: the bastions before it close in turn.
    await session._opened;
    wire = new TunnelWire(session);
  }
  return wire;
}
