// The view state as the server's query parameters: filters, the layer's quality expression and
// tile parameters, and their query string.
import type { Collection } from "./api";
import { encodeValue } from "./query";
import type { LayerKind, ViewState } from "./state";

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

/** The date range as a STAC `datetime` interval (whole days, UTC, open ends as ".."): the end
 * day's last microsecond, as the server reads a date (so a baked layer exported with
 * `--datetime START/END` dates matches). */
export function datetimeParam(start: string, end: string): string | undefined {
  if (!start && !end) return undefined;
  const from = start ? `${start}T00:00:00Z` : "..";
  const to = end ? `${end}T23:59:59.999999Z` : "..";
  return `${from}/${to}`;
}

/** The cloud-cover filter as CQL2 text. */
export function cloudFilter(cloud: number | null): string | undefined {
  return cloud === null ? undefined : `eo:cloud_cover < ${cloud}`;
}

export function filtersOf(state: ViewState): Filters {
  return { datetime: datetimeParam(state.start, state.end), filter: cloudFilter(state.cloud) };
}

/** Whether two states select different items (their date or cloud-cover filters differ). */
export function filtersChanged(previous: ViewState, next: ViewState): boolean {
  const [a, b] = [filtersOf(previous), filtersOf(next)];
  return a.datetime !== b.datetime || a.filter !== b.filter;
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
