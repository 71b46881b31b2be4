// `npm run bench:server`: examples/server.ts on loopback under autocannon, 64 concurrent clients posting 64×576
// float32 layers, with coalescing on and off, side by side in one run (alternating rounds, a fresh server each).
// To show where the time goes it also measures, in the same run, the HTTP handling alone (POST /echo: the same
// parsing, no normalization) and the normalization alone (64 concurrent callers in-process, no HTTP).
// Writes bench/results/server-load-<date>.json. The last line printed is the coalesced/individual throughput ratio.
//
//   npm run bench:server -- [--connections 64] [--duration 8] [--rounds 2] [--rows 64] [--cols 576] [--tolerance 1e-6]
import { type ChildProcess, fork } from 'node:child_process';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import autocannon from 'autocannon';

import { SpectralNormCoalescer, type SpectralNormResult, spectralNormalizeAsync } from '../lib';
import { writeRecord } from './machine';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '64' },
    duration: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '2' },
    rows: { type: 'string', default: '64' },
    cols: { type: 'string', default: '576' },
    tolerance: { type: 'string' },
    out: { type: 'string', default: path.join('bench', 'results') },
  },
});
const connections = Number(args.connections);
const duration = Number(args.duration);
const rounds = Number(args.rounds);
const shape = [Number(args.rows), Number(args.cols)];
const tolerance = args.tolerance === undefined ? undefined : Number(args.tolerance);
const query = `shape=${shape.join(',')}${tolerance === undefined ? '' : `&tolerance=${tolerance}`}`;

// A fixed pseudo-random weight (an LCG), the same every run.
const weight = new Float32Array(shape[0] * shape[1]);
let state = 12345;
for (let i = 0; i < weight.length; i++) {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  weight[i] = state / 2 ** 32 - 0.5;
}
const body = Buffer.from(weight.buffer);

type Mode = 'individual' | 'coalesce';

interface Server {
  child: ChildProcess;
  port: number;
}

function startServer(mode: Mode): Promise<Server> {
  const child = fork(path.join(__dirname, 'server-child.js'), [mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve({ child, port: m.port }));
    child.once('exit', (code) => reject(new Error(`the server exited with code ${code}`)));
  });
}

function health(server: Server): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    server.child.once('message', (m: { health: Record<string, unknown> }) => resolve(m.health));
    server.child.send('stats');
  });
}

function stopServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.child.removeAllListeners('exit');
    server.child.once('exit', () => resolve());
    server.child.disconnect();
  });
}

interface Load {
  requestsPerSecond: number;
  requests: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  errors: number;
}

async function load(port: number, route: string, seconds: number): Promise<Load> {
  const r = await autocannon({
    url: `http://127.0.0.1:${port}${route}?${query}`,
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body,
    connections,
    duration: seconds,
  });
  return {
    requestsPerSecond: r.requests.total / (r.duration || seconds),
    requests: r.requests.total,
    latencyP50Ms: r.latency.p50,
    latencyP99Ms: r.latency.p99,
    errors: r.errors + r.timeouts + r.non2xx,
  };
}

/** Normalization alone: `connections` callers in this process, each starting its next request when one settles. */
async function inProcess(mode: Mode, seconds: number): Promise<number> {
  const coalescer = mode === 'coalesce' ? new SpectralNormCoalescer() : null;
  const options = tolerance === undefined ? {} : { tolerance };
  const call = (): Promise<SpectralNormResult> => {
    const w = weight.slice();
    return coalescer ? coalescer.normalize(w, shape, options) : spectralNormalizeAsync(w, shape, options);
  };
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        await call();
        done++;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  await coalescer?.close();
  return done / elapsed;
}

async function main(): Promise<void> {
  console.log(
    `server load: ${connections} connections, ${shape.join('×')} float32 (${body.length} bytes) per request, ` +
      `${query}, ${rounds} rounds of ${duration} s per mode`,
  );
  const runs: (Load & { mode: Mode; round: number; batches?: unknown })[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const mode of ['individual', 'coalesce'] as const) {
      const server = await startServer(mode);
      await load(server.port, '/normalize', 1); // warm-up
      const result = await load(server.port, '/normalize', duration);
      const h = await health(server);
      await stopServer(server);
      runs.push({ mode, round, ...result, ...(h.coalescer ? { batches: h.coalescer } : {}) });
      console.log(
        `  round ${round} ${mode.padEnd(10)} ${result.requestsPerSecond.toFixed(0).padStart(6)} req/s, ` +
          `p50 ${result.latencyP50Ms} ms, p99 ${result.latencyP99Ms} ms, errors ${result.errors}`,
      );
    }
  }
  // Where the time goes.
  const echoServer = await startServer('individual');
  await load(echoServer.port, '/echo', 1);
  const echo = await load(echoServer.port, '/echo', duration);
  await stopServer(echoServer);
  const snIndividual = await inProcess('individual', Math.min(duration, 5));
  const snCoalesced = await inProcess('coalesce', Math.min(duration, 5));

  const total = (mode: Mode) => {
    const own = runs.filter((r) => r.mode === mode);
    const requests = own.reduce((a, r) => a + r.requests, 0);
    return {
      requestsPerSecond: own.reduce((a, r) => a + r.requestsPerSecond, 0) / own.length,
      requests,
      latencyP50Ms: Math.max(...own.map((r) => r.latencyP50Ms)),
      latencyP99Ms: Math.max(...own.map((r) => r.latencyP99Ms)),
      errors: own.reduce((a, r) => a + r.errors, 0),
    };
  };
  const individual = total('individual');
  const coalesced = total('coalesce');
  const ratio = coalesced.requestsPerSecond / individual.requestsPerSecond;
  console.table({
    individual: {
      'req/s': individual.requestsPerSecond.toFixed(0),
      'p50 ms': individual.latencyP50Ms,
      'p99 ms': individual.latencyP99Ms,
      errors: individual.errors,
    },
    coalesced: {
      'req/s': coalesced.requestsPerSecond.toFixed(0),
      'p50 ms': coalesced.latencyP50Ms,
      'p99 ms': coalesced.latencyP99Ms,
      errors: coalesced.errors,
    },
    'HTTP only (/echo)': {
      'req/s': echo.requestsPerSecond.toFixed(0),
      'p50 ms': echo.latencyP50Ms,
      'p99 ms': echo.latencyP99Ms,
      errors: echo.errors,
    },
    'normalization only, individual': { 'req/s': snIndividual.toFixed(0), 'p50 ms': '-', 'p99 ms': '-', errors: 0 },
    'normalization only, coalesced': { 'req/s': snCoalesced.toFixed(0), 'p50 ms': '-', 'p99 ms': '-', errors: 0 },
  });
  // Per request, in this machine's time: what HTTP costs, what the normalization costs each way, and so the best
  // ratio coalescing could give if the two simply added up.
  const ms = (rps: number) => 1000 / rps;
  const bound = (ms(echo.requestsPerSecond) + ms(snIndividual)) / (ms(echo.requestsPerSecond) + ms(snCoalesced));
  console.log(
    `per request: HTTP ${ms(echo.requestsPerSecond).toFixed(3)} ms, normalization ${ms(snIndividual).toFixed(3)} ms ` +
      `individual / ${ms(snCoalesced).toFixed(3)} ms coalesced; if they add up, coalescing can give at most ${bound.toFixed(2)}×`,
  );
  writeRecord(args.out!, 'server-load', 'bench:server', {
    workload: { connections, duration, rounds, shape, dtype: 'float32', bodyBytes: body.length, query },
    runs,
    individual,
    coalesced,
    httpOnly: echo,
    normalizationOnlyRequestsPerSecond: { individual: snIndividual, coalesced: snCoalesced },
    additiveBound: bound,
    ratio,
  });
  console.log(`coalesced/individual throughput ratio: ${ratio.toFixed(2)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
