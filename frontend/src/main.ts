// The viewer's entry point: wires the store, the controller and the views together.
import "maplibre-gl/dist/maplibre-gl.css";
import "./style.css";
import { checkTile, fetchCollection, fetchCollections, fetchItems, fetchPoint } from "./api";
import { createController } from "./controller";
import { ui } from "./dom";
import { bindControls } from "./events";
import { createMap } from "./layers";
import { bindMap, createMapAdapter } from "./mapview";
import { initialModel } from "./model";
import { renderViews } from "./render";
import { createStore } from "./store";

const map = createMap(ui.map);
const store = createStore(initialModel());
const controller = createController({
  store,
  api: { fetchCollections, fetchCollection, fetchItems, fetchPoint, checkTile },
  map: createMapAdapter(map),
  hash: {
    read: () => window.location.hash,
    write: (hash) => history.replaceState(null, "", `#${hash}`),
  },
  origin: window.location.origin,
});

renderViews(store);
bindControls(controller);
bindMap(map, controller);
void controller.start();
