/** A container or image name for use in a request path (its own module: `run` needs nothing else of format.ts). */
export function pathName(name: string): string {
  return encodeURI(name).replace(/[?#]/g, (c) => encodeURIComponent(c));
}
