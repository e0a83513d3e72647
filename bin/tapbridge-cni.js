#!/usr/bin/env node
// The CNI plugin (type "tapbridge"): see src/cni/main.ts.
import { run } from '../dist/src/cni/main.js';
await run();
