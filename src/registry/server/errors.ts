/**
 * Errors of the distribution API. Each carries the spec's error code and the
 * HTTP status it maps to; the handler turns them into the spec's body
 * `{"errors":[{"code","message","detail"}]}`. This is the only place the
 * registry server knows error codes.
 */
export type RegistryErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'RANGE_INVALID'
  | 'UNKNOWN';

const STATUS: Record<RegistryErrorCode, number> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  RANGE_INVALID: 416,
  UNKNOWN: 500,
};

export class RegistryError extends Error {
  override name = 'RegistryError';
  readonly status: number;
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    options: { detail?: unknown; status?: number; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.status = options.status ?? STATUS[code];
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  body(): string {
    const entry: { code: string; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return JSON.stringify({ errors: [entry] });
  }
}
