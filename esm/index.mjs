// The ESM entry of After (`import { connect, startWorker } from 'after'`): the CommonJS
// build's named exports, re-exported, so both module systems share one instance of each module.
export * from '../dist/src/index.js';
