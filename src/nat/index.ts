/*
 * NAT / connection tracking: the engine (engine.ts) and its elements (element.ts).
 */
export * from './engine.js';
export * from './element.js';
export { TCP_STATE_NAMES } from './tcp-state.js';
