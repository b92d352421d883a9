// Server URLs: tiles (XYZ template), TileJSON, WMTS, point queries and item searches.
import type { Collection } from "./api";
import type { LayerKind, ViewState } from "./state";

export const TILE_MATRIX_SET = "WebMercatorQuad";

export interface Filters {
  datetime?: string;
  filter?: string;
}

export interface TileParams extends Filters {
  quality: string;
  bands: string[];
  min?: number;
  max?: number;
  palette?: string[];
  ids?: string[];
}

/** The date range as a STAC `datetime` interval (whole days, UTC, open ends as ".."). */
export function datetimeParam(start: string, end: string): string | undefined {
  if (!start && !end) return undefined;
  const from = start ? `${start}T00:00:00Z` : "..";
  const to = end ? `${end}T23:59:59Z` : "..";
  return `${from}/${to}`;
}

/** The cloud-cover filter as CQL2 text. */
export function cloudFilter(cloud: number | null): string | undefined {
  return cloud === null ? undefined : `eo:cloud_cover < ${cloud}`;
}

export function filtersOf(state: ViewState): Filters {
  return { datetime: datetimeParam(state.start, state.end), filter: cloudFilter(state.cloud) };
}

/** The quality expression a layer ranks pixels by. */
export function layerQuality(kind: LayerKind, state: ViewState, collection: Collection): string {
  const fallback = collection.default.quality;
  if (kind === "best") return collection.renders?.best?.quality ?? fallback;
  if (kind === "worst") return collection.renders?.worst?.quality ?? `-(${fallback})`;
  return state.quality;
}

export interface LayerContext {
  /** Provenance colour scale: first and last acquisition, days since 1970-01-01. */
  dateRange: [number, number];
  palette: string[];
  /** The item shown by the item layer, undefined if none matches the filters. */
  itemId?: string;
}

/** The tile parameters of the state's layer, or null when it has nothing to show. */
export function layerParams(
  state: ViewState,
  collection: Collection,
  context: LayerContext,
): TileParams | null {
  const base = { quality: layerQuality(state.layer, state, collection), ...filtersOf(state) };
  if (state.layer === "provenance") {
    const [min, max] = context.dateRange;
    return { ...base, bands: ["_date"], min, max, palette: context.palette };
  }
  const visual = { ...base, bands: state.bands, min: state.min, max: state.max };
  if (state.layer !== "item") return visual;
  return context.itemId ? { ...visual, ids: [context.itemId] } : null;
}

/** Percent-encodes a query value, keeping ',', '/' and ':' readable (all legal in a query). */
export function encodeValue(value: string): string {
  return encodeURIComponent(value).replace(/%2C/g, ",").replace(/%2F/g, "/").replace(/%3A/g, ":");
}

/** A query string (without '?') with the parameters that are set, in a stable order. */
export function queryString(params: Partial<TileParams> & { limit?: number }): string {
  const entries: [string, string | undefined][] = [
    ["quality", params.quality],
    ["bands", params.bands?.join(",")],
    ["min", params.min?.toString()],
    ["max", params.max?.toString()],
    ["palette", params.palette?.join(",")],
    ["datetime", params.datetime],
    ["filter", params.filter],
    ["ids", params.ids?.join(",")],
    ["limit", params.limit?.toString()],
  ];
  return entries
    .filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== "")
    .map(([key, value]) => `${key}=${encodeValue(value)}`)
    .join("&");
}

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
