/**
 * Entry point of the `vessel` CLI. Kept deliberately light: it parses the
 * global flags and loads only the one command module needed, so simple
 * commands start about as fast as node itself.
 *
 * Every failure ends here as exactly one `vessel: <message>` line on stderr
 * (no stack traces unless VESSEL_DEBUG is set) and a non-zero exit status.
 */
import { parseArgs, formatFlags, type FlagSpec } from './args.js';
import type { Command, CommandTable } from './command.js';
import { errorMessage } from '../core/errors.js';
import { UsageError } from './errors.js';
import { API_VERSION, VERSION } from '../version.js';

type Loader = () => Promise<{ commands: CommandTable }>;

const load = {
  run: () => import('./commands/run.js'),
  lifecycle: () => import('./commands/lifecycle.js'),
  ps: () => import('./commands/ps.js'),
  logs: () => import('./commands/logs.js'),
  exec: () => import('./commands/exec.js'),
  inspect: () => import('./commands/inspect.js'),
  stats: () => import('./commands/stats.js'),
  images: () => import('./commands/images.js'),
  imageStream: () => import('./commands/image-stream.js'),
  imageArchive: () => import('./commands/image-archive.js'),
  system: () => import('./commands/system.js'),
  network: () => import('./commands/network.js'),
  builder: () => import('./commands/builder.js'),
  volume: () => import('./commands/volume.js'),
  cp: () => import('./commands/cp.js'),
  build: () => import('./commands/build.js'),
  vm: () => import('./commands/vm.js'),
  registry: () => import('./commands/registry.js'),
  registryClient: () => import('./commands/pull-push.js'),
} satisfies Record<string, Loader>;

interface Entry {
  loader: Loader;
  summary: string;
  group: 'Common' | 'Container' | 'Image' | 'Network' | 'Volume' | 'VM' | 'System';
}

/** Canonical command names, in help order. Summaries live here so --help loads nothing. */
const COMMANDS: Record<string, Entry> = {
  run: { loader: load.run, summary: 'Create and run a new container from an image', group: 'Common' },
  exec: { loader: load.exec, summary: 'Execute a command in a running container', group: 'Common' },
  ps: { loader: load.ps, summary: 'List containers', group: 'Common' },
  build: { loader: load.build, summary: 'Build an image from a Dockerfile', group: 'Common' },
  images: { loader: load.images, summary: 'List images', group: 'Common' },
  pull: { loader: load.registryClient, summary: 'Download an image from a registry', group: 'Common' },
  push: { loader: load.registryClient, summary: 'Upload an image to a registry', group: 'Common' },
  login: { loader: load.registryClient, summary: 'Log in to a registry', group: 'Image' },
  logout: { loader: load.registryClient, summary: 'Log out from a registry', group: 'Image' },
  version: { loader: load.system, summary: 'Show the Vessel version information', group: 'Common' },
  info: { loader: load.system, summary: 'Display system-wide information', group: 'Common' },
  create: { loader: load.run, summary: 'Create a new container', group: 'Container' },
  start: { loader: load.lifecycle, summary: 'Start one or more stopped containers', group: 'Container' },
  stop: { loader: load.lifecycle, summary: 'Stop one or more running containers', group: 'Container' },
  restart: { loader: load.lifecycle, summary: 'Restart one or more containers', group: 'Container' },
  kill: { loader: load.lifecycle, summary: 'Kill one or more running containers', group: 'Container' },
  rm: { loader: load.lifecycle, summary: 'Remove one or more containers', group: 'Container' },
  pause: { loader: load.lifecycle, summary: 'Pause all processes within one or more containers', group: 'Container' },
  unpause: { loader: load.lifecycle, summary: 'Unpause all processes within one or more containers', group: 'Container' },
  wait: { loader: load.lifecycle, summary: 'Block until containers stop, then print their exit codes', group: 'Container' },
  rename: { loader: load.lifecycle, summary: 'Rename a container', group: 'Container' },
  logs: { loader: load.logs, summary: 'Fetch the logs of a container', group: 'Container' },
  inspect: { loader: load.inspect, summary: 'Return low-level information on containers or images', group: 'Container' },
  top: { loader: load.inspect, summary: 'Display the running processes of a container', group: 'Container' },
  port: { loader: load.inspect, summary: 'List port mappings of a container', group: 'Container' },
  stats: { loader: load.stats, summary: 'Display resource usage statistics of containers', group: 'Container' },
  cp: { loader: load.cp, summary: 'Copy files/folders between a container and the local filesystem', group: 'Container' },
  'image ls': { loader: load.images, summary: 'List images', group: 'Image' },
  'image inspect': { loader: load.inspect, summary: 'Display detailed information on one or more images', group: 'Image' },
  'image rm': { loader: load.images, summary: 'Remove one or more images', group: 'Image' },
  'image tag': { loader: load.images, summary: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE', group: 'Image' },
  'image history': { loader: load.images, summary: 'Show the history of an image', group: 'Image' },
  'image prune': { loader: load.images, summary: 'Remove unused images', group: 'Image' },
  'image import': { loader: load.imageStream, summary: 'Import a root filesystem tarball as an image', group: 'Image' },
  'image bootstrap': { loader: load.imageStream, summary: 'Build a base image locally (busybox, debian:bookworm)', group: 'Image' },
  'image save': { loader: load.imageArchive, summary: 'Save one or more images to a tar archive', group: 'Image' },
  'image load': { loader: load.imageArchive, summary: 'Load images from a tar archive or STDIN', group: 'Image' },
  'builder prune': { loader: load.builder, summary: 'Remove build cache', group: 'Image' },
  'registry serve': { loader: load.registry, summary: 'Run an OCI distribution registry in the foreground', group: 'Image' },
  'registry gc': { loader: load.registry, summary: 'Remove unreferenced blobs and stale uploads from a registry root', group: 'Image' },
  'network create': { loader: load.network, summary: 'Create a network', group: 'Network' },
  'network ls': { loader: load.network, summary: 'List networks', group: 'Network' },
  'network inspect': { loader: load.network, summary: 'Display detailed information on one or more networks', group: 'Network' },
  'network rm': { loader: load.network, summary: 'Remove one or more networks', group: 'Network' },
  'network prune': { loader: load.network, summary: 'Remove all unused networks', group: 'Network' },
  'network connect': { loader: load.network, summary: 'Connect a container to a network', group: 'Network' },
  'network disconnect': { loader: load.network, summary: 'Disconnect a container from a network', group: 'Network' },
  'volume create': { loader: load.volume, summary: 'Create a volume', group: 'Volume' },
  'volume ls': { loader: load.volume, summary: 'List volumes', group: 'Volume' },
  'volume inspect': { loader: load.volume, summary: 'Display detailed information on one or more volumes', group: 'Volume' },
  'volume rm': { loader: load.volume, summary: 'Remove one or more volumes', group: 'Volume' },
  'vm create': { loader: load.vm, summary: 'Create a virtual machine from an image, a YAML file or libvirt XML', group: 'VM' },
  'vm ls': { loader: load.vm, summary: 'List virtual machines', group: 'VM' },
  'vm start': { loader: load.vm, summary: 'Start one or more virtual machines', group: 'VM' },
  'vm stop': { loader: load.vm, summary: 'Shut down one or more VMs (ACPI, then forced)', group: 'VM' },
  'vm restart': { loader: load.vm, summary: 'Restart one or more virtual machines', group: 'VM' },
  'vm kill': { loader: load.vm, summary: 'Stop one or more VMs immediately', group: 'VM' },
  'vm pause': { loader: load.vm, summary: 'Pause one or more virtual machines', group: 'VM' },
  'vm resume': { loader: load.vm, summary: 'Resume one or more paused virtual machines', group: 'VM' },
  'vm rm': { loader: load.vm, summary: 'Remove one or more virtual machines', group: 'VM' },
  'vm inspect': { loader: load.vm, summary: 'Display detailed information on VMs (JSON)', group: 'VM' },
  'vm console': { loader: load.vm, summary: 'Attach to the serial console of a VM', group: 'VM' },
  'vm logs': { loader: load.vm, summary: "Show a VM's serial console log", group: 'VM' },
  'vm exec': { loader: load.vm, summary: 'Run a command in a VM through its guest agent', group: 'VM' },
  'vm ip': { loader: load.vm, summary: 'Show the IP addresses of a VM', group: 'VM' },
  'vm memory set': { loader: load.vm, summary: "Set a running VM's memory through the balloon", group: 'VM' },
  'vm snapshot create': { loader: load.vm, summary: 'Snapshot a VM (memory too when it runs)', group: 'VM' },
  'vm snapshot ls': { loader: load.vm, summary: 'List the snapshots of a VM', group: 'VM' },
  'vm snapshot restore': { loader: load.vm, summary: 'Restore a VM to a snapshot', group: 'VM' },
  'vm snapshot rm': { loader: load.vm, summary: 'Remove a snapshot', group: 'VM' },
  'vm clone': { loader: load.vm, summary: 'Create a VM from a snapshot, with its own identity', group: 'VM' },
  'vm disk create': { loader: load.vm, summary: 'Create an empty data disk and attach it', group: 'VM' },
  'vm disk attach': { loader: load.vm, summary: 'Attach an existing qcow2 file as a data disk', group: 'VM' },
  'vm disk detach': { loader: load.vm, summary: 'Detach a data disk', group: 'VM' },
  'vm disk resize': { loader: load.vm, summary: 'Grow a disk', group: 'VM' },
  'vm disk ls': { loader: load.vm, summary: 'List the disks of a VM', group: 'VM' },
  'volume prune': { loader: load.volume, summary: 'Remove all unused local volumes', group: 'Volume' },
};

/** Other spellings, as in Docker (`rmi`, `container ls`, `image list`, `system info`). */
const ALIASES: Record<string, string> = {
  rmi: 'image rm',
  tag: 'image tag',
  history: 'image history',
  import: 'image import',
  save: 'image save',
  load: 'image load',
  'image build': 'build',
  'image pull': 'pull',
  'image push': 'push',
  'image list': 'image ls',
  'image remove': 'image rm',
  'image rmi': 'image rm',
  'container ls': 'ps',
  'container list': 'ps',
  'container ps': 'ps',
  'container remove': 'rm',
  'system info': 'info',
  'system version': 'version',
  'network list': 'network ls',
  'network remove': 'network rm',
  'volume list': 'volume ls',
  'vm list': 'vm ls',
  'vm remove': 'vm rm',
  'vm snapshot list': 'vm snapshot ls',
  'vm disk list': 'vm disk ls',
  'volume remove': 'volume rm',
};

const GLOBAL_FLAGS: FlagSpec[] = [
  { long: 'host', short: 'H', type: 'string', value: 'string', help: 'Daemon socket to connect to (unix:///path or tcp://host:port)' },
  { long: 'version', short: 'v', type: 'bool', help: 'Print version information and quit' },
  { long: 'help', short: 'h', type: 'bool', help: 'Print usage' },
];

const EXIT_NOTES = `Exit status:
  0 on success. On failure one line "vessel: <message>" goes to stderr and the
  status is 1, except for run/create, which use 125 for failures of the CLI or
  daemon (including usage errors) and otherwise exit with the container's own
  status (126/127 when its command cannot be invoked or found).`;

/** Wraps a comma-separated list at ~90 columns without splitting entries. */
function wrap(items: string[], indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const item of items) {
    if (line && line.length + item.length > 88) {
      lines.push(line);
      line = '';
    }
    line += line ? ` ${item},` : `${item},`;
  }
  lines.push(line);
  return lines.map((l) => indent + l).join('\n');
}

function mainHelp(): string {
  const groups = ['Common', 'Container', 'Image', 'Network', 'Volume', 'VM', 'System'] as const;
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 3;
  const sections = groups
    .map((g) => {
      const rows = Object.entries(COMMANDS).filter(([, e]) => e.group === g);
      if (rows.length === 0) return '';
      return `${g} Commands:\n${rows.map(([n, e]) => `  ${n.padEnd(width)}${e.summary}`).join('\n')}\n`;
    })
    .filter(Boolean)
    .join('\n');
  return `Usage:  vessel [OPTIONS] COMMAND

A platform for containers and virtual machines (a client of vesseld's Docker Engine API)

${sections}
Aliases:
${wrap(Object.entries(ALIASES).map(([a, c]) => `${a} = ${c}`), '  ')}
  and "container X" = X for every container command.

Global Options:
${formatFlags(GLOBAL_FLAGS)}

The daemon address comes from --host, else $VESSEL_HOST, else unix:///run/vessel/vessel.sock.

${EXIT_NOTES}

Run 'vessel COMMAND --help' for more information on a command.
`;
}

/** `vessel image` / `vessel container` without a subcommand list what is available. */
const GROUPS = ['image', 'container', 'system', 'volume', 'vm', 'registry'];

function groupHelp(group: string): string {
  const names =
    group === 'container'
      ? Object.keys(COMMANDS).filter((n) => COMMANDS[n]?.group === 'Container' || ['run', 'exec', 'ps'].includes(n))
      : group === 'system'
        ? ['info', 'version']
        : Object.keys(COMMANDS).filter((n) => n.startsWith(`${group} `));
  const width = Math.max(...names.map((n) => n.length)) + 3;
  const rows = names.map((n) => `  ${n.replace(/^\S+ /, '').padEnd(width)}${COMMANDS[n]?.summary ?? ''}`);
  return `Usage:  vessel ${group} COMMAND\n\nCommands:\n${rows.join('\n')}\n\nRun 'vessel ${group} COMMAND --help' for more information on a command.\n`;
}

function commandHelp(name: string, cmd: Command): string {
  const help: FlagSpec = { long: 'help', type: 'bool', help: 'Print usage' };
  const opts = `\nOptions:\n${formatFlags([...cmd.flags, help])}\n`;
  const notes = cmd.notes ? `\n${cmd.notes}\n` : '';
  return `Usage:  vessel ${name} ${cmd.usage}\n\n${cmd.summary}\n${opts}${notes}\n${EXIT_NOTES}\n`;
}

/** Picks the command from the words after the global flags; returns its name and remaining args. */
function resolve(words: string[]): { name: string; rest: string[] } | undefined {
  const [a, b, c] = words;
  if (a === undefined) return undefined;
  if (a === 'container' && b !== undefined) return resolve(words.slice(1)) ?? undefined;
  const two = b !== undefined ? `${a} ${b}` : '';
  const three = c !== undefined ? `${two} ${c}` : '';
  for (const key of [three, two, a]) {
    if (!key) continue;
    const name = ALIASES[key] ?? key;
    if (COMMANDS[name]) return { name, rest: words.slice(key.split(' ').length) };
  }
  return undefined;
}

async function finish(code: number): Promise<never> {
  // Let buffered output reach a pipe before exiting.
  await new Promise<void>((r) => process.stdout.write('', () => r()));
  await new Promise<void>((r) => process.stderr.write('', () => r()));
  process.exit(code);
}

function reportAndExit(e: unknown, fallbackCode: number): Promise<never> {
  // Errors may carry their own status (run: 126/127 when the command cannot start).
  const own = (e as { exitCode?: unknown } | null)?.exitCode;
  const code = typeof own === 'number' ? own : fallbackCode;
  process.stderr.write(`vessel: ${errorMessage(e) || 'unknown error'}\n`);
  if (process.env.VESSEL_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return finish(code);
}

/** Exit status for a failure; becomes 125 once run/create is selected. */
let failureCode = 1;

async function main(argv: string[]): Promise<never> {
  try {
    const global = parseArgs(GLOBAL_FLAGS, argv, { interspersed: false });
    if (global.bool('version')) {
      process.stdout.write(`Vessel version ${VERSION}, API ${API_VERSION}\n`);
      return finish(0);
    }
    const words = global.positionals;
    if (global.bool('help') || words.length === 0 || (words.length === 1 && words[0] === 'help')) {
      process.stdout.write(mainHelp());
      return finish(0);
    }
    const found = resolve(words[0] === 'help' ? [...words.slice(1), '--help'] : words);
    if (!found && GROUPS.includes(words[0] as string) && (words.length === 1 || words[1] === '--help' || words[1] === '-h')) {
      process.stdout.write(groupHelp(words[0] as string));
      return finish(0);
    }
    if (!found) {
      const what = words[0] === 'image' || words[0] === 'container' ? words.slice(0, 2).join(' ') : words[0];
      throw new UsageError(`unknown command: "${what}" (see 'vessel --help')`);
    }
    const entry = COMMANDS[found.name] as Entry;
    const { commands } = await entry.loader();
    const cmd = commands[found.name];
    if (!cmd) throw new Error(`command table out of sync: ${found.name}`);
    failureCode = cmd.failureCode ?? 1;

    const args = parseArgs(cmd.flags, found.rest, { interspersed: cmd.interspersed ?? true });
    if (args.help) {
      process.stdout.write(commandHelp(found.name, cmd));
      return finish(0);
    }
    const n = args.positionals.length;
    if (n < (cmd.minArgs ?? 0) || (cmd.maxArgs !== undefined && n > cmd.maxArgs)) {
      const need =
        cmd.maxArgs === undefined
          ? `at least ${cmd.minArgs} argument${cmd.minArgs === 1 ? '' : 's'}`
          : cmd.minArgs === cmd.maxArgs
            ? `exactly ${cmd.maxArgs} argument${cmd.maxArgs === 1 ? '' : 's'}`
            : `between ${cmd.minArgs ?? 0} and ${cmd.maxArgs} arguments`;
      throw new UsageError(`"vessel ${found.name}" requires ${need} (see 'vessel ${found.name} --help')`);
    }
    const host = global.str('host') ?? process.env.VESSEL_HOST ?? 'unix:///run/vessel/vessel.sock';
    const code = await cmd.run({ host, invokedAs: found.name }, args);
    return finish(code);
  } catch (e) {
    return reportAndExit(e, failureCode);
  }
}

// A closed stdout (`vessel ps | head -1`) is not an error worth a message.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
});
process.on('uncaughtException', (e) => void reportAndExit(e, failureCode));
process.on('unhandledRejection', (e) => void reportAndExit(e, failureCode));

void main(process.argv.slice(2));
