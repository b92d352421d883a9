// Types of source-hash.mjs (the bundle's source hash; the rule is documented there).
import type { Plugin } from "vite";

export declare const ROOT_FILES: readonly string[];
export declare const SOURCE_DIR: string;
export declare const HASH_FILE: string;
export declare function isSourceFile(path: string): boolean;
export declare function sourceFiles(root?: string): string[];
export declare function hashFiles(files: Iterable<{ path: string; content: Uint8Array }>): string;
export declare function sourceHash(root?: string): string;
export declare function sourceHashPlugin(): Plugin;
