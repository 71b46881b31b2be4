// numpy and PyTorch, timed by bench/peers/python_peers.py in a child process of the same run, with the same
// sampling settings. The first Python on the list that can import the package runs it: $SN_BENCH_PYTHON, python3 on
// PATH, then Debian's /usr/bin/python3 (where python3-numpy, python3-torch and libopenblas0-pthread install).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import type { Stats } from '../timing';
import type { Workload } from '../workloads';

export interface PythonPeerReport {
  name: string;
  /** Set when no Python here can import the package. */
  unavailable?: string;
  info?: Record<string, unknown>;
  results?: Record<string, Stats>;
}

export interface Sampling {
  budgetMs: number;
  slowMs: number;
  minSamples: number;
  maxSamples: number;
}

const SCRIPT = path.join(__dirname, '..', '..', '..', 'bench', 'peers', 'python_peers.py');
const MODULE = { numpy: 'numpy', torch: 'torch' } as const;

function interpreters(): string[] {
  const list = [process.env.SN_BENCH_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  return [...new Set(list)];
}

/** The first interpreter that imports the package, or why none does. */
function findPython(name: keyof typeof MODULE): { python: string } | { unavailable: string } {
  const tried: string[] = [];
  for (const python of interpreters()) {
    const probe = spawnSync(python, ['-c', `import ${MODULE[name]}`], { encoding: 'utf8', timeout: 60_000 });
    if (probe.status === 0) return { python };
    tried.push(`${python}: ${probe.error ? probe.error.message : (probe.stderr.trim().split('\n').pop() ?? `exit ${probe.status}`)}`);
  }
  return { unavailable: `no Python here imports ${MODULE[name]} (${tried.join('; ')})` };
}

export function runPythonPeer(name: keyof typeof MODULE, workloads: Workload[], sampling: Sampling): PythonPeerReport {
  const found = findPython(name);
  if ('unavailable' in found) return { name, unavailable: found.unavailable };
  const job = {
    contender: name,
    workloads: workloads.map((w) => ({ name: w.name, matrices: w.matrices, shapes: w.shapes, iterations: w.iterations })),
    budget_ms: sampling.budgetMs,
    slow_ms: sampling.slowMs,
    min_samples: sampling.minSamples,
    max_samples: sampling.maxSamples,
  };
  const child = spawnSync(found.python, [SCRIPT], {
    input: JSON.stringify(job),
    encoding: 'utf8',
    maxBuffer: 16 * 2 ** 20,
    timeout: 30 * 60_000,
  });
  if (child.status !== 0) {
    return { name, unavailable: `${found.python} ${path.basename(SCRIPT)} failed: ${child.stderr.trim().split('\n').pop()}` };
  }
  const report = JSON.parse(child.stdout) as { unavailable?: string; info?: Record<string, unknown>; results?: Record<string, Stats> };
  return { name, ...report };
}
