// Public surface of @swarm/wire: codecs, framing and logging shared by all packages.
export { encode, decode, encodeFrame, FrameDecoder, FrameError, MAX_FRAME_BYTES } from './codec.js';
export { captureLogger, componentLogger, silentLogger, type Logger } from './log.js';
export { seededRandom } from './random.js';
export { pollUntil, type PollOptions } from './poll.js';
export { writeDocBlock } from './doc-block.js';
