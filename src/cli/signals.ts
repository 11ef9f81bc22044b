/**
 * Ctrl-C and SIGTERM for the commands that stay in the foreground (`after start`, `after db
 * start`, `after log -f`): the first signal asks for a clean stop, a second one ends the
 * process at once with the shell's conventional code (130 for SIGINT, 143 for SIGTERM), so
 * an impatient user or a supervisor's second signal is never ignored.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
/**
 * Signals that ask a running worker for something else than a stop: SIGHUP reloads its
 * configuration and jobs, SIGUSR2 opens its log files again (after logrotate moved them).
 */
export const STEER_SIGNALS: readonly NodeJS.Signals[] = ['SIGHUP', 'SIGUSR2'];

/**
 * Where stop requests come from: this process's own SIGINT/SIGTERM, or, for a worker run by a
 * launcher (credential-handover.ts), the requests its launcher relays.
 */
export interface StopSignalSource {
  on(listener: (signal: NodeJS.Signals) => void): void;
  off(listener: (signal: NodeJS.Signals) => void): void;
}

/** These signals of this process, as a source. */
function processSignals(signals: readonly NodeJS.Signals[]): StopSignalSource {
  return {
    on: (listener) => signals.forEach((signal) => process.on(signal, listener)),
    off: (listener) => signals.forEach((signal) => process.off(signal, listener)),
  };
}

let stopSignalSource = processSignals(STOP_SIGNALS);
let steerSignalSource = processSignals(STEER_SIGNALS);

/** Take stop requests from `source` from now on (a launched worker). */
export function setStopSignalSource(source: StopSignalSource): void {
  stopSignalSource = source;
}

/** Take SIGHUP and SIGUSR2 from `source` from now on (a launched worker: its launcher relays them). */
export function setSteerSignalSource(source: StopSignalSource): void {
  steerSignalSource = source;
}

/**
 * Call `handler` for every SIGHUP and SIGUSR2 (or, in a launched worker, for each one its
 * launcher relays) until disposed. While listening, neither signal ends the process, as their
 * default action would.
 */
export function onSteerSignal(handler: (signal: NodeJS.Signals) => void): { dispose(): void } {
  const source = steerSignalSource;
  source.on(handler);
  return { dispose: () => source.off(handler) };
}

export interface StopRequest {
  /** Resolves with the first signal received. */
  readonly requested: Promise<NodeJS.Signals>;
  /** The first signal, once received. */
  readonly signal: NodeJS.Signals | null;
  /** Stop listening (the command finished on its own). */
  dispose(): void;
}

export function exitCodeOf(signal: NodeJS.Signals): number {
  return 128 + (os.constants.signals[signal] ?? 0);
}

export function onStopSignal(): StopRequest {
  let first: NodeJS.Signals | null = null;
  let resolveRequested: (signal: NodeJS.Signals) => void = () => {};
  const requested = new Promise<NodeJS.Signals>((resolve) => (resolveRequested = resolve));
  const handler = (signal: NodeJS.Signals): void => {
    if (first !== null) process.exit(exitCodeOf(signal));
    first = signal;
    resolveRequested(signal);
  };
  const source = stopSignalSource;
  source.on(handler);
  return {
    requested,
    get signal() {
      return first;
    },
    dispose: () => source.off(handler),
  };
}

/**
 * The terminal this process was started on has hung up (it was closed). The kernel then sends
 * SIGHUP, which for a worker means "reload"; but with its terminal gone the user meant "stop".
 * After a hang-up every write to the terminal fails with EIO (Linux swaps its file operations
 * before it signals), so a write of nothing tells the two apart; a `kill -HUP` leaves the
 * terminal writable.
 */
export function terminalHungUp(): boolean {
  for (const [fd, stream] of [[1, process.stdout], [2, process.stderr]] as const) {
    if (!stream.isTTY) continue;
    try {
      fs.writeSync(fd, '');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EIO' || code === 'ENXIO' || code === 'EBADF') return true;
    }
  }
  return false;
}
