/*
 * Opening capture files, on the control plane's thread (never the data plane's: a FIFO or a
 * slow file system must not stall forwarding). Root opens a path a client named, so:
 * symlinks are not followed (O_NOFOLLOW), only regular files are written (a FIFO, a device or
 * /proc/self/mem is refused after an O_NONBLOCK open that cannot hang), new files are 0600,
 * and an optional capture directory confines every path.
 */
import { closeSync, constants, fstatSync, ftruncateSync, openSync, realpathSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';

export class CaptureFileError extends Error {}

export interface CaptureFileOptions {
  /** Every capture path must be inside this directory (after resolving symlinks of the directory). */
  directory?: string;
  /** Truncate a file that exists (default true). */
  overwrite?: boolean;
}

/** Open `path` for a capture; returns the fd (the data plane writes and closes it). */
export function openCaptureFile(path: string, opts: CaptureFileOptions = {}): number {
  const abs = resolve(path);
  if (opts.directory !== undefined) {
    const root = realpathSync(opts.directory);
    let dir: string;
    try {
      dir = realpathSync(dirname(abs));
    } catch {
      throw new CaptureFileError(`cannot open ${path}: directory ${dirname(abs)} does not exist`);
    }
    if (dir !== root && !dir.startsWith(root + sep)) throw new CaptureFileError(`cannot open ${path}: outside the capture directory ${root}`);
  }
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  let fd: number;
  try {
    fd = openSync(abs, flags, 0o600);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ELOOP') throw new CaptureFileError(`cannot open ${path}: it is a symbolic link (not followed)`);
    throw new CaptureFileError(`cannot open ${path}: ${e.message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CaptureFileError(`cannot open ${path}: not a regular file`);
    if (st.size > 0 && opts.overwrite === false) throw new CaptureFileError(`cannot open ${path}: the file exists (ask to overwrite it)`);
    if (st.size > 0) ftruncateSync(fd, 0); // only now that it is known to be a regular file
    return fd;
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    throw err;
  }
}
