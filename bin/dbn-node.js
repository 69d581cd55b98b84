#!/usr/bin/env node
// Thin shim: the CLI lives in src/cli (built to dist/cli). DBN_NODE_DEV=1 runs the TypeScript
// sources directly (for tests; needs `node --import tsx`).
const entry = process.env.DBN_NODE_DEV === '1' ? '../src/cli/main.ts' : '../dist/cli/main.js';
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
