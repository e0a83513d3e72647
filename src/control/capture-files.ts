/*
 * Opening capture files, on the control plane's thread (never the data plane's: a FIFO or a
 * slow file system must not stall forwarding). Root opens a path a client named, so:
 * symlinks are not followed (O_NOFOLLOW), only regular files are written (a FIFO or a device
 * is refused after an O_NONBLOCK open that cannot hang; nothing on proc, sysfs and the other
 * kernel file systems, so /proc/self/mem is refused too), new files are 0600,
 * a file that has data is only truncated when asked (`overwrite`), and an optional capture
 * directory confines every path.
 */
import { closeSync, constants, fstatSync, ftruncateSync, openSync, realpathSync, statfsSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';

export class CaptureFileError extends Error {}

/** Kernel pseudo file systems (statfs f_type): their "regular files" are kernel interfaces, never capture files. */
const PSEUDO_FS: Record<number, string> = {
  0x9fa0: 'proc',
  0x62656572: 'sysfs',
  0x64626720: 'debugfs',
  0x74726163: 'tracefs',
  0x73636673: 'securityfs',
  0x27e0eb: 'cgroup',
  0x63677270: 'cgroup2',
  0xcafe4a11: 'bpf',
  0x1cd1: 'devpts',
  0x62656570: 'configfs',
  0x6165676c: 'pstore',
  0xde5e81e4: 'efivarfs',
  0x65735543: 'fusectl',
};

export interface CaptureFileOptions {
  /** Every capture path must be inside this directory (after resolving symlinks of the directory). */
  directory?: string;
  /** Truncate a file that exists (default false: refused). */
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
  let fsType = -1;
  try {
    fsType = statfsSync(dirname(abs)).type;
  } catch {
    /* the open below reports a missing directory */
  }
  const pseudo = PSEUDO_FS[fsType];
  if (pseudo !== undefined) throw new CaptureFileError(`cannot open ${path}: it is on ${pseudo}, a kernel file system, not a regular file`);
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
    if (st.size > 0 && opts.overwrite !== true) throw new CaptureFileError(`cannot open ${path}: the file exists and is not empty (ask to overwrite it: "overwrite": true, ctl capture --overwrite)`);
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
