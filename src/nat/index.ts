/*
 * NAT / connection tracking: `import { NatEngine } from '../nat/index.js'`.
 */

export * from './engine.js';
export { TCP_STATE_NAMES } from './tcp-state.js';
