/**
 * Docker's JSON progress messages for pull and push, and a throttle so a
 * fast download does not send thousands of lines.
 */
export interface ProgressMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  aux?: Record<string, unknown>;
}

export type Progress = (m: ProgressMessage) => void;

/** The 12-hex id Docker shows per layer. */
export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** Calls `report(current)` at most every `everyMs`, and always for the final value. */
export function throttled(total: number, report: (current: number) => void, everyMs = 100): (current: number) => void {
  let last = 0;
  return (current) => {
    const now = Date.now();
    if (current >= total || now - last >= everyMs) {
      last = now;
      report(current);
    }
  };
}
