/** `vesseld` command-line flags. */
import { InvalidArgumentError } from '../core/errors.js';
import { checkInsecureEntry } from '../registry/client/endpoint.js';

export interface DaemonConfig {
  root: string;
  /** Runtime state (Docker's --exec-root); null: a tmpfs of our own, see execRootFor. */
  execRoot: string | null;
  host: string;
  bridge: string;
  subnet: string;
  runtime: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  socketGroup: string | null;
  /** Turn on kernel samepage merging for VM memory. */
  ksm: boolean;
  /** Unprivileged user QEMU runs as (`-runas`); '' keeps QEMU as root. */
  vmUser: string;
  /** Serve an OCI registry (root `<root>/registry`) on this HOST:PORT. */
  registryAddr: string | null;
  /** Registries (host[:port] or IPv4 CIDR) reachable over plain HTTP; loopback always is. */
  insecureRegistries: string[];
}

export const DEFAULTS: DaemonConfig = {
  root: '/var/lib/vessel',
  execRoot: null,
  host: 'unix:///run/vessel/vessel.sock',
  bridge: 'vessel0',
  subnet: '10.88.0.0/16',
  runtime: 'runc',
  logLevel: 'info',
  socketGroup: null,
  ksm: false,
  vmUser: 'vessel-qemu',
  registryAddr: null,
  insecureRegistries: [],
};

export const DAEMON_USAGE = `Usage: vesseld [OPTIONS]

The Vessel daemon: runs containers and serves the API.

Options:
      --root DIR          Root of persistent state (default /var/lib/vessel)
      --exec-root DIR     Root of runtime state: runtime and conmon files, bundles
                          (default /run/vessel-<tag>, or /dev/shm/vessel-<tag> when
                          /run is no tmpfs, or <root>/run when neither is)
  -H, --host URL          API socket, unix:///path (default unix:///run/vessel/vessel.sock)
      --bridge NAME       Bridge of the default network (default vessel0)
      --subnet CIDR       Subnet of the default network (default 10.88.0.0/16)
      --runtime NAME      OCI runtime: runc or crun, or a path (default runc)
      --group NAME        Group that may use the socket (mode 0660)
      --log-level LEVEL   debug, info, warn or error (default info)
      --ksm               Turn on kernel samepage merging (VM memory is shared when equal)
      --vm-user NAME      Unprivileged user QEMU runs as (default vessel-qemu, created if
                          missing; "root" keeps QEMU as root)
      --registry-addr HOST:PORT  Also serve an OCI registry there (storage in <root>/registry)
      --insecure-registry HOST
                          Allow plain HTTP to this registry (host[:port] or CIDR;
                          repeatable; loopback registries always are)
  -h, --help              Print this help
  -v, --version           Print the version
`;

export function parseDaemonArgs(argv: string[]): DaemonConfig | 'help' | 'version' {
  const cfg: DaemonConfig = { ...DEFAULTS, insecureRegistries: [] };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i] as string;
    const eq = raw.startsWith('--') ? raw.indexOf('=') : -1;
    const flag = eq > 0 ? raw.slice(0, eq) : raw;
    const value = (): string => {
      if (eq > 0) return raw.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new InvalidArgumentError(`Flag needs an argument: ${flag}`);
      return v;
    };
    switch (flag) {
      case '-h':
      case '--help':
        return 'help';
      case '-v':
      case '--version':
        return 'version';
      case '--root':
        cfg.root = value();
        break;
      case '--exec-root':
        cfg.execRoot = value();
        break;
      case '-H':
      case '--host':
        cfg.host = value();
        break;
      case '--bridge':
        cfg.bridge = value();
        break;
      case '--subnet':
        cfg.subnet = value();
        break;
      case '--runtime':
        cfg.runtime = value();
        break;
      case '--group':
        cfg.socketGroup = value();
        break;
      case '--ksm':
        cfg.ksm = true;
        break;
      case '--vm-user': {
        const u = value();
        if (u !== 'root' && !/^[a-z_][a-z0-9_-]{0,31}$/.test(u)) throw new InvalidArgumentError(`Invalid user name: ${u}`);
        cfg.vmUser = u === 'root' ? '' : u;
        break;
      }
      case '--registry-addr':
        cfg.registryAddr = value();
        break;
      case '--insecure-registry':
        cfg.insecureRegistries = [...cfg.insecureRegistries, checkInsecureEntry(value())];
        break;
      case '--log-level': {
        const l = value();
        if (!['debug', 'info', 'warn', 'error'].includes(l)) throw new InvalidArgumentError(`Invalid log level: ${l}`);
        cfg.logLevel = l as DaemonConfig['logLevel'];
        break;
      }
      default:
        throw new InvalidArgumentError(`Unknown flag: ${flag}`);
    }
  }
  if (!cfg.host.startsWith('unix://')) throw new InvalidArgumentError(`Unsupported host: ${cfg.host}: only unix:// sockets are served`);
  if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(cfg.bridge)) throw new InvalidArgumentError(`Invalid bridge name: ${cfg.bridge}`);
  if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(cfg.subnet)) throw new InvalidArgumentError(`Invalid subnet: ${cfg.subnet}`);
  return cfg;
}
