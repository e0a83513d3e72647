#!/usr/bin/env node
/*
 * `npm ci` / `npm install` hook: build the native addon with node-gyp (bundled with npm and on
 * PATH during lifecycle scripts). Uses the Node headers in /usr/include/node when present, so
 * the build works offline (node-gyp would otherwise try to download them).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const args = ['rebuild', '-C', 'native'];
const nodedir = process.env.npm_config_nodedir ?? (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);
if (nodedir) args.push(`--nodedir=${nodedir}`);
const gyp = process.env.npm_config_node_gyp ? [process.execPath, process.env.npm_config_node_gyp] : ['node-gyp'];
const r = spawnSync(gyp[0], [...gyp.slice(1), ...args], { stdio: 'inherit' });
if (r.error) {
  console.error(`tapbridge: cannot run node-gyp (${r.error.message}); it ships with npm: run this through npm ci / npm install`);
  process.exit(1);
}
process.exit(r.status ?? 1);
