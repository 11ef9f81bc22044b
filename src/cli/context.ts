/**
 * What every command receives: where to print, the configuration (loaded on first use, so
 * `--help` works beside a broken config file) and where bin/after is (background workers
 * run it again under pm2).
 */
import * as path from 'node:path';
import { loadConfig } from '../config/load';
import { type AfterConfig } from '../config/types';
import { consoleOutput, type Output } from './output';

export interface CliContext {
  readonly out: Output;
  config(): AfterConfig;
  /** Absolute path of bin/after. */
  readonly binPath: string;
  /** The environment the configuration was read from. */
  readonly env: NodeJS.ProcessEnv;
}

/** dist/src/cli/context.js → <package>/bin/after */
export const BIN_PATH = path.resolve(__dirname, '..', '..', '..', 'bin', 'after');

export function createContext(options: { out?: Output; env?: NodeJS.ProcessEnv; cwd?: string } = {}): CliContext {
  const env = options.env ?? process.env;
  let config: AfterConfig | undefined;
  return {
    out: options.out ?? consoleOutput,
    binPath: BIN_PATH,
    env,
    config: () => (config ??= loadConfig(env, options.cwd)),
  };
}
