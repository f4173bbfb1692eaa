// SPDX-License-Identifier: Apache-2.0
// The error of a request the session worker refused (worker/client.ts) or of a view's message it
// refused (worker/view.ts): `code` is the worker's WorkerErrorCode (`bad-secret`, `busy`,
// `limit`, `not-attached`, ...).
import { ManaError, nameErrorClasses } from '../errors.js';

/** The worker refused an attach (`bad-secret`, `busy`, ...) or a request failed. */
export class WorkerRequestError extends ManaError {}
nameErrorClasses({ WorkerRequestError });
