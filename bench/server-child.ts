// The service under load, in a process of its own so that the load generator does not share its event loop.
// Started by bench/server-load.ts: `node server-child.js coalesce|individual`; sends its port over IPC. It also has
// POST /echo, which parses a request exactly as /normalize does and returns the weight without normalizing it: the
// cost of the HTTP handling alone.
import { buildServer, parseBody, parseQuery } from '../examples/server';

const mode = process.argv[2];
const app = buildServer({ coalesce: mode === 'coalesce' });
app.post('/echo', async (request, reply) => {
  const { shape } = parseQuery(request.query as Record<string, unknown>, {
    maxElements: 4 * 1024 * 1024,
    maxDims: 8,
    maxIterations: 10_000,
  });
  const weight = parseBody(request.body, shape);
  return reply.header('content-type', 'application/octet-stream').send(Buffer.from(weight.buffer, weight.byteOffset, weight.byteLength));
});
app.listen({ port: 0, host: '127.0.0.1' }).then(
  () => {
    const address = app.server.address();
    process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
  },
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
process.on('message', (message) => {
  if (message === 'stats') {
    void app.inject({ method: 'GET', url: '/health' }).then((reply) => process.send!({ health: reply.json() }));
  }
});
process.on('disconnect', () => void app.close().then(() => process.exit(0)));
