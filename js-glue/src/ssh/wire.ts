// SPDX-License-Identifier: Apache-2.0
// SshWire: the byte stream an SshSession runs its SSH connection over. A mana Channel is one (the
// gateway relays it to the SSH server); a TunnelWire is another (ssh/tunnel-wire.ts: the
// direct-tcpip channel of a bastion's SshSession, for jump hosts). Both are credit controlled:
// the session consumes what its engine took, and write() accepts only what fits.
import type { ChannelState } from '../channel.js';
import type { EventRegistration } from '../emitter.js';
import type { ManaError } from '../errors.js';

export interface SshWire {
  /** The mana channel underneath (a tunnel reports its outermost channel). */
  readonly id: number;
  readonly state: ChannelState;
  /** Resolves when the stream is open; rejects when it could not be opened. */
  readonly opened: Promise<void>;
  /** Bytes write() accepts now. */
  readonly writable: number;
  /** Bytes from the server; consume(n) them once the SSH engine took them. */
  readonly onData: EventRegistration<{ data: Uint8Array }>;
  /** write() may accept more after it refused some. */
  readonly onWritable: EventRegistration<number>;
  readonly onClose: EventRegistration<{ reason: string }>;
  /** Why the wire failed, when it knows better than its close reason (a bastion's error). */
  readonly failure?: ManaError | undefined;
  /** Returns how many bytes were accepted. */
  write(data: Uint8Array): number;
  consume(n: number): void;
  /** `abrupt`: the session is disposed (release at once rather than close politely). */
  close(reason: string, abrupt?: boolean): void;
}
