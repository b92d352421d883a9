// The MapLibre side of the viewer: the map adapter the controller drives, and the map's events.
import maplibregl from "maplibre-gl";
import type { MapAdapter, ViewerController } from "./ports";
import {
  hideFootprint,
  MOSAIC,
  probeTile,
  removeMosaic,
  setBasemap,
  setMosaic,
  showFootprint,
} from "./layers";

const MARKER_COLOR = "#c2410c";

export function createMapAdapter(map: maplibregl.Map): MapAdapter {
  const marker = new maplibregl.Marker({ color: MARKER_COLOR });
  return {
    loaded: () => new Promise((resolve) => map.once("load", () => resolve())),
    jumpTo: ({ lon, lat, zoom }) => void map.jumpTo({ center: [lon, lat], zoom }),
    setBasemap: (visible) => setBasemap(map, visible),
    setMosaic: (collection, template) => setMosaic(map, collection, template),
    removeMosaic: () => removeMosaic(map),
    probeTile: (collection, template) => probeTile(map, collection, template),
    showFootprint: (bounds) => {
      showFootprint(map, bounds);
      // The outlined bounds, for the end-to-end test (like data-tiles).
      map.getContainer().dataset.footprint = bounds.join(",");
    },
    hideFootprint: () => {
      hideFootprint(map);
      delete map.getContainer().dataset.footprint;
    },
    showMarker: (lonLat) => void marker.setLngLat(lonLat).addTo(map),
    hideMarker: () => void marker.remove(),
  };
}

export function bindMap(map: maplibregl.Map, controller: ViewerController): void {
  map.on("sourcedataloading", (event) => {
    if (event.sourceId === MOSAIC) controller.tilesLoading();
  });
  map.on("idle", () => controller.mapIdle());
  map.on("error", (event: maplibregl.ErrorEvent & { sourceId?: string }) => {
    const source = event.sourceId === MOSAIC ? "Tile" : event.sourceId || "Map";
    void controller.mapError(event.error, source);
  });
  map.on("moveend", () => {
    const { lng, lat } = map.getCenter();
    controller.mapMoved({ zoom: map.getZoom(), lat, lon: lng });
  });
  map.on("click", (event) => void controller.inspect([event.lngLat.lng, event.lngLat.lat]));
}
