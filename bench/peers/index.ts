/**
 * The peers `make bench` runs beside After on W1 and W2 (docs/performance.md, "Peers"), each
 * skipped with a note when its server or its npm packages are not installed. A peer's server
 * starts the first time a workload needs it and stops at the end of the run.
 */
import type { Row } from '../report';
import { BULLMQ_MODULES, startBullmqPeer } from './bullmq';
import { missingPeerModule, SETUP_TARGET } from './modules';
import type { Peer } from './peer';
import { PG_BOSS_MODULES, startPgBossPeer } from './pg-boss';
import { postgresBinDir, POSTGRES_PACKAGE_NOTE } from './postgres-server';
import { redisInstalled, REDIS_PACKAGE_NOTE } from './redis-server';

export { runPeerBurst, runPeerPrecision } from './workloads';

interface PeerDefinition {
  /** The name in notes, before the versions are known. */
  name: string;
  modules: readonly string[];
  /** Why the server cannot run here, or undefined when it can. */
  serverMissing(): string | undefined;
  start(): Promise<Peer>;
}

const PEERS: readonly PeerDefinition[] = [
  {
    name: 'BullMQ (Redis)',
    modules: BULLMQ_MODULES,
    serverMissing: () => (redisInstalled() ? undefined : REDIS_PACKAGE_NOTE),
    start: startBullmqPeer,
  },
  {
    name: 'pg-boss (PostgreSQL)',
    modules: PG_BOSS_MODULES,
    serverMissing: () => (postgresBinDir() ? undefined : POSTGRES_PACKAGE_NOTE),
    start: startPgBossPeer,
  },
];

type PeerState = { kind: 'idle' } | { kind: 'running'; peer: Peer } | { kind: 'unavailable'; why: string; noted: boolean };

export interface PeerBench {
  /** Each peer's rows for one workload, or (once per run) the note saying why it was skipped. */
  rowsFor(workload: string, run: (peer: Peer) => Promise<Row[]>): Promise<Row[]>;
  /** One line per peer that ran: how it was set up, for under the table. */
  setupNotes(): string[];
  /** Stops every peer's server. */
  stop(): Promise<void>;
}

export function peerBench(onProgress: (line: string) => void): PeerBench {
  const states = new Map<PeerDefinition, PeerState>(PEERS.map((definition) => [definition, availability(definition)]));
  const notes = new Map<Peer, string>();

  const peerFor = async (definition: PeerDefinition): Promise<PeerState> => {
    const state = states.get(definition)!;
    if (state.kind !== 'idle') return state;
    let next: PeerState;
    try {
      const peer = await definition.start();
      onProgress(`${peer.label} started`);
      notes.set(peer, `${peer.label}: ${peer.setup}.`);
      next = { kind: 'running', peer };
    } catch (err) {
      next = { kind: 'unavailable', why: `failed to start: ${(err as Error).message.split('\n')[0]}`, noted: false };
    }
    states.set(definition, next);
    return next;
  };

  return {
    async rowsFor(workload, run) {
      const rows: Row[] = [];
      for (const definition of PEERS) {
        const state = await peerFor(definition);
        if (state.kind === 'unavailable') {
          if (!state.noted) rows.push({ workload, figure: definition.name, value: `skipped: ${state.why}` });
          state.noted = true;
          continue;
        }
        if (state.kind !== 'running') continue;
        onProgress(`running ${workload} on ${state.peer.label}`);
        const started = Date.now();
        try {
          rows.push(...(await run(state.peer)));
        } catch (err) {
          // A peer's failure is reported in its row; it says nothing about After, so the run goes on.
          rows.push({ workload, figure: state.peer.label, value: `failed: ${(err as Error).message.split('\n')[0]}` });
        }
        onProgress(`${workload} on ${state.peer.label} took ${((Date.now() - started) / 1000).toFixed(0)} s`);
      }
      return rows;
    },
    setupNotes: () => [...notes.values()],
    async stop() {
      for (const state of states.values()) if (state.kind === 'running') await state.peer.stop();
    },
  };
}

function availability(definition: PeerDefinition): PeerState {
  const missingServer = definition.serverMissing();
  if (missingServer) return { kind: 'unavailable', why: `${missingServer}, or ${SETUP_TARGET}`, noted: false };
  const missingModule = missingPeerModule(definition.modules);
  if (missingModule) return { kind: 'unavailable', why: `npm package ${missingModule} is not installed in bench/peers (${SETUP_TARGET})`, noted: false };
  return { kind: 'idle' };
}
