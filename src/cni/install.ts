/*
 * `tapbridge cni install [--dir /opt/cni/bin]`: puts an executable named `tapbridge` (the
 * CNI type) into the runtime's plugin directory: a two-line shell script that runs this
 * installation's bin/tapbridge-cni.js with this node, so the plugin needs nothing on PATH.
 */
import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_CNI_DIR = '/opt/cni/bin';

/** The wrapper's text for a node binary and a plugin script. */
export function wrapperScript(node: string, script: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `#!/bin/sh\n# tapbridge CNI plugin (installed by \`tapbridge cni install\`)\nexec ${q(node)} ${q(script)} "$@"\n`;
}

/** Install the plugin as DIR/tapbridge; returns its path. */
export function installCni(dir = DEFAULT_CNI_DIR): string {
  const script = resolve(fileURLToPath(new URL('../../../bin/tapbridge-cni.js', import.meta.url)));
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const target = join(dir, 'tapbridge');
  const tmp = `${target}.tmp-${process.pid}`;
  writeFileSync(tmp, wrapperScript(process.execPath, script), { mode: 0o755 });
  chmodSync(tmp, 0o755);
  renameSync(tmp, target);
  return target;
}
