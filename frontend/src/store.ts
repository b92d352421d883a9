// A minimal state container: the current value, shallow patches, and change listeners.

/** Called after each change with the new and the previous value. */
export type Listener<T> = (current: T, previous: T) => void;

export interface Store<T> {
  get(): T;
  /** Applies a shallow patch and notifies the listeners, unless no field changed (Object.is). */
  set(patch: Partial<T>): void;
  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: Listener<T>): () => void;
}

export function createStore<T extends object>(initial: T): Store<T> {
  let current = initial;
  const listeners = new Set<Listener<T>>();
  return {
    get: () => current,
    set(patch) {
      const keys = Object.keys(patch) as (keyof T)[];
      if (keys.every((key) => Object.is(patch[key], current[key]))) return;
      const previous = current;
      current = { ...current, ...patch };
      for (const listener of [...listeners]) listener(current, previous);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
  };
}
