// Server URLs: tiles (XYZ template), TileJSON, WMTS, point queries and item searches.
import { type Filters, queryString, type TileParams } from "./params";

export const TILE_MATRIX_SET = "WebMercatorQuad";

export function collectionUrl(origin: string, collectionId: string): string {
  return `${origin}/collections/${encodeURIComponent(collectionId)}`;
}

function withQuery(url: string, query: string): string {
  return query ? `${url}?${query}` : url;
}

export function collectionsUrl(origin: string): string {
  return `${origin}/collections`;
}

/** The XYZ tile URL template ({z}/{x}/{y}) of a layer, for MapLibre and QGIS. */
export function tileTemplate(origin: string, collectionId: string, params: TileParams): string {
  const path = `${collectionUrl(origin, collectionId)}/tiles/${TILE_MATRIX_SET}/{z}/{x}/{y}.png`;
  return withQuery(path, queryString(params));
}

/** One tile's URL from a template. */
export function tileUrl(template: string, z: number, x: number, y: number): string {
  return template.replace("{z}", String(z)).replace("{x}", String(x)).replace("{y}", String(y));
}

export function tileJsonUrl(origin: string, collectionId: string, params: TileParams): string {
  const path = `${collectionUrl(origin, collectionId)}/${TILE_MATRIX_SET}/tilejson.json`;
  return withQuery(path, queryString(params));
}

export function wmtsUrl(origin: string, collectionId: string, params: TileParams): string {
  const path = `${collectionUrl(origin, collectionId)}/${TILE_MATRIX_SET}/WMTSCapabilities.xml`;
  return withQuery(path, queryString(params));
}

export function pointUrl(
  origin: string,
  collectionId: string,
  lon: number,
  lat: number,
  params: Pick<TileParams, "quality" | "bands" | "datetime" | "filter">,
): string {
  const path = `${collectionUrl(origin, collectionId)}/point/${lon.toFixed(6)},${lat.toFixed(6)}`;
  return withQuery(path, queryString(params));
}

export function itemsUrl(origin: string, collectionId: string, filters: Filters, limit: number): string {
  return withQuery(`${collectionUrl(origin, collectionId)}/items`, queryString({ ...filters, limit }));
}

/** The WebMercatorQuad tile holding a point at a zoom level. */
export function tileOf(lon: number, lat: number, z: number): { x: number; y: number } {
  const n = 2 ** z;
  const clampedLat = Math.max(-85.0511287798, Math.min(85.0511287798, lat));
  const rad = (clampedLat * Math.PI) / 180;
  const x = Math.floor(((lon + 180) / 360) * n);
  const y = Math.floor(((1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2) * n);
  const clamp = (value: number) => Math.max(0, Math.min(n - 1, value));
  return { x: clamp(x), y: clamp(y) };
}
