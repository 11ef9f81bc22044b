// Types of the ESM entry: the same as the CommonJS build's.
export * from '../dist/src/index.js';
