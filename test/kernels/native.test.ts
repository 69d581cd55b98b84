import { createNativeBackend } from '../../src/kernels/native/index.js';
import { runConformance } from './conformance.js';

runConformance('native', createNativeBackend);
