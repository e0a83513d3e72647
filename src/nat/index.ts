/*
 * NAT / connection tracking: the engines (engine.ts IPv4, engine6.ts IPv6, both on
 * engine-base.ts) and their elements (element.ts).
 */
export * from './engine.js';
export * from './engine6.js';
export * from './element.js';
export { TCP_STATE_NAMES } from './tcp-state.js';
