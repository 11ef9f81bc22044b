/**
 * One job module: loaded only from inside the jobs folder (symlinks resolved), as CommonJS or
 * as an ES module, afresh on a reload, and read for its job function (a file) or its named
 * job functions (an index file). loader.ts turns what these find into the registry.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { JobFunction } from './run-job';

/**
 * Loads a module only if the file, symlinks resolved, sits directly inside the jobs folder:
 * a link pointing elsewhere is a problem and the file it points to is never loaded.
 */
export async function loadContained(filePath: string, realDir: string, fresh: number | undefined): Promise<{ exports: unknown } | { problem: string }> {
  let realPath: string;
  try {
    realPath = await fs.realpath(filePath);
  } catch {
    return { problem: 'is a broken link' };
  }
  if (path.dirname(realPath) !== realDir) {
    const under = realPath.startsWith(realDir + path.sep);
    return { problem: under ? 'links into a subfolder; jobs are files directly in the jobs folder' : 'links outside the jobs folder' };
  }
  if (!(await fs.stat(realPath)).isFile()) return { problem: 'is not a file' };
  try {
    return { exports: await loadModule(realPath, fresh) };
  } catch (err) {
    return { problem: `cannot be loaded: ${firstLine(err)}` };
  }
}

async function loadModule(realPath: string, fresh: number | undefined): Promise<unknown> {
  if (path.extname(realPath) !== '.mjs') {
    try {
      const exported = require(realPath) as unknown;
      // An ES module that require() loaded (Node >= 20.19) comes from the ES module cache,
      // which deleting require.cache does not clear: a reload imports it again instead.
      if (fresh === undefined || !isModuleNamespace(exported)) return exported;
    } catch (err) {
      // An ES module in a .js file: require() loads it on Node >= 20.19 unless it uses
      // top-level await; import() loads it in every case.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw err;
    }
  }
  // module Node16 keeps this a real import() in the CommonJS output (a require() could not
  // load an .mjs file with top-level await). A reload asks for a URL the cache has not seen.
  const url = pathToFileURL(realPath).href + (fresh === undefined ? '' : `?reload=${fresh}`);
  return (await import(url)) as unknown;
}

/** How many reloads this process has made: each one's ES modules get URLs of their own. */
let reloads = 0;

/**
 * Drop every CommonJS module under the jobs folder from require's cache (job files and the
 * helpers they require), so the next require reads the files again; returns this reload's number.
 */
export function forgetCachedModules(realDir: string): number {
  for (const cached of Object.keys(require.cache)) {
    if (cached.startsWith(realDir + path.sep)) delete require.cache[cached];
  }
  reloads += 1;
  return reloads;
}

/** What require() returns for an ES module: its namespace object. */
function isModuleNamespace(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.prototype.toString.call(value) === '[object Module]';
}

/** The job function of a file module: `module.exports = fn`, `export default fn`, `exports.default = fn`. */
export function jobFunctionOf(exported: unknown): JobFunction | undefined {
  if (typeof exported === 'function') return exported as JobFunction;
  if (!isObject(exported)) return undefined;
  const fallback = exported.default;
  if (typeof fallback === 'function') return fallback as JobFunction;
  // a CommonJS module compiled from `export default` and loaded through import()
  if (isObject(fallback) && typeof fallback.default === 'function') return fallback.default as JobFunction;
  return undefined;
}

/**
 * The function-valued exports of an index module. Named exports first; then the keys of a
 * default-exported object (`export default {a, b}`, or a CommonJS module seen through import()).
 * Each is called with its exports object as `this`, as `exports.a(...)` would be.
 */
export function functionExports(exported: unknown): Array<[string, JobFunction]> {
  const found = new Map<string, JobFunction>();
  const collect = (holder: Record<string, unknown>): void => {
    for (const key of Object.keys(holder)) {
      const value = holder[key];
      if (key === 'default' || key === '__esModule' || typeof value !== 'function' || found.has(key)) continue;
      const fn = value as JobFunction;
      found.set(key, (task, ctx) => fn.call(holder, task, ctx));
    }
  };
  if (!isObject(exported) || typeof exported === 'function') return [];
  collect(exported);
  if (isObject(exported.default) && typeof exported.default !== 'function') collect(exported.default);
  return [...found];
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null;
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'function') return 'a single function';
  if (typeof value === 'object') return Object.keys(value).length === 0 ? 'an empty object' : 'an object';
  return `a ${typeof value}`;
}

export function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message || err.name : String(err);
  return message.split('\n')[0] ?? message;
}
