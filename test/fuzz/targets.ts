// Every TypeScript fuzz target, in one list (the Rust ones live in crates/core/src/fuzz).

import { bundleTargets } from './targets-bundle.js';
import { configTargets } from './targets-config.js';
import { wireTargets } from './targets-wire.js';
import type { TsTarget } from './lib.js';

export const tsTargets: TsTarget[] = [...wireTargets, ...configTargets, ...bundleTargets];
