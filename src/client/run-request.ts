/**
 * The client side of `POST /vessel/run` (api/run-stream.ts) on a plain
 * socket: one request, no HTTP client machinery. Resolves with the hijacked
 * socket once the daemon answered 101, or null when the daemon does not know
 * the endpoint (an older Vessel, or Docker), so the caller can fall back to
 * Docker's request sequence.
 */
import net from 'node:net';
import { HEADER_CONTAINER_ID, HEADER_WARNINGS, RUN_PATH } from '../api/run-stream.js';
import { InternalError } from '../core/errors.js';
import { API_VERSION, VERSION } from '../version.js';
import { errorFromResponse, parseHost, transportError } from './endpoint.js';

export interface OpenedRun {
  socket: net.Socket;
  id: string;
  warnings: string[];
}

interface ResponseHead {
  status: number;
  headers: Map<string, string>;
}

function parseHead(text: string): ResponseHead {
  const [statusLine = '', ...lines] = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!m) throw new InternalError(`unexpected response from the daemon: ${statusLine.slice(0, 80)}`);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return { status: Number(m[1]), headers };
}

/** Reads an error response's body: Content-Length bytes, or up to the close. */
function readErrorBody(socket: net.Socket, head: ResponseHead, first: Buffer): Promise<Buffer> {
  const length = Number(head.headers.get('content-length') ?? NaN);
  return new Promise((resolve) => {
    const chunks = [first];
    let have = first.length;
    const done = () => {
      socket.destroy();
      resolve(Buffer.concat(chunks));
    };
    if (have >= length) return done();
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      have += d.length;
      if (have >= length) done();
    });
    socket.on('close', done);
  });
}

export function openRun(host: string, name: string | undefined, body: unknown): Promise<OpenedRun | null> {
  const endpoint = parseHost(host);
  const payload = Buffer.from(JSON.stringify(body));
  const target = `/v${API_VERSION}${RUN_PATH}${name ? `?name=${encodeURIComponent(name)}` : ''}`;
  const request =
    `POST ${target} HTTP/1.1\r\nHost: vessel\r\nUser-Agent: Vessel-Client/${VERSION} (${process.platform})\r\n` +
    `Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const socket =
      endpoint.kind === 'unix' ? net.connect({ path: endpoint.socketPath }) : net.connect({ host: endpoint.hostname, port: endpoint.port });
    let buf: Buffer = Buffer.alloc(0);
    let settled = false;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(e);
    };
    const onError = (e: Error) => fail(transportError(host, e));
    const onClose = () => fail(new InternalError('the daemon closed the connection before answering'));
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      socket.pause();
      settled = true;
      let head: ResponseHead;
      try {
        head = parseHead(buf.subarray(0, end).toString('latin1'));
      } catch (e) {
        socket.destroy();
        reject(e);
        return;
      }
      const rest = buf.subarray(end + 4);
      if (head.status === 101) {
        if (rest.length) socket.unshift(rest);
        const warnings = head.headers.get(HEADER_WARNINGS);
        resolve({
          socket,
          id: head.headers.get(HEADER_CONTAINER_ID) ?? '',
          warnings: warnings ? (JSON.parse(decodeURIComponent(warnings)) as string[]) : [],
        });
        return;
      }
      socket.on('error', () => undefined);
      void readErrorBody(socket, head, rest).then((text) => {
        const e = errorFromResponse(head.status, text);
        // Docker answers "page not found", Vessel "Page not found: POST /vessel/run".
        if (head.status === 404 && /^page not found/i.test(e.message)) resolve(null);
        else reject(e);
      });
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(request);
    socket.write(payload);
  });
}
