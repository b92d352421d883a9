// Percent-encoding of query values, shared by the URL hash (state.ts) and the server URLs
// (params.ts): a leaf module, so that neither imports the other.

/** Percent-encodes a query value, keeping ',', '/' and ':' readable (all legal in a query). */
export function encodeValue(value: string): string {
  return encodeURIComponent(value).replace(/%2C/g, ",").replace(/%2F/g, "/").replace(/%3A/g, ":");
}
