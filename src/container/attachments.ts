/**
 * The attach sessions of each container: one to a running container connects
 * to conmon's attach socket at once; one made before the start (as
 * `docker run` attaches before it starts) waits and is connected at the next
 * start, so no output is missed, or ended when no start comes.
 */
import { AttachConnection } from './attach.js';
import { AttachSession, type AttachOptions } from './attach-session.js';

export class Attachments {
  #waiting = new Map<string, AttachSession[]>();

  /** `bundleOf(id)`: the directory holding the container's attach socket. */
  constructor(private readonly bundleOf: (id: string) => string) {}

  open(id: string, running: boolean, options: AttachOptions): AttachSession {
    const session = new AttachSession(options);
    if (running) {
      this.#connect(id, session);
      return session;
    }
    const list = this.#waiting.get(id) ?? [];
    list.push(session);
    this.#waiting.set(id, list);
    void session.done.then(() => {
      const l = this.#waiting.get(id);
      if (l) this.#waiting.set(id, l.filter((x) => x !== session));
    });
    return session;
  }

  /** At a start, once conmon serves the attach socket: connects the sessions waiting for it. */
  connectWaiting(id: string): void {
    for (const session of this.#take(id)) this.#connect(id, session);
  }

  /** No start is coming (it failed, or the container is gone): the waiting sessions end. */
  endWaiting(id: string): void {
    for (const session of this.#take(id)) session.finish();
  }

  #take(id: string): AttachSession[] {
    const list = this.#waiting.get(id) ?? [];
    this.#waiting.delete(id);
    return list;
  }

  #connect(id: string, session: AttachSession): void {
    try {
      session.bind(AttachConnection.connect(this.bundleOf(id), (stream, data) => session.deliver(stream, data)));
    } catch {
      session.finish();
    }
  }
}
