/**
 * Reads the jobs folder at worker start (and again at a reload, SIGHUP) into a registry of job
 * functions by name.
 *
 * Like bree, every module is loaded and checked up front and ALL problems are reported at
 * once, each naming its file, so a typo in one job is found when the worker starts rather
 * than when that job's task comes due at 3 am.
 *
 * A job name comes from task data, which is untrusted: a name only ever resolves to a function
 * loaded here, from a file directly inside the jobs folder (after resolving symlinks), and the
 * lookup is a Map, so `../x`, `/etc/passwd` or `__proto__` are simply unknown jobs. Loading one
 * module and reading its exports is job-module.ts.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { AfterConfig, CommandBinding } from '../config/types';
import { AfterError } from '../errors';
import { enabledBuiltins, type BuiltinOptions } from './builtins/index';
import { commandJob, commandProblems, describeCommand } from './commands';
import { isJobName } from '../task/job-name';
import { chooseProgramUser } from './program-user';
import { describeValue, firstLine, forgetCachedModules, functionExports, isObject, jobFunctionOf, loadContained } from './job-module';
import type { JobFunction } from './run-job';

export { isJobName };

/** Module kinds a job file may be; `.js` follows the nearest package.json `type`. */
const JOB_EXTENSIONS = ['.js', '.cjs', '.mjs'] as const;
/** `jobs/index.js` (or .cjs/.mjs) exports several jobs, one per function-valued export. */
const INDEX_NAME = 'index';

export interface JobProblem {
  /** The file, as a user would type it: relative to the current folder when inside it. */
  file: string;
  /** What is wrong, e.g. "links outside the jobs folder". */
  reason: string;
  /** `<file>: <reason>`, e.g. "jobs/evil.js: links outside the jobs folder". */
  message: string;
}

export interface JobEntry {
  name: string;
  /** "built-in", the file the job comes from (as in JobProblem.file), or "command: <argv>". */
  source: string;
  fn: JobFunction;
}

export interface JobRegistry {
  /** Absolute path of the jobs folder. */
  dir: string;
  /** Every job name that resolves, sorted. */
  names(): string[];
  /** The job called exactly `name`; undefined (an unknown job) for anything else. */
  resolve(name: unknown): JobFunction | undefined;
  /** Every job with where it comes from, sorted by name. */
  entries(): JobEntry[];
  /** Everything wrong in the folder; the jobs concerned are not in the registry. */
  problems: readonly JobProblem[];
}

export interface LoadJobsOptions {
  /** Register the built-in jobs: `exec` @default false, `webhook` @default true */
  builtins?: BuiltinOptions;
  /** Programs bound to job names (config `commands`). @default {} */
  commands?: Readonly<Record<string, CommandBinding>>;
  /** Limit of a command or exec run when nothing else sets one; 0: none. @default 3600000 */
  programTimeoutMs?: number;
  /** worker.program_user: whom programs run as (program-user.ts). @default null */
  programUser?: string | null;
  /** The config file the commands come from, as problems name it. @default "config" */
  configFile?: string | null;
  /**
   * Load every module afresh, not from Node's module caches (a reload: SIGHUP). CommonJS
   * modules under the jobs folder leave `require.cache`; ES modules, which Node cannot unload,
   * are imported again under a new URL (`?reload=<n>`), so each reload keeps the old ones in
   * memory. @default false
   */
  reload?: boolean;
}

/** The options a worker's configuration gives loadJobs. */
export function jobsOptionsOf(config: Pick<AfterConfig, 'builtins' | 'commands' | 'worker' | 'file'>): LoadJobsOptions {
  return {
    builtins: config.builtins,
    commands: config.commands,
    programTimeoutMs: config.worker.program_timeout_ms,
    programUser: config.worker.program_user,
    configFile: config.file,
  };
}

/** The jobs folder has problems; `problems` lists them all, one per file. */
export class JobsInvalidError extends AfterError {
  readonly problems: readonly JobProblem[];
  constructor(dir: string, problems: readonly JobProblem[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super('E_JOBS_INVALID', `jobs folder ${dir} has ${count}: ${problems.map((problem) => problem.message).join('; ')}`);
    this.name = 'JobsInvalidError';
    this.problems = problems;
  }
}

function jobProblem(file: string, reason: string): JobProblem {
  return { file, reason, message: `${file}: ${reason}` };
}

/** Throws a JobsInvalidError listing every problem, if there is any. */
export function assertNoJobProblems(registry: JobRegistry): void {
  if (registry.problems.length > 0) throw new JobsInvalidError(displayPath(registry.dir), registry.problems);
}

/** The lines `after jobs` prints: each job and where it comes from, then each problem. */
export function describeJobs(registry: JobRegistry): string[] {
  const entries = registry.entries();
  const width = Math.max(0, ...entries.map((entry) => entry.name.length));
  const lines = entries.map((entry) => `${entry.name.padEnd(width)}  ${entry.source}`);
  for (const problem of registry.problems) lines.push(`problem: ${problem.message}`);
  return lines;
}

export async function loadJobs(dir: string, options: LoadJobsOptions = {}): Promise<JobRegistry> {
  const absoluteDir = path.resolve(dir);
  let isFolder: boolean;
  try {
    isFolder = (await fs.stat(absoluteDir)).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new AfterError('E_JOBS_DIR', `jobs folder ${dir} does not exist`);
    }
    throw new AfterError('E_JOBS_DIR', `jobs folder ${dir} cannot be read: ${(err as Error).message}`);
  }
  if (!isFolder) throw new AfterError('E_JOBS_DIR', `jobs folder ${dir} is not a folder`);

  const realDir = await fs.realpath(absoluteDir);
  const fresh = options.reload ? forgetCachedModules(realDir) : undefined;
  const jobs = new Map<string, JobEntry>();
  const problems: JobProblem[] = [];

  const configFile = options.configFile ? displayPath(options.configFile) : 'config';
  for (const reason of addBuiltins(jobs, options)) problems.push(jobProblem(configFile, reason));

  const files = (await fs.readdir(absoluteDir)).filter(isJobFileName).sort();
  const indexFiles = files
    .filter((file) => stripExtension(file) === INDEX_NAME)
    .sort((a, b) => extensionRank(a) - extensionRank(b)); // index.js first, as documented
  const jobFiles = files.filter((file) => stripExtension(file) !== INDEX_NAME);

  for (const file of jobFiles) {
    const shown = displayPath(path.join(absoluteDir, file));
    const name = stripExtension(file);
    const problem = (reason: string): void => void problems.push(jobProblem(shown, reason));
    if (!isJobName(name)) {
      problem('its name cannot be a job name (a job name has no "/", "\\" or NUL)');
      continue;
    }
    const existing = jobs.get(name);
    if (existing) {
      problem(`${definedBy(existing)}; rename this file`);
      continue;
    }
    const loaded = await loadContained(path.join(absoluteDir, file), realDir, fresh);
    if ('problem' in loaded) {
      problem(loaded.problem);
      continue;
    }
    const fn = jobFunctionOf(loaded.exports);
    if (!fn) {
      const several = isObject(loaded.exports) ? ` (only ${INDEX_NAME}.js may export several jobs)` : '';
      problem(`exports ${describeValue(loaded.exports)}, not a job function${several}`);
      continue;
    }
    jobs.set(name, { name, source: shown, fn });
  }

  const [indexFile, ...extraIndexFiles] = indexFiles;
  for (const extra of extraIndexFiles) {
    problems.push(jobProblem(displayPath(path.join(absoluteDir, extra)), `only one index file is read (${indexFile}); merge the two`));
  }
  if (indexFile) await loadIndex(path.join(absoluteDir, indexFile), realDir, jobs, problems, fresh);
  addCommands(jobs, problems, options);

  const sortedNames = [...jobs.keys()].sort();
  return {
    dir: absoluteDir,
    names: () => [...sortedNames],
    resolve: (name: unknown) => (isJobName(name) ? jobs.get(name)?.fn : undefined),
    entries: () => sortedNames.map((name) => jobs.get(name)!),
    problems,
  };
}

/** Registers every function-valued export of the index file as a job named by its key. */
async function loadIndex(
  indexPath: string,
  realDir: string,
  jobs: Map<string, JobEntry>,
  problems: JobProblem[],
  fresh: number | undefined,
): Promise<void> {
  const shown = displayPath(indexPath);
  const problem = (reason: string): void => void problems.push(jobProblem(shown, reason));
  const loaded = await loadContained(indexPath, realDir, fresh);
  if ('problem' in loaded) return problem(loaded.problem);

  let exported: Array<[string, JobFunction]>;
  try {
    exported = functionExports(loaded.exports);
  } catch (err) {
    return problem(`cannot read its exports: ${firstLine(err)}`);
  }
  if (exported.length === 0) {
    return problem(`exports ${describeValue(loaded.exports)} with no named function; an index file exports named job functions`);
  }
  for (const [name, fn] of exported) {
    if (!isJobName(name)) {
      problem(`export ${JSON.stringify(name)} cannot be a job name (a job name has no "/", "\\" or NUL)`);
      continue;
    }
    const existing = jobs.get(name);
    if (existing) {
      problem(`export ${JSON.stringify(name)}: ${definedBy(existing)}; rename the export`);
      continue;
    }
    jobs.set(name, { name, source: shown, fn });
  }
}

/**
 * Registers the built-in jobs the options enable; returns what keeps one from running (`exec`'s
 * program user), each naming the setting.
 */
export function addBuiltins(jobs: Map<string, JobEntry>, options: LoadJobsOptions): string[] {
  const problems: string[] = [];
  const wantsExec = options.builtins?.exec === true;
  const user = wantsExec ? chooseProgramUser(options.programUser ?? null, 'worker.program_user', process.getuid?.()) : { ok: true as const, user: undefined };
  if (!user.ok) problems.push(`builtins.exec: ${user.problem}`);
  const builtins = user.ok ? options.builtins : { ...options.builtins, exec: false };
  const execOptions = { ...programDefaults(options), ...(user.ok && user.user ? { user: user.user } : {}) };
  for (const [name, fn] of enabledBuiltins(builtins, execOptions)) jobs.set(name, { name, source: 'built-in', fn });
  return problems;
}

/**
 * Registers the commands of the config beside the jobs already found. A command whose name is
 * taken (by a built-in, a file or an index export), or whose program or folder is missing, is a
 * problem like a broken job file, named by the config file and the field.
 */
export function addCommands(jobs: Map<string, JobEntry>, problems: JobProblem[], options: LoadJobsOptions): void {
  const file = options.configFile ? displayPath(options.configFile) : 'config';
  for (const [name, binding] of Object.entries(options.commands ?? {})) {
    const existing = jobs.get(name);
    if (existing) {
      problems.push(jobProblem(file, `commands.${name}: ${definedBy(existing)}; rename the command`));
      continue;
    }
    const user = chooseProgramUser(binding.user ?? options.programUser ?? null, binding.user !== null ? `commands.${name}.user` : 'worker.program_user', process.getuid?.());
    const wrong = [...commandProblems(name, binding), ...(user.ok ? [] : [user.problem])];
    if (wrong.length > 0) {
      for (const reason of wrong) problems.push(jobProblem(file, reason));
      continue;
    }
    const runAs = user.ok ? user.user : undefined;
    jobs.set(name, { name, source: describeCommand(binding, runAs), fn: commandJob(name, binding, { ...programDefaults(options), ...(runAs ? { user: runAs } : {}) }) });
  }
}

function programDefaults(options: LoadJobsOptions): { defaultTimeoutMs?: number } {
  return options.programTimeoutMs === undefined ? {} : { defaultTimeoutMs: options.programTimeoutMs };
}

function definedBy(existing: JobEntry): string {
  const name = JSON.stringify(existing.name);
  return existing.source === 'built-in'
    ? `job ${name} is built in (the built-in is kept unless disabled)`
    : `job ${name} is already defined by ${existing.source}`;
}

function isJobFileName(file: string): boolean {
  return !file.startsWith('.') && (JOB_EXTENSIONS as readonly string[]).includes(path.extname(file));
}

function extensionRank(file: string): number {
  return (JOB_EXTENSIONS as readonly string[]).indexOf(path.extname(file));
}

function stripExtension(file: string): string {
  return file.slice(0, -path.extname(file).length);
}

/** A path as a user would type it: relative to the current folder when inside it. */
function displayPath(absolute: string): string {
  const relative = path.relative(process.cwd(), absolute);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : absolute;
}
