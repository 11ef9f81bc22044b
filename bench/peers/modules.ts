/**
 * The peers' npm packages live in bench/peers/node_modules (`make bench-peers-setup`), not in
 * the project's dependencies, so that the test install stays lean and `tsc` compiles without
 * them: they are loaded at run time, and the few calls the bench makes are typed locally.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

/** This file runs from dist/bench/peers. */
export const PEERS_DIR = path.resolve(__dirname, '..', '..', '..', 'bench', 'peers');
export const SETUP_TARGET = 'make bench-peers-setup';

const peerRequire = createRequire(path.join(PEERS_DIR, 'package.json'));

/** The first of `names` that cannot be loaded from bench/peers/node_modules, if any. */
export function missingPeerModule(names: readonly string[]): string | undefined {
  return names.find((name) => {
    try {
      peerRequire.resolve(name);
      return false;
    } catch {
      return true;
    }
  });
}

export function loadPeerModule<T>(name: string): T {
  return peerRequire(name) as T;
}

/** The installed version, read from the package's own package.json (not every package exports it). */
export function peerModuleVersion(name: string): string {
  const file = path.join(PEERS_DIR, 'node_modules', name, 'package.json');
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
}
