// Typed access to the tile server's JSON routes, and its error messages.

export interface RenderPreset {
  title?: string;
  quality: string;
  bands?: string[];
  min?: number;
  max?: number;
}

/** An export the server answers at every zoom, for requests of exactly its quality and filters. */
export interface BakedLayer {
  title?: string;
  quality: string;
  /** The bands it holds: a request may show any of them. */
  bands: string[];
  datetime: string | null;
  filter: string | null;
  ids: string[] | null;
  sortby: string | null;
  unscale: boolean;
  bounds: [number, number, number, number];
}

export interface CollectionSummary {
  id: string;
  title?: string;
}

export interface Collection extends CollectionSummary {
  item_count: number;
  bounds: [number, number, number, number];
  center: [number, number, number];
  minzoom: number;
  maxzoom: number;
  datetime: [string | null, string | null];
  bands: string[];
  /** Bands a layer can show: `bands` plus specials such as quality, _index, _date. */
  output_bands?: string[];
  default: { quality: string; bands: string[]; min: number; max: number };
  renders?: Record<string, RenderPreset>;
  /** Baked layers by name. */
  baked?: Record<string, BakedLayer>;
}

export interface Item {
  id: string;
  properties: { datetime: string | null; "eo:cloud_cover"?: number };
}

export interface PointItem {
  id: string;
  index: number;
  datetime: string | null;
  quality: number | null;
  values: Record<string, number | null>;
}

export interface PointResult {
  coordinates: [number, number];
  winner: { id: string; index: number; datetime: string | null } | null;
  values: Record<string, number | null>;
  items: PointItem[];
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    /** The lowest zoom where the request works, when the server refused "too many items". */
    readonly minzoom: number | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The `minzoom` of a "too many items" answer's JSON body (null in any other body). */
export function minzoomOf(body: unknown): number | null {
  const value = (body as { minzoom?: unknown } | null)?.minzoom;
  return typeof value === "number" && Number.isInteger(value) && value >= 0 ? value : null;
}

interface ValidationIssue {
  loc?: (string | number)[];
  msg?: string;
}

/** The human-readable message of an error body: FastAPI's `detail` (a string or a list of issues). */
export function errorMessage(body: unknown, status: number, statusText = ""): string {
  const detail = (body as { detail?: unknown } | null)?.detail;
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail) && detail.length > 0) {
    return (detail as ValidationIssue[])
      .map((issue) => {
        const where = (issue.loc ?? []).filter((part) => part !== "query").join(".");
        return where ? `${where}: ${issue.msg ?? ""}` : (issue.msg ?? "");
      })
      .join("; ");
  }
  return `HTTP ${status}${statusText ? ` ${statusText}` : ""}`;
}

/** An ApiError built from a failed response's body (JSON `detail` if any). */
export async function responseError(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  const message = errorMessage(body, response.status, response.statusText);
  return new ApiError(message, response.status, minzoomOf(body));
}

async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(url, { signal, headers: { Accept: "application/json" } });
  if (!response.ok) throw await responseError(response);
  return (await response.json()) as T;
}

export async function fetchCollections(url: string): Promise<CollectionSummary[]> {
  return (await getJson<{ collections: CollectionSummary[] }>(url)).collections;
}

export function fetchCollection(url: string): Promise<Collection> {
  return getJson<Collection>(url);
}

export async function fetchItems(url: string, signal?: AbortSignal): Promise<Item[]> {
  return (await getJson<{ features: Item[] }>(url, signal)).features;
}

export function fetchPoint(url: string, signal?: AbortSignal): Promise<PointResult> {
  return getJson<PointResult>(url, signal);
}

/** Requests one tile to validate a layer's parameters; throws the server's message if rejected. */
export async function checkTile(url: string, signal?: AbortSignal): Promise<void> {
  const response = await fetch(url, { signal });
  if (!response.ok) throw await responseError(response);
}

/** The message to show for a failed request: the server's, or why the server is unreachable. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof TypeError) return `Cannot reach the server (${error.message}).`;
  return error instanceof Error ? error.message : String(error);
}

/** The zoom a "too many items" answer asks for (its body's `minzoom`); null for any other error. */
export function tooManyItemsZoom(error: unknown): number | null {
  return error instanceof ApiError ? error.minzoom : null;
}

/** Whether a request failed because it was aborted (superseded by a newer one). */
export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}

/** The parts of MapLibre's AJAXError (a failed tile request) the viewer reads. */
export interface TileFailure {
  message: string;
  name?: string;
  status?: number;
  body?: Blob;
}

/** A failed tile as an ApiError: the server's `detail` (and `minzoom`) when it answered with an
 * HTTP error, else MapLibre's message. */
export async function tileError(error: TileFailure): Promise<ApiError> {
  if (!error.status || !(error.body instanceof Blob)) return new ApiError(error.message, error.status ?? 0);
  let body: unknown = null;
  try {
    body = JSON.parse(await error.body.text());
  } catch {
    body = null;
  }
  return new ApiError(errorMessage(body, error.status), error.status, minzoomOf(body));
}
