/**
 * `POST /vessel/run`: Vessel's one-request `run` (not part of Docker's API;
 * the Docker endpoints stay as they are for Docker clients).
 *
 * The request is a hijacking one (`Connection: Upgrade`, `Upgrade: tcp`)
 * whose body is the JSON of `POST /containers/create` (`?name=` as there).
 * The daemon creates the container, attaches to its stdout/stderr (and stdin
 * when `OpenStdin`), answers `101` with the container's ID and any create
 * warnings in headers, starts the container, then streams its output as
 * multiplexed frames (see stdcopy.ts). After the output ends and the
 * container has exited (and, with `HostConfig.AutoRemove`, been removed) it
 * sends one STATUS frame holding the wait result as JSON
 * (`{"StatusCode": N, "Error": null | {"Message": "..."}}`) and closes. A
 * failed start is one SYSTEMERR frame with the message, then the close.
 * Errors before the upgrade (bad request, no such image) are ordinary error
 * responses. TTY containers are refused (400): their raw stream has no
 * frames to carry the status; clients use the Docker sequence for them.
 *
 * It saves the client three round trips (create, attach + wait, start) and
 * the daemon the wait between them.
 */
export const RUN_PATH = '/vessel/run';
export const HEADER_CONTAINER_ID = 'x-vessel-container-id';
/** encodeURIComponent(JSON.stringify(warnings)), present only when there are some. */
export const HEADER_WARNINGS = 'x-vessel-warnings';
/** Frame stream id of the final status frame (Docker uses 0–3). */
export const STATUS_FRAME = 4;

export interface RunStatus {
  StatusCode: number;
  Error: { Message: string } | null;
}
