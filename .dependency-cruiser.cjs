/**
 * How the parts of src/ may import each other (`make test` checks it with dependency-cruiser;
 * `make deps` alone). Type-only imports count: a loop of types is a loop of ideas.
 *
 * The layers, each importing only those below it:
 *
 *   index, api, cli                     what users call
 *   ui, metrics, import, embedded       beside the worker: dashboard, metrics, import, the embedded server
 *   worker                              a worker instance (its stages in intake/, timing/, running/, peers/)
 *   jobs                                loading and running job modules
 *   store                               every request to the database (schema.ts at its bottom)
 *   task, stats                         pure rules: validation, decisions, writes, dates; run figures
 *   config, and the base files          types, errors, text, clock, log, events...
 *
 * docs/architecture.md draws the same picture.
 */
const base = '^src/(types|errors|text|clock|revision|hash|events|format-duration|process|log|fifo)\\.ts$';
const layer = (name) => `^src/${name}(/|\\.ts$)`;

module.exports = {
  forbidden: [
    {
      name: 'no-import-loops',
      comment: 'Files that import each other, directly or through others, cannot be read or changed one at a time.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'base-imports-only-base',
      comment: 'The base files (types, errors, text, clock, log...) stand under everything.',
      severity: 'error',
      from: { path: base },
      to: { path: '^src/', pathNot: [base] },
    },
    {
      name: 'config-is-base',
      comment: 'The configuration is read by every layer: it imports only the base files and task rules.',
      severity: 'error',
      from: { path: layer('config') },
      to: { path: '^src/', pathNot: [base, layer('config'), layer('task')] },
    },
    {
      name: 'task-is-pure',
      comment: 'task/ holds pure rules (no I/O): it imports only the base files and itself.',
      severity: 'error',
      from: { path: layer('task') },
      to: { path: '^src/', pathNot: [base, layer('task')] },
    },
    {
      name: 'stats-is-pure',
      comment: 'stats/ holds the pure arithmetic of the run figures (vectors, quantiles): it imports only the base files and itself.',
      severity: 'error',
      from: { path: layer('stats') },
      to: { path: '^src/', pathNot: [base, layer('stats')] },
    },
    {
      name: 'store-below-its-users',
      comment: 'store/ speaks HTTP to the database for everyone above it, and knows none of them.',
      severity: 'error',
      from: { path: layer('store') },
      to: { path: '^src/', pathNot: [base, layer('config'), layer('task'), layer('stats'), layer('store')] },
    },
    {
      name: 'store-schema-is-its-bottom',
      comment: "store/schema.ts holds the database's shared names (databases, filters, indexes, limits): it imports no other part of store/.",
      severity: 'error',
      from: { path: '^src/store/schema\\.ts$' },
      to: { path: '^src/store/', pathNot: ['^src/store/(schema|types)\\.ts$'] },
    },
    {
      name: 'store-sides-apart',
      comment: 'What the worker uses (store/for-workers) and what operators use (store/for-operators) share only the store\'s common files.',
      severity: 'error',
      from: { path: '^src/store/for-(workers|operators)/' },
      to: { path: '^src/store/for-(workers|operators)/', pathNot: ['$1'] },
    },
    {
      name: 'jobs-below-the-worker',
      comment: 'jobs/ loads and runs job modules; it knows no worker, store, CLI or dashboard.',
      severity: 'error',
      from: { path: layer('jobs') },
      to: { path: '^src/', pathNot: [base, layer('config'), layer('task'), layer('jobs')] },
    },
    {
      name: 'worker-below-its-users',
      comment: 'The worker is used by the CLI, the library and the metrics; it imports none of them.',
      severity: 'error',
      from: { path: layer('worker') },
      to: { path: '^src/', pathNot: [base, layer('config'), layer('task'), layer('store'), layer('jobs'), layer('worker')] },
    },
    {
      name: 'worker-stages-point-down',
      comment: "A stage of the worker (intake, timing, running, peers) or a held task does not reach up into the pipeline that calls it.",
      severity: 'error',
      from: { path: '^src/worker/(intake|timing|running|peers)/|^src/worker/(held-task|held-tasks|writer|events)\\.ts$' },
      to: { path: '^src/worker/(pipeline|worker|start)\\.ts$' },
    },
    {
      name: 'beside-the-worker-not-above-users',
      comment: 'The dashboard, metrics, import and the embedded server do not import the CLI or the library entry points.',
      severity: 'error',
      from: { path: '^src/(ui|metrics|import|embedded)/' },
      to: { path: '^src/(cli/|api\\.ts$|index\\.ts$)' },
    },
    {
      name: 'no-test-code-in-src',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
