/** Random container names (`adjective_noun`), as users of Docker expect. */
import { randomInt } from 'node:crypto';
import { InvalidArgumentError } from '../core/errors.js';

const ADJECTIVES = [
  'brave', 'calm', 'eager', 'fancy', 'gentle', 'happy', 'jolly', 'keen', 'lively', 'merry', 'nimble', 'proud',
  'quiet', 'rapid', 'sharp', 'steady', 'swift', 'tidy', 'vivid', 'witty', 'bold', 'bright', 'clever', 'daring',
  'frosty', 'golden', 'hidden', 'humble', 'lucid', 'mellow', 'patient', 'silent', 'sunny', 'tender', 'upbeat',
];
const NOUNS = [
  'anchor', 'beacon', 'harbor', 'keel', 'lantern', 'mast', 'oar', 'pier', 'rudder', 'sail', 'tide', 'wake',
  'compass', 'current', 'dock', 'ferry', 'galley', 'hull', 'island', 'jetty', 'lagoon', 'marina', 'pilot',
  'reef', 'schooner', 'skiff', 'sloop', 'voyage', 'whale', 'dolphin', 'otter', 'heron', 'gull', 'pelican',
];

export function randomName(taken: (name: string) => boolean): string {
  for (let i = 0; i < 100; i++) {
    const n = `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${NOUNS[randomInt(NOUNS.length)]}`;
    const name = i < 10 ? n : `${n}${randomInt(100)}`;
    if (!taken(name)) return name;
  }
  return `vessel_${randomInt(1e9)}`;
}

const VALID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Docker's rule for user-given names; a leading `/` is accepted and dropped. */
export function checkName(name: string): string {
  const n = name.startsWith('/') ? name.slice(1) : name;
  if (!VALID.test(n) || n.length > 128) {
    throw new InvalidArgumentError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  return n;
}
