#!/usr/bin/env node
// Launcher committed as plain JS so npm can link the `swarm` bin before the TypeScript is built.
import '../dist/src/main.js';
