// examples/server.ts: the right bytes and σ for good requests, a 400 with a JSON error for every bad one.
import * as assert from 'node:assert/strict';

import { buildServer } from '../../examples/server';
import { backendInfo, spectralNormalize } from '../../lib';
import { assertSameBytes, randomArray } from '../support/helpers';

function bytes(array: Float32Array): Buffer {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}

describe('example server', () => {
  for (const coalesce of [true, false]) {
    describe(`coalescing ${coalesce ? 'on' : 'off'}`, () => {
      const app = buildServer({ coalesce, maxElements: 100_000, maxIterations: 5000 });
      after(() => app.close());

      it('POST /normalize returns W/σ as float32 bytes and σ in a header, as spectralNormalize would', async () => {
        const shapes = [[64, 576], [1, 33], [29, 1], [8, 4, 3, 3], [17]];
        const weights = shapes.map(
          (s) =>
            randomArray(
              'float32',
              s.reduce((a, b) => a * b, 1),
            ) as Float32Array,
        );
        const replies = await Promise.all(
          shapes.map((shape, i) =>
            app.inject({
              method: 'POST',
              url: `/normalize?shape=${shape.join(',')}${i === 3 ? '&dim=1&tolerance=1e-4' : ''}`,
              headers: { 'content-type': 'application/octet-stream' },
              payload: bytes(weights[i]),
            }),
          ),
        );
        // Bit for bit on the backend that served it (docs/server.md): with coalescing, the coalescer's own backend, which
        // for tiny layers is not the one 'auto' picks (js), and the two sum float32 products differently ('mixed').
        const served = (await app.inject({ method: 'GET', url: '/health' })).json().backend;
        replies.forEach((reply, i) => {
          assert.equal(reply.statusCode, 200, reply.body);
          const expected = weights[i].slice();
          const options = i === 3 ? { dim: 1, tolerance: 1e-4 } : {};
          const r = spectralNormalize(expected, shapes[i], coalesce ? { ...options, backend: served } : options);
          assert.equal(Number(reply.headers['x-spectral-norm-sigma']), r.sigma);
          assert.equal(Number(reply.headers['x-spectral-norm-iterations']), r.iterations);
          assertSameBytes(reply.rawPayload, bytes(expected), `reply ${i}`);
        });
      });

      it('GET /health reports the backend', async () => {
        const reply = await app.inject({ method: 'GET', url: '/health' });
        assert.equal(reply.statusCode, 200);
        const body = reply.json();
        assert.equal(body.status, 'ok');
        // The coalescer reports its option: under 'auto' each batch is costed on its own.
        assert.equal(body.backend, coalesce ? 'auto' : backendInfo().auto);
        assert.equal(body.coalescing, coalesce);
      });

      const bad: [string, string, Buffer | string, string, RegExp][] = [
        ['no shape', '/normalize', Buffer.alloc(8), 'application/octet-stream', /'shape' is required/],
        ['a malformed shape', '/normalize?shape=2,-1', Buffer.alloc(8), 'application/octet-stream', /shape must be positive integers/],
        ['a zero dimension', '/normalize?shape=2,0', Buffer.alloc(8), 'application/octet-stream', /shape must be positive integers/],
        ['too many elements', '/normalize?shape=1000,1000', Buffer.alloc(8), 'application/octet-stream', /at most 100000 are accepted/],
        [
          'too many dimensions',
          '/normalize?shape=1,1,1,1,1,1,1,1,1',
          Buffer.alloc(4),
          'application/octet-stream',
          /at most 8 are accepted/,
        ],
        [
          'a body of the wrong length',
          '/normalize?shape=3,3',
          Buffer.alloc(35),
          'application/octet-stream',
          /the body has 35 bytes; shape 3×3 needs 36/,
        ],
        ['an empty body', '/normalize?shape=3,3', Buffer.alloc(0), 'application/octet-stream', /body/],
        ['a body over the limit', '/normalize?shape=2,2', Buffer.alloc(400_004), 'application/octet-stream', /body/i],
        ['JSON instead of bytes', '/normalize?shape=2,2', '{"w":[1,2,3,4]}', 'application/json', /float32 bytes/],
        ['an unknown content type', '/normalize?shape=2,2', 'abcd', 'text/plain', /content-type|Unsupported Media Type/i],
        [
          'an unknown parameter',
          '/normalize?shape=2,2&iterations=3',
          Buffer.alloc(16),
          'application/octet-stream',
          /unknown query parameter 'iterations'/,
        ],
        [
          'a repeated parameter',
          '/normalize?shape=2,2&dim=0&dim=1',
          Buffer.alloc(16),
          'application/octet-stream',
          /'dim' must be given once/,
        ],
        ['dim out of range', '/normalize?shape=2,2&dim=2', Buffer.alloc(16), 'application/octet-stream', /options\.dim/],
        [
          'a non-numeric tolerance',
          '/normalize?shape=2,2&tolerance=abc',
          Buffer.alloc(16),
          'application/octet-stream',
          /tolerance must be a finite number/,
        ],
        ['a negative tolerance', '/normalize?shape=2,2&tolerance=-1', Buffer.alloc(16), 'application/octet-stream', /options\.tolerance/],
        [
          'too many iterations',
          '/normalize?shape=2,2&maxIterations=999999',
          Buffer.alloc(16),
          'application/octet-stream',
          /maxIterations must be at most 5000/,
        ],
        [
          'a fractional maxIterations',
          '/normalize?shape=2,2&maxIterations=2.5',
          Buffer.alloc(16),
          'application/octet-stream',
          /maxIterations must be an integer/,
        ],
        [
          'NaN in the weight',
          '/normalize?shape=2,2',
          bytes(new Float32Array([1, NaN, 2, 3])),
          'application/octet-stream',
          /contains NaN or Infinity/,
        ],
        [
          'Infinity in the weight',
          '/normalize?shape=4',
          bytes(new Float32Array([1, 2, Infinity, 3])),
          'application/octet-stream',
          /contains NaN or Infinity/,
        ],
      ];
      for (const [what, url, payload, type, message] of bad) {
        it(`${what}: 400 with a clear JSON error`, async () => {
          const reply = await app.inject({ method: 'POST', url, headers: { 'content-type': type }, payload });
          assert.equal(reply.statusCode, 400, reply.body);
          assert.match(reply.headers['content-type'] as string, /application\/json/);
          assert.match(reply.json().error, message);
        });
      }

      it('after bad requests the service still answers good ones', async () => {
        const weight = randomArray('float32', 12) as Float32Array;
        const reply = await app.inject({
          method: 'POST',
          url: '/normalize?shape=3,4',
          headers: { 'content-type': 'application/octet-stream' },
          payload: bytes(weight),
        });
        assert.equal(reply.statusCode, 200);
        assert.equal(Number(reply.headers['x-spectral-norm-sigma']), spectralNormalize(weight.slice(), [3, 4]).sigma);
      });
    });
  }
});
