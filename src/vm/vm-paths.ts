/** Where a VM's files live. Socket paths stay short (a unix socket path is at most 107 bytes). */
import path from 'node:path';

export interface VmHostPaths {
  /** `<root>/vms`: one directory per VM, named by the first 12 hex digits of its ID. */
  vms: string;
  /** Shared read-only base disks, one per image. */
  baseDisks: string;
  /** Downloads (guest kernel) and built artifacts (initramfs, guest kit). */
  cache: string;
  /** cgroup parent of the daemon (VM cgroups go below it). */
  cgroupParent: string;
}

export interface VmFiles {
  dir: string;
  rootDisk: string;
  qmp: string;
  qga: string;
  console: string;
  serialLog: string;
  qemuLog: string;
  pidFile: string;
  cloudInit: string;
}

export function vmPaths(dir: string): VmFiles {
  return {
    dir,
    rootDisk: path.join(dir, 'root.qcow2'),
    qmp: path.join(dir, 'qmp.sock'),
    qga: path.join(dir, 'qga.sock'),
    console: path.join(dir, 'console.sock'),
    serialLog: path.join(dir, 'serial.log'),
    qemuLog: path.join(dir, 'qemu.log'),
    pidFile: path.join(dir, 'qemu.pid'),
    cloudInit: path.join(dir, 'user-data'),
  };
}

export function hostPathsFor(root: string, cache: string, cgroupParent: string): VmHostPaths {
  return { vms: path.join(root, 'vms'), baseDisks: path.join(root, 'vm-base'), cache, cgroupParent };
}
