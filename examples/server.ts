// An example service on fastify: POST /normalize divides a float32 weight by its largest singular value.
//
//   node dist/examples/server.js [--port 3000] [--no-coalesce]
//   curl -s -X POST 'localhost:3000/normalize?shape=64,576' -H 'content-type: application/octet-stream' \
//        --data-binary @weight.f32 -D - -o normalized.f32
//
// The body is the weight as little-endian float32, row-major; the query holds its shape and options (dim, tolerance,
// maxIterations, eps). The reply is W/σ in the same format, with σ in the `x-spectral-norm-sigma` header. With
// coalescing on (the default), requests arriving within a millisecond of each other share one backend call.
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';

import { ErrorCode, SpectralNormCoalescer, type SpectralNormResult, backendInfo, spectralNormalizeAsync } from '../lib';

export interface ServerOptions {
  /** Gather concurrent requests into one backend call (SpectralNormCoalescer). Default true. */
  coalesce?: boolean;
  /** Largest weight accepted, in elements (the body limit is 4 bytes each). Default 4,194,304 (16 MiB). */
  maxElements?: number;
  /** Most dimensions a shape may have. Default 8. */
  maxDims?: number;
  /** Largest maxIterations a request may ask for. Default 10,000. */
  maxIterations?: number;
  /** Requests that may wait for a batch; beyond it the service answers 503. Default 4096. */
  maxQueue?: number;
  /** Fastify's logger. Default false. */
  logger?: boolean;
}

/** A client's mistake: always a 400 with this message. */
export class BadRequest extends Error {}

const QUERY_KEYS = new Set(['shape', 'dim', 'tolerance', 'maxIterations', 'eps']);

export interface NormalizeRequest {
  shape: number[];
  options: { dim?: number; tolerance?: number; maxIterations?: number; eps?: number };
}

export type Limits = Required<Pick<ServerOptions, 'maxElements' | 'maxDims' | 'maxIterations'>>;

/** The shape and options of POST /normalize, from its query. */
export function parseQuery(query: Record<string, unknown>, limits: Limits): NormalizeRequest {
  for (const key of Object.keys(query)) {
    if (!QUERY_KEYS.has(key)) throw new BadRequest(`unknown query parameter '${key}'; expected ${[...QUERY_KEYS].join(', ')}`);
  }
  const text = (key: string): string | undefined => {
    const value = query[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new BadRequest(`query parameter '${key}' must be given once`);
    return value;
  };
  const shapeText = text('shape');
  if (shapeText === undefined) throw new BadRequest("query parameter 'shape' is required, e.g. shape=64,576");
  if (!/^[1-9]\d{0,9}(,[1-9]\d{0,9})*$/.test(shapeText)) {
    throw new BadRequest(`shape must be positive integers separated by commas, got '${shapeText.slice(0, 100)}'`);
  }
  const shape = shapeText.split(',').map(Number);
  if (shape.length > limits.maxDims) throw new BadRequest(`shape has ${shape.length} dimensions; at most ${limits.maxDims} are accepted`);
  const elements = shape.reduce((a, b) => a * b, 1);
  if (elements > limits.maxElements) throw new BadRequest(`shape has ${elements} elements; at most ${limits.maxElements} are accepted`);
  const number = (key: string, integer: boolean): number | undefined => {
    const value = text(key);
    if (value === undefined) return undefined;
    const x = value.trim() === '' ? NaN : Number(value);
    if (!Number.isFinite(x) || (integer && !Number.isInteger(x))) {
      throw new BadRequest(`${key} must be ${integer ? 'an integer' : 'a finite number'}, got '${value.slice(0, 100)}'`);
    }
    return x;
  };
  const maxIterations = number('maxIterations', true);
  if (maxIterations !== undefined && maxIterations > limits.maxIterations) {
    throw new BadRequest(`maxIterations must be at most ${limits.maxIterations}, got ${maxIterations}`);
  }
  const options = { dim: number('dim', true), tolerance: number('tolerance', false), maxIterations, eps: number('eps', false) };
  return { shape, options };
}

/** The body as a Float32Array of its own (the Buffer may sit at any offset of a shared pool). */
export function parseBody(body: unknown, shape: readonly number[]): Float32Array {
  if (!Buffer.isBuffer(body)) throw new BadRequest('the body must be the weight as float32 bytes (content-type: application/octet-stream)');
  const elements = shape.reduce((a, b) => a * b, 1);
  if (body.length !== elements * 4) {
    throw new BadRequest(`the body has ${body.length} bytes; shape ${shape.join('×')} needs ${elements * 4} (float32)`);
  }
  const weight = new Float32Array(elements);
  new Uint8Array(weight.buffer).set(body);
  return weight;
}

export function buildServer(options: ServerOptions = {}): FastifyInstance {
  const limits: Limits = {
    maxElements: options.maxElements ?? 4 * 1024 * 1024,
    maxDims: options.maxDims ?? 8,
    maxIterations: options.maxIterations ?? 10_000,
  };
  const coalescer = options.coalesce === false ? null : new SpectralNormCoalescer({ maxQueue: options.maxQueue ?? 4096 });
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: limits.maxElements * 4 });

  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.setErrorHandler((error: FastifyError & { code?: string }, _request, reply) => {
    if (error.code === ErrorCode.QueueFull) {
      return reply.code(503).header('retry-after', '1').send({ error: error.message, code: error.code });
    }
    // A client's mistake: ours (BadRequest), the library's argument errors, or fastify's own (body too large, wrong
    // content type, malformed request). Anything else is the service's fault.
    const clientError =
      error instanceof BadRequest ||
      error instanceof TypeError ||
      error instanceof RangeError ||
      (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500);
    if (clientError) return reply.code(400).send({ error: error.message, ...(error.code ? { code: error.code } : {}) });
    reply.log.error(error);
    return reply.code(500).send({ error: 'internal error' });
  });

  app.get('/health', async () => {
    const info = backendInfo();
    return {
      status: 'ok',
      backend: coalescer?.backend ?? info.auto,
      simd: info.cpu.simd,
      threads: info.cpu.threads,
      coalescing: coalescer !== null,
      ...(coalescer ? { coalescer: coalescer.stats() } : {}),
    };
  });

  app.post('/normalize', async (request, reply) => {
    const { shape, options: sn } = parseQuery(request.query as Record<string, unknown>, limits);
    const weight = parseBody(request.body, shape);
    const result: SpectralNormResult = coalescer
      ? await coalescer.normalize(weight, shape, sn)
      : await spectralNormalizeAsync(weight, shape, sn);
    return reply
      .header('content-type', 'application/octet-stream')
      .header('x-spectral-norm-sigma', String(result.sigma))
      .header('x-spectral-norm-iterations', String(result.iterations))
      .header('x-spectral-norm-converged', String(result.converged))
      .send(Buffer.from(weight.buffer, weight.byteOffset, weight.byteLength));
  });

  app.addHook('onClose', async () => {
    await coalescer?.close();
  });
  return app;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const portAt = args.indexOf('--port');
  const port = portAt >= 0 ? Number(args[portAt + 1]) : 3000;
  const app = buildServer({ coalesce: !args.includes('--no-coalesce'), logger: true });
  app.listen({ port, host: '127.0.0.1' }).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
