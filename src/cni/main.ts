/*
 * Entry point of `tapbridge-cni`, the CNI plugin (type "tapbridge"): reads CNI_* from the
 * environment and the network config from stdin, runs the command (plugin.ts), prints the
 * result or the spec's error JSON ({cniVersion, code, msg, details}) on stdout and exits
 * non-zero on error. Whatever goes wrong, the runtime gets error JSON, never a stack trace.
 */
import { readFileSync } from 'node:fs';
import { CniError, errorJson, parseEnv, parseNetConf, SUPPORTED_VERSIONS, versionOf, CNI_ERR } from './config.js';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus } from './plugin.js';

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

export async function cniMain(environ: Record<string, string | undefined>, stdin: string): Promise<{ code: number; out: string }> {
  const version = versionOf(stdin);
  try {
    const env = parseEnv(environ);
    if (env.command === 'VERSION') return { code: 0, out: JSON.stringify({ cniVersion: (SUPPORTED_VERSIONS as readonly string[]).includes(version) ? version : '1.1.0', supportedVersions: SUPPORTED_VERSIONS }) };
    if (stdin.trim() === '') throw new CniError(CNI_ERR.decodeFailed, 'no network configuration on stdin');
    const conf = parseNetConf(stdin);
    switch (env.command) {
      case 'ADD':
        return { code: 0, out: JSON.stringify(await cmdAdd(conf, env)) };
      case 'DEL':
        await cmdDel(conf, env);
        return { code: 0, out: '' };
      case 'CHECK':
        await cmdCheck(conf, env);
        return { code: 0, out: '' };
      case 'STATUS':
        await cmdStatus(conf);
        return { code: 0, out: '' };
      case 'GC':
        await cmdGc(conf, env);
        return { code: 0, out: '' };
    }
  } catch (err) {
    return { code: 1, out: JSON.stringify(errorJson(err, (SUPPORTED_VERSIONS as readonly string[]).includes(version) ? version : '1.1.0')) };
  }
  return { code: 1, out: JSON.stringify(errorJson(new CniError(CNI_ERR.invalidEnv, 'unknown command'), version)) };
}

export async function run(): Promise<void> {
  let r: { code: number; out: string };
  try {
    r = await cniMain(process.env, readStdin());
  } catch (err) {
    r = { code: 1, out: JSON.stringify(errorJson(err, '1.1.0')) };
  }
  if (r.out !== '') process.stdout.write(r.out + '\n');
  process.exitCode = r.code;
}
