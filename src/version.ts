/** Product and API versions, in one place. */
export const VERSION = '0.1.0';
/** The Docker Engine API version served (every client trace we rely on was taken at 1.41). */
export const API_VERSION = '1.41';
