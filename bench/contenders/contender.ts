// What the benchmark times: a contender prepares one workload (untimed: converting the weights into its own
// format, allocating outputs) and returns a runner whose run() is one full SN step on every layer of it.
import type { Workload } from '../workloads';

export interface Runner {
  /** Called before each block of timed runs: a contender that shares global state (tfjs's backend) selects it. */
  enter?(): Promise<void>;
  run(): void | Promise<void>;
  dispose?(): void;
}

export interface Contender {
  name: string;
  /** 'library': a backend of spectral-norm; 'peer': what a user would otherwise pick. */
  family: 'library' | 'peer';
  /** How many threads it uses: its bandwidth is compared with the probe's on as many. */
  threads: 'all' | 1;
  /** Why it cannot run on this machine, or null when it can. */
  unavailable(): Promise<string | null>;
  /** A runner for the workload, or why this contender skips it. */
  prepare(workload: Workload, weights: Float32Array[]): Promise<Runner | string>;
}
